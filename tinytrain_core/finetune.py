"""Few-shot fine-tuning of one task (TINYTRAIN.md section 5, P>M>F's recipe).

Per task: start from the offline weights (the caller resets them), train exactly an
`UpdateScheme` through the sparse engine with Adam for a fixed number of steps, then classify the
queries by cosine similarity to the prototypes of the fine-tuned support features. Each step:

    f_s = engine(support)                          # prototypes, with gradient (as in P>M>F)
    f_a = engine(augment(support, 'finetune'))     # pseudo-queries: an augmented copy
    loss = CE( scale * (cos(f_a, protos(f_s)) + bias), labels )

Support and pseudo-queries go through the backbone as one batch of 2N. The head's scale and
bias are learnable and train too (they shape the loss only; evaluation is plain cosine).
`lr = 0`, or a scheme that trains nothing, is the None baseline: no step is taken.
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


@dataclass
class TaskResult:
    accuracy: float      # percent
    train_s: float
    losses: list[float]


def pseudo_queries(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The default `augment` of `train_scheme`: `data.augment_batch(x, 'finetune', gen)` run on
    one thread (its per-image small ops ran ~25x slower with two intra-op threads on a busy
    2-core machine: 0.2 s vs 5 s for 24 images)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return augment_batch(x.contiguous(), "finetune", gen)
    finally:
        torch.set_num_threads(threads)


def train_scheme(backbone, scheme: UpdateScheme, support_x: torch.Tensor, support_y: torch.Tensor,
                 steps: int, lr: float, seed: int = 0, augment=None, proto_grad: bool = True) -> list[float]:
    """Fine-tune `scheme` in place (the trained slices are written back into `backbone`).
    Returns the loss per step. `augment(x, generator)` defaults to the 'finetune' pipeline."""
    augment = augment or pseudo_queries
    if steps <= 0 or lr == 0 or scheme.earliest is None:
        return []
    dev = next(backbone.parameters()).device
    engine = SparseEngine(backbone, scheme)
    head = CosineHead().to(dev)
    opt = torch.optim.Adam(engine.parameters() + list(head.parameters()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    xs, ys = support_x.to(dev), support_y.to(dev)
    n, n_way = len(xs), int(ys.max()) + 1
    losses = []
    backbone.train()
    for _ in range(steps):
        xa = augment(support_x, gen).to(dev)
        if proto_grad:
            f = engine(to_channels_last(torch.cat([xs, xa])))
            fs, fa = f[:n], f[n:]
        else:
            with torch.no_grad():  # the engine, not the backbone: partial slices live in the engine until write_back
                fs = engine(to_channels_last(xs))
            fa = engine(to_channels_last(xa))
        loss = F.cross_entropy(head(fa, prototypes(fs, ys, n_way)), ys)
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
             steps: int, lr: float, seed: int = 0, augment=None, proto_grad: bool = True) -> TaskResult:
    """Reset to `initial_state`, fine-tune `scheme`, evaluate the queries, reset again."""
    backbone.load_state_dict(initial_state)
    t0 = time.perf_counter()
    losses = train_scheme(backbone, scheme, support_x, support_y, steps, lr, seed, augment, proto_grad)
    train_s = time.perf_counter() - t0
    acc = query_accuracy(backbone, support_x, support_y, query_x, query_y)
    backbone.load_state_dict(initial_state)
    return TaskResult(acc, train_s, losses)


def initial_state(backbone) -> dict:
    """A deep copy of the offline weights, to reset to before and after every task."""
    return {k: v.detach().clone() for k, v in backbone.state_dict().items()}
