"""Many tasks per launch: K independent fine-tuning tasks of one backbone trained as one program.

On a GPU one MCU-sized task at a time is launch-bound (issue 14: a mcunet step takes 8-17 ms
whatever the batch), so `fine_tune_many` trains K tasks together with `torch.func.vmap`:

- every task has its own copy of what any of the K schemes trains: the weights of the union of
  their weight-trained convs and the biases of the union of their bias-trained convs, stacked
  along a leading task dimension;
- each task's gradient is masked to its own scheme (its convs' kept input channels, depthwise:
  kept channels; its biases) before the step. Adam's update of an entry whose gradient has always
  been 0 is exactly 0, so every task trains exactly its scheme: the dense masked form of the
  sparse engine's step. The Adam step is `torch.optim.Adam`'s arithmetic with one LR per task;
- tasks of different ways and shots are padded to the largest support set: padded rows weigh 0
  in the prototypes and the loss, and a task's absent classes get logit -inf;
- the frozen prefix (everything before the earliest stage any scheme trains) runs once per step
  for all tasks, unbatched; DiffAugment's random numbers come from each task's own generator in
  the one-task order (`data.finetune_draws`) and are applied on the device.

So task k's result equals `finetune.run_task` on task k alone (`tests/test_batched.py`, per
method: same accuracies, weights within float tolerance). What it does NOT do is skip work: the
dense masked step computes every gradient of the union, which is what keeps K different schemes
in one program. The sparse engine (`sparse.py`) stays the on-device path whose memory and MACs
the cost model counts. Side branches (TinyTL, AdapterDrop) and transductive fine-tuning are not
batched (`batchable`): their tasks run one at a time.

`train_s` of a task is the batch's wall time divided by K (amortised).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.func import vmap

from ..data import apply_finetune, finetune_draws
from .finetune import BETAS, HEAD_SCALE, TaskResult, query_accuracy
from ..runtime import to_channels_last
from .schemes import UpdateScheme

EPS = 1e-8      # torch.optim.Adam's default


def batchable(method, scheme: UpdateScheme) -> bool:
    """Can this method's task train in a batch? Not with side branches or a transductive loss."""
    return not scheme.branches and not method.entropy_weight


def _masks(units, schemes: list[UpdateScheme], dev) -> tuple[dict, dict]:
    """{conv: (K, *weight.shape) 0/1 mask} over the union of weight-trained convs, and
    {conv: (K, out) mask} over the union of bias-trained convs."""
    wmask, bmask = {}, {}
    for i in sorted(set().union(*(s.weights for s in schemes))):
        w, shape = units[i].conv.weight, units[i].shape
        if shape.groups not in (1, shape.in_channels):
            raise NotImplementedError(f"conv {i}: grouped conv with {shape.groups} groups")
        m = torch.zeros(len(schemes), *w.shape, device=dev, dtype=w.dtype)
        for k, s in enumerate(schemes):
            kept = list(s.weights.get(i, ()))
            if shape.depthwise:
                m[k, kept] = 1.0
            else:
                m[k, :, kept] = 1.0
        wmask[i] = m
    for i in sorted(set().union(*(s.biases for s in schemes))):
        bmask[i] = torch.tensor([[float(i in s.biases)] for s in schemes], device=dev,
                                dtype=units[i].conv.bias.dtype).expand(
            len(schemes), units[i].conv.out_channels).contiguous()
    return wmask, bmask


def _pad(parts: list[torch.Tensor], n: int) -> torch.Tensor:
    """Stack per-task tensors (n_k, ...) into (K, n, ...), zero-padded."""
    out = parts[0].new_zeros(len(parts), n, *parts[0].shape[1:])
    for k, p in enumerate(parts):
        out[k, :len(p)] = p
    return out


class _Adam:
    """torch.optim.Adam's arithmetic (weight decay 0, no amsgrad) on stacked per-task tensors,
    with one learning rate per task."""

    def __init__(self, params: list[torch.Tensor], lrs: torch.Tensor):
        self.params, self.lrs, self.t = params, lrs, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]):
        self.t += 1
        b1, b2 = BETAS
        c1, c2 = 1 - b1 ** self.t, (1 - b2 ** self.t) ** 0.5
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            lr = self.lrs.view(-1, *([1] * (p.dim() - 1)))
            p.sub_((lr / c1) * m / (v.sqrt() / c2 + EPS))


def fine_tune_many(backbone, initial_state: dict, schemes: list[UpdateScheme], tasks: list[tuple],
                   steps: int, lrs: list[float], seeds: list[int]) -> list[TaskResult]:
    """Train task k (`tasks[k]` = support_x, support_y, query_x, query_y on the CPU) with
    `schemes[k]` at `lrs[k]` from `initial_state`, its augmentation drawn from a generator seeded
    `seeds[k]`; return each task's `TaskResult` (query accuracy after training). The backbone is
    left holding `initial_state`. Tasks that train nothing (lr 0, an empty scheme) are evaluated
    untrained, as `finetune.run_task` does."""
    if not (len(schemes) == len(tasks) == len(lrs) == len(seeds)):
        raise ValueError("schemes, tasks, lrs and seeds must have one entry per task")
    out: list[TaskResult | None] = [None] * len(tasks)
    live = [k for k, s in enumerate(schemes) if steps > 0 and lrs[k] != 0 and s.trains]
    if any(schemes[k].branches for k in live):
        raise ValueError("schemes with side branches cannot be batched; run them with finetune.run_task")
    backbone.load_state_dict(initial_state)
    for k in set(range(len(tasks))) - set(live):
        out[k] = TaskResult(query_accuracy(backbone, *tasks[k]), 0.0, [])
    if live:
        t0 = time.perf_counter()
        params, losses = _train(backbone, [schemes[k] for k in live], [tasks[k] for k in live], steps,
                                [lrs[k] for k in live], [seeds[k] for k in live])
        train_s = (time.perf_counter() - t0) / len(live)
        for j, k in enumerate(live):
            with torch.no_grad():
                for name, p in params.items():
                    backbone.get_parameter(name).copy_(p[j])
            out[k] = TaskResult(query_accuracy(backbone, *tasks[k]), train_s, losses[j])
            backbone.load_state_dict(initial_state)
    return out


def _train(backbone, schemes, tasks, steps, lrs, seeds) -> tuple[dict, list[list[float]]]:
    """The K live tasks' training; returns ({parameter name: (K, ...) trained}, losses per task)."""
    dev = next(backbone.parameters()).device
    units = backbone.convs()
    backbone.requires_grad_(False)
    wmask, bmask = _masks(units, schemes, dev)
    earliest = min(min(s.trained_layers) for s in schemes)
    cut = backbone.stage_of(earliest)
    names = {id(m): n for n, m in backbone.named_modules()}
    pw = {i: units[i].conv.weight.detach().expand(len(schemes), *units[i].conv.weight.shape).clone().requires_grad_()
          for i in wmask}
    pb = {i: units[i].conv.bias.detach().expand(len(schemes), -1).clone().requires_grad_() for i in bmask}
    index = {id(u): u.shape.index for u in units}

    def unit(u, x, w, b):
        i = index[id(u)]
        if i not in w and i not in b:
            return u(x)
        y = F.conv2d(x, w.get(i, u.conv.weight), b.get(i, u.conv.bias), u.conv.stride, u.conv.padding, 1,
                     u.conv.groups)
        return F.hardtanh(y, 0.0, 6.0) if u.shape.relu6 else y

    def task_loss(w, b, a, onehot, y, valid, absent):
        """One task: pooled features of [support; pseudo-queries], cosine-prototype CE (P>M>F)."""
        f = backbone.run(a, unit=lambda u, x: unit(u, x, w, b), start=cut)
        n = onehot.shape[0]
        fs, fa = f[:n], f[n:]
        oh = onehot * valid[:, None]
        protos = (oh.t() @ fs) / oh.sum(0).clamp_min(1.0)[:, None]
        logits = HEAD_SCALE * (F.normalize(fa, dim=-1) @ F.normalize(protos, dim=-1).t())
        logits = logits.masked_fill(absent, float("-inf"))
        ce = F.cross_entropy(logits, y, reduction="none")
        return (ce * valid).sum() / valid.sum()

    xs = [to_channels_last(t[0].to(dev)) for t in tasks]
    ys = [t[1].to(dev) for t in tasks]
    sizes = [len(x) for x in xs]
    n, ways = max(sizes), max(int(y.max()) + 1 for y in ys)
    y_pad = _pad(ys, n)
    dtype = units[0].conv.weight.dtype
    valid = _pad([torch.ones(s, device=dev, dtype=dtype) for s in sizes], n)
    onehot = F.one_hot(y_pad, ways).to(dtype)
    absent = torch.tensor([[c > int(y.max()) for c in range(ways)] for y in ys], device=dev)[:, None, :]
    absent = absent.expand(-1, n, -1)

    def prefix(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad():
            return list(backbone.run(torch.cat(batch), stop=cut).split([len(x) for x in batch]))
    clean = prefix(xs)
    a_s = _pad(clean, n)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    flat = list(pw.values()) + list(pb.values())
    masks = list(wmask.values()) + list(bmask.values())
    opt = _Adam(flat, torch.tensor(lrs, device=dev, dtype=dtype))
    losses = []
    batched_loss = vmap(task_loss)
    backbone.train()
    for _ in range(steps):
        draws = [finetune_draws(sz, t[0].shape[2], t[0].shape[3], g) for sz, t, g in zip(sizes, tasks, gens)]
        aug = [k for k, d in enumerate(draws) if d is not None]
        a_aug = list(clean)         # an unaugmented task's pseudo-queries are its clean support
        if aug:
            xa = [to_channels_last(apply_finetune(tasks[k][0].to(dev), draws[k])) for k in aug]
            for k, a in zip(aug, prefix(xa)):
                a_aug[k] = a
        a = torch.cat([a_s, _pad(a_aug, n)], dim=1)
        loss = batched_loss(pw, pb, a, onehot, y_pad, valid, absent)
        grads = torch.autograd.grad(loss.sum(), flat)
        opt.step([g * m for g, m in zip(grads, masks)])
        losses.append(loss.detach())
    backbone.eval()
    params = {names[id(units[i].conv)] + ".weight": p.detach() for i, p in pw.items()}
    params.update({names[id(units[i].conv)] + ".bias": p.detach() for i, p in pb.items()})
    per_task = torch.stack(losses, 1).cpu().tolist() if losses else [[] for _ in schemes]
    return params, per_task
