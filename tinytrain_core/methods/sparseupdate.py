"""SparseUpdate (Lin et al. 2022): a static scheme found offline, channels by weight L2 norm.

`ctx.sparse_update_label`:
- "search": our reconstruction of the paper's search (`sparse_search.py`) at the memory budget
  `ctx.memory_kib` (TinyTrain's, for the matched-memory comparison), from the contribution
  analysis `ctx.sparse_gains` of the same checkpoint (`adapt.sparse_gains`). Static: the scheme
  is the same for every task, so it is searched once per (model, budget, gains) and reused.
- a released label ("49kb" ... "148kb"): that released scheme;
- None: the largest released scheme.
"""
from . import sparse_search
from ..training.schemes import conv_weights_of, released_sparse_update, sparse_update
from .base import Method

_SEARCHED: dict = {}


class SparseUpdate(Method):
    name = "SparseUpdate"

    def scheme(self, backbone, support_x, support_y, ctx):
        shapes = backbone.conv_shapes()
        if ctx.sparse_update_label == "search":
            if ctx.sparse_gains is None:
                raise ValueError("SparseUpdate's search needs its contribution analysis: pass the table of "
                                 "adapt.sparse_gains(cfg, checkpoint) as Context.sparse_gains")
            # by content: an id() could be reused by another table after this one is freed
            key = (ctx.model, ctx.memory_kib, ctx.sparse_gains.to_csv(index=False))
            if key not in _SEARCHED:
                _SEARCHED[key] = sparse_search.evolve(shapes, ctx.sparse_gains, ctx.memory_kib,
                                                      conv_weights=conv_weights_of(backbone))
            return _SEARCHED[key]
        label = ctx.sparse_update_label or list(released_sparse_update(ctx.model))[-1]
        return sparse_update(ctx.model, label, shapes, conv_weights_of(backbone))
