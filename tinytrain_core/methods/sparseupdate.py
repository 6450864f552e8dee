"""SparseUpdate (Lin et al. 2022): a static scheme found offline, channels by weight L2 norm.

`ctx.sparse_update_label`:
- "search": our reconstruction of the paper's search (`sparse_search.py`) at the memory budget
  `ctx.memory_kib` (TinyTrain's, for the matched-memory comparison), from the contribution
  analysis `ctx.sparse_gains` of the same checkpoint (`adapt.sparse_gains`). Static: the scheme
  is the same for every task, so it is searched once per (model, budget, gains) and reused.
- "nearest": the released scheme whose memory (our cost model) is nearest `ctx.memory_kib`: the
  matched-memory comparison without a search (the search's contribution analysis needs many
  base tasks to resolve gains; at the default profile's two it spent 13-23 KiB of 100);
- a released label ("49kb" ... "148kb"): that released scheme;
- None: the largest released scheme.
"""
from . import sparse_search
from ..training.costs import scheme_costs
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
        weights = conv_weights_of(backbone)
        if ctx.sparse_update_label == "nearest":
            return nearest_released(ctx.model, shapes, ctx.memory_kib, weights)
        label = ctx.sparse_update_label or list(released_sparse_update(ctx.model))[-1]
        return sparse_update(ctx.model, label, shapes, weights)


def nearest_released(model: str, shapes, memory_kib: float, conv_weights=None):
    """The released scheme of `model` whose backward memory is nearest `memory_kib` (ties: the
    smaller). Its channels are picked by weight norm, so `conv_weights` matter; its memory not."""
    by_kib = {label: scheme_costs(shapes, sparse_update(model, label, shapes)).memory_kib
              for label in released_sparse_update(model)}
    label = min(by_kib, key=lambda lb: (abs(by_kib[lb] - memory_kib), by_kib[lb]))
    return sparse_update(model, label, shapes, conv_weights)
