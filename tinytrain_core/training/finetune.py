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
baseline: no step is taken. A scheme with side branches (TinyTL, AdapterDrop) is evaluated with
its trained branches (`SparseEngine.module`); they are dropped with the engine after the task.

Transductive fine-tuning (Dhillon et al. 2020; `entropy_weight` > 0): the loss adds
`entropy_weight` x the mean entropy of the softmax predictions of unlabelled queries (their
labels are never read). Each step takes a fresh random batch of as many queries as there are
support images (Dhillon et al. train on mini-batches; all queries every step would cost ~3x a
FullTrain step), drawn from a generator of its own so the augmentation draws stay those of
every other method.

Exact reuse (`cache=True`): everything before the stage of the earliest trained conv is frozen,
so the clean support's prefix activation is computed once per task instead of once per step
(and reused for the pseudo-queries of a step that DiffAugment left unaugmented). The uncached
path computes the same prefix every step; both give identical results (tested).

Plain autograd for FullTrain (`full_autograd=True`, off by default; `dense.py`): a scheme that
trains every conv weight and bias has nothing for the engine to skip, so it trains by PyTorch's
own autograd instead, the loop above unchanged (1.2-1.6x faster per task; losses equal to
rounding, not bit for bit, `dense.py` says how close). Other schemes take the engine whatever
the switch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import augment_batch
from .heads import CosineHead, embed, prototype_accuracy, prototypes
from ..runtime import to_channels_last
from .dense import AutogradEngine, uses_autograd
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


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the softmax of each row of `logits`."""
    logp = F.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(1).mean()


def fine_tune(backbone, scheme: UpdateScheme, support_x: torch.Tensor, support_y: torch.Tensor,
              steps: int, lr: float, seed: int = 0, augment=None, cache: bool = True,
              query_x: torch.Tensor | None = None, entropy_weight: float = 0.0, full_autograd: bool = False):
    """Fine-tune `scheme` in place (the trained slices are written back into `backbone`).
    Returns (loss per step, the model to evaluate: `backbone`, or it with the trained branches).
    `augment(x, generator)` defaults to DiffAugment; `query_x` is read only if entropy_weight > 0;
    `full_autograd`: a scheme that trains everything trains by plain autograd (module docstring)."""
    augment = augment or pseudo_queries
    if steps <= 0 or lr == 0 or not scheme.trains:
        return [], backbone
    if entropy_weight and query_x is None:
        raise ValueError("transductive fine-tuning (entropy_weight > 0) needs the unlabelled queries")
    dev = next(backbone.parameters()).device
    engine = (AutogradEngine(backbone, scheme) if uses_autograd(scheme, backbone, full_autograd)
              else SparseEngine(backbone, scheme, seed=0))
    head = CosineHead(HEAD_SCALE, learnable=False).to(dev)
    opt = torch.optim.Adam(engine.parameters(), lr=lr, betas=BETAS, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    xs, ys = to_channels_last(support_x.to(dev)), support_y.to(dev)
    n, n_way = len(xs), int(ys.max()) + 1
    clean = engine.prefix(xs) if cache else None
    if entropy_weight:
        qgen = torch.Generator().manual_seed(seed + 1)
        xq = to_channels_last(query_x.to(dev))
        q_clean = engine.prefix(xq) if cache else None
    losses = []
    backbone.train()
    for _ in range(steps):
        xa = augment(support_x, gen)
        a_s = clean if cache else engine.prefix(xs)
        a_a = a_s if xa is support_x else engine.prefix(to_channels_last(xa.to(dev)))
        parts = [a_s, a_a]
        if entropy_weight:
            pick = torch.randperm(len(xq), generator=qgen)[:n].to(dev)
            parts.append(q_clean.index_select(0, pick) if cache else engine.prefix(xq.index_select(0, pick)))
        f = engine.from_prefix(torch.cat(parts))
        protos = prototypes(f[:n], ys, n_way)
        loss = F.cross_entropy(head(f[n:2 * n], protos), ys)
        if entropy_weight:
            loss = loss + entropy_weight * entropy(head(f[2 * n:], protos))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    engine.write_back()
    backbone.eval()
    return losses, engine.module().eval()


def train_scheme(backbone, scheme: UpdateScheme, support_x: torch.Tensor, support_y: torch.Tensor,
                 steps: int, lr: float, seed: int = 0, augment=None, cache: bool = True,
                 full_autograd: bool = False) -> list[float]:
    """`fine_tune`'s losses, for schemes without branches (whose result is the backbone itself)."""
    return fine_tune(backbone, scheme, support_x, support_y, steps, lr, seed, augment, cache,
                     full_autograd=full_autograd)[0]


def query_accuracy(backbone, support_x, support_y, query_x, query_y) -> float:
    """Percent of queries nearest (cosine) to their class prototype."""
    return 100.0 * prototype_accuracy(embed(backbone, support_x), support_y,
                                      embed(backbone, query_x), query_y)


def run_task(backbone, initial_state: dict, scheme: UpdateScheme, support_x, support_y, query_x, query_y,
             steps: int, lr: float, seed: int = 0, augment=None, cache: bool = True,
             entropy_weight: float = 0.0, full_autograd: bool = False) -> TaskResult:
    """Reset to `initial_state`, fine-tune `scheme` (transductively if entropy_weight > 0; by plain
    autograd if `full_autograd` and the scheme trains everything), evaluate the queries, reset again."""
    backbone.load_state_dict(initial_state)
    t0 = time.perf_counter()
    losses, model = fine_tune(backbone, scheme, support_x, support_y, steps, lr, seed, augment, cache,
                              query_x=query_x, entropy_weight=entropy_weight, full_autograd=full_autograd)
    train_s = time.perf_counter() - t0
    acc = query_accuracy(model, support_x, support_y, query_x, query_y)
    backbone.load_state_dict(initial_state)
    return TaskResult(acc, train_s, losses)


def initial_state(backbone) -> dict:
    """A deep copy of the offline weights, to reset to before and after every task."""
    return {k: v.detach().clone() for k, v in backbone.state_dict().items()}
