"""TinyTrain: Fisher potential over the support set, then budgeted layer/channel selection."""
from ..training.fisher import fisher_potential
from ..training.schemes import conv_weights_of
from ..training.selection import select_scheme
from .base import Method


class TinyTrain(Method):
    name = "TinyTrain"
    default_checkpoint = "meta"   # the paper runs TinyTrain from the meta-trained backbone

    def scheme(self, backbone, support_x, support_y, ctx):
        fp = fisher_potential(backbone, support_x, support_y, activation=ctx.activation,
                              chunk=ctx.fisher_chunk, path=ctx.fisher_path)
        return select_scheme(fp, backbone.conv_shapes(), ctx.memory_kib, ctx.compute_macs,
                             channels=ctx.channels, biases=ctx.biases, conv_weights=conv_weights_of(backbone),
                             seed=ctx.seed)
