"""One task of a run: the method's scheme for the support set (`task_scheme`, timed), then
fine-tuning and query accuracy (`adapt_task`); the task's seed depends on the episode only, so
every arm sees the same augmentation draws."""
from __future__ import annotations

from .. import methods as method_registry
from ..training.costs import scheme_costs
from ..training.finetune import run_task
from .gains import gains_of
from .config import AdaptConfig


def scheme_summary(scheme, shapes) -> str:
    """'conv:kept/in' for each weight-trained conv, ';'-separated, with '@<hex>' after a partial
    conv: the kept channels as a bit mask (bit c = channel c), so that the (layer, channel) sets
    of two tasks can be compared (`analysis.scheme_items`). Side branches follow as
    '<kind>=<block>,<block>,...'."""
    def item(i, chans):
        n = shapes[i].in_channels
        mask = "" if len(chans) == n else "@" + format(sum(1 << c for c in chans), "x")
        return f"{i}:{len(chans)}/{n}{mask}"
    kinds = sorted(set(scheme.branches.values()))
    sides = [f"{k}=" + ",".join(str(b) for b, kb in scheme.branches.items() if kb == k) for k in kinds]
    return ";".join([item(i, c) for i, c in sorted(scheme.weights.items())] + sides)


def task_scheme(method, net, state, tensors, cfg: AdaptConfig, task_seed: int, checkpoint: str | None = None) -> tuple:
    """The method's scheme for this support set (timed: selection time) and its row fields.
    `checkpoint` names the weights `net` holds (SparseUpdate's search reads their gains)."""
    xs, ys = tensors[0], tensors[1]
    gains = None
    if method.name == "SparseUpdate" and cfg.sparse_update == "search":
        gains = gains_of(cfg, checkpoint)
    ctx = method_registry.Context(cfg.model, cfg.memory_kib, cfg.compute_macs, cfg.channels, cfg.activation,
                                  fisher_path=cfg.fisher_path, sparse_update_label=cfg.sparse_update,
                                  sparse_gains=gains, static_scheme=cfg.static_scheme, seed=task_seed)
    net.load_state_dict(state)
    scheme, select_s = method.timed_scheme(net, xs, ys, ctx)
    shapes = net.conv_shapes()
    cost = scheme_costs(shapes, scheme)
    return scheme, dict(backward_macs=cost.backward_macs, backward_kib=round(cost.memory_kib, 3),
                        select_s=round(select_s, 4), n_layers=len(scheme.trained_layers),
                        scheme=scheme_summary(scheme, shapes))


def adapt_task(method, net, state, tensors, cfg: AdaptConfig, lr: float, task_seed: int, chosen=None) -> dict:
    """One task: the scheme (`chosen` = a `task_scheme` result to reuse), fine-tuning from
    `state`, then query accuracy (`finetune.run_task`)."""
    scheme, fields = chosen or task_scheme(method, net, state, tensors, cfg, task_seed)
    res = run_task(net, state, scheme, *tensors, cfg.steps, lr if method.trains else 0.0,
                   seed=task_seed, cache=cfg.cache, entropy_weight=method.entropy_weight,
                   full_autograd=cfg.full_autograd)
    return dict(accuracy=res.accuracy, train_s=round(res.train_s, 4), **fields)


def task_seed(cfg, ep) -> int:
    return cfg.seed * 1_000_003 + ep.index
