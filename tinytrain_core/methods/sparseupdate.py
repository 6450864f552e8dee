"""SparseUpdate: a static scheme found offline (the released one named by ctx.sparse_update_label,
default the largest), channels by weight L2 norm."""
from ..schemes import conv_weights_of, released_sparse_update, sparse_update
from .base import Method


class SparseUpdate(Method):
    name = "SparseUpdate"

    def scheme(self, backbone, support_x, support_y, ctx):
        label = ctx.sparse_update_label or list(released_sparse_update(ctx.model))[-1]
        return sparse_update(ctx.model, label, backbone.conv_shapes(), conv_weights_of(backbone))
