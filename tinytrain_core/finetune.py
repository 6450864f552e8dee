"""Few-shot fine-tuning of one task (TINYTRAIN.md section 5, P>M>F's `ProtoNet_Finetune`).

Per task: start from the offline weights (the caller resets them), train exactly an
`UpdateScheme` through the sparse engine, then classify the queries by cosine similarity to the
prototypes of the fine-tuned support features. Each of `steps` steps:

    f_s = engine(support)                          # prototypes, with gradient (as in P>M>F)
    f_a = engine(diffaugment(support))             # pseudo-queries: an augmented copy (p = 0.9)
    loss = CE( scale * (cos(f_a, protos(f_s)) + bias), labels )
    Adam(betas 0.9/0.999, weight decay 0) on what the scheme trains, nothing else

The head is fixed (scale 10, bias 0: the ImageNet start's init, used for every checkpoint so the
two starts differ only in the backbone). `lr = 0`, or a scheme that trains nothing, is the None
baseline: no step is taken.

Exact reuse (`cache=True`): everything before the stage of the earliest trained conv is frozen,
so the clean support's prefix activation is computed once per task instead of once per step
(and reused for the pseudo-queries of a step that DiffAugment left unaugmented). The uncached
path computes the same prefix every step; both give identical results (tested).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import augment_batch
from .evaluate import embed
from .heads import CosineHead, prototype_accuracy, prototypes
from .runtime import to_channels_last
from .schemes import UpdateScheme
from .sparse import SparseEngine

HEAD_SCALE = 10.0
BETAS = (0.9, 0.999)


@dataclass
class TaskResult:
    accuracy: float      # percent
    train_s: float
    losses: list[float]


def pseudo_queries(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The default `augment` of `train_scheme`: DiffAugment (`data.augment_batch(x, 'finetune')`).
    Returns `x` itself when the batch is left unaugmented (probability 0.1)."""
    return augment_batch(x, "finetune", gen)


def train_scheme(backbone, scheme: UpdateScheme, support_x: torch.Tensor, support_y: torch.Tensor,
                 steps: int, lr: float, seed: int = 0, augment=None, cache: bool = True) -> list[float]:
    """Fine-tune `scheme` in place (the trained slices are written back into `backbone`).
    Returns the loss per step. `augment(x, generator)` defaults to DiffAugment."""
    augment = augment or pseudo_queries
    if steps <= 0 or lr == 0 or scheme.earliest is None:
        return []
    dev = next(backbone.parameters()).device
    engine = SparseEngine(backbone, scheme)
    head = CosineHead(HEAD_SCALE, learnable=False).to(dev)
    opt = torch.optim.Adam(engine.parameters(), lr=lr, betas=BETAS, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    xs, ys = to_channels_last(support_x.to(dev)), support_y.to(dev)
    n, n_way = len(xs), int(ys.max()) + 1
    clean = engine.prefix(xs) if cache else None
    losses = []
    backbone.train()
    for _ in range(steps):
        xa = augment(support_x, gen)
        a_s = clean if cache else engine.prefix(xs)
        a_a = a_s if xa is support_x else engine.prefix(to_channels_last(xa.to(dev)))
        f = engine.from_prefix(torch.cat([a_s, a_a]))
        loss = F.cross_entropy(head(f[n:], prototypes(f[:n], ys, n_way)), ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    engine.write_back()
    backbone.eval()
    return losses


def query_accuracy(backbone, support_x, support_y, query_x, query_y) -> float:
    """Percent of queries nearest (cosine) to their class prototype."""
    return 100.0 * prototype_accuracy(embed(backbone, support_x), support_y,
                                      embed(backbone, query_x), query_y)


def run_task(backbone, initial_state: dict, scheme: UpdateScheme, support_x, support_y, query_x, query_y,
             steps: int, lr: float, seed: int = 0, augment=None, cache: bool = True) -> TaskResult:
    """Reset to `initial_state`, fine-tune `scheme`, evaluate the queries, reset again."""
    backbone.load_state_dict(initial_state)
    t0 = time.perf_counter()
    losses = train_scheme(backbone, scheme, support_x, support_y, steps, lr, seed, augment, cache)
    train_s = time.perf_counter() - t0
    acc = query_accuracy(backbone, support_x, support_y, query_x, query_y)
    backbone.load_state_dict(initial_state)
    return TaskResult(acc, train_s, losses)


def initial_state(backbone) -> dict:
    """A deep copy of the offline weights, to reset to before and after every task."""
    return {k: v.detach().clone() for k, v in backbone.state_dict().items()}
