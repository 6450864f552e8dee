"""Fisher potential of every channel of every candidate conv, from the support set alone.

TINYTRAIN.md section 2: for a channel `o` of an activation `a` with gradient `g = dL/da`,

    Delta_o = 1/(2N) * sum_n ( sum_d a[n,o,d] * g[n,o,d] )^2        P_i = sum_o Delta_o

Choices (the paper leaves them open; both are switchable):
- activation="input" (default): `a` is the conv's INPUT. TinyTrain, like SparseUpdate, trains
  the slices `weight[:, c]` of kept input channels, so an input-channel potential scores exactly
  what gets selected. activation="output" uses the conv's output (after its ReLU6); the
  potentials of a conv's input channels are then those of the conv that produces that input
  (conv i-1: the topology is a chain whose residual sums keep the channel count), see
  `FisherPotential.channel_scores`.
- path="total" (default): with activation="input", `g` is the TOTAL gradient of the input
  tensor. At the first conv of a residual block that tensor also feeds the skip connection, so
  `g` includes the gradient arriving through the skip (P_i is several times larger there).
  path="conv" uses the gradient through that conv alone, which is what reaches its weights:
  the conv reads an alias of its input that nothing else uses, and autograd's gradient of that
  alias is the conv path's share (the skip reads the original tensor; the alias still passes its
  gradient on, so earlier candidates see their usual total gradients). Exact, and no extra
  pass. Elsewhere, where the conv is its input's only consumer, both paths are identical.
  With activation="output" the switch changes nothing: every part of dL/dy, whatever consumes
  y afterwards, flows back through the conv that produced y, so its own path IS the total.
- The loss is the cosine-ProtoNet cross-entropy of each support sample against prototypes
  computed from the whole support set and held constant (detached). Then sample n's loss only
  depends on sample n's activations, `g[n]` is a true per-sample gradient, the squared sum is
  per sample, and chunking the support set is *exact*: peak memory is bounded by the chunk.
  (Prototypes with gradient would mix samples and make the "per-sample" square meaningless.)
- No weight gradients are formed: parameters do not require grad; `torch.autograd.grad` asks
  only for the activations, so backward stops at the earliest candidate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .heads import CosineHead, prototypes


@dataclass
class FisherPotential:
    """`per_channel[i]`: Delta over the channels of conv i's input (or output) activation."""
    activation: str
    per_channel: dict[int, torch.Tensor]
    n_samples: int
    path: str = "total"

    def layer(self, i: int) -> float:
        """P_i: the potential of conv i (sum over its channels)."""
        return float(self.per_channel[i].sum())

    def channel_scores(self, i: int) -> torch.Tensor | None:
        """Scores of conv i's INPUT channels, used to rank the channels to keep. In output mode
        those are the output potentials of conv i-1 (None for the first conv, whose input is
        the image)."""
        if self.activation == "input":
            return self.per_channel[i]
        return self.per_channel.get(i - 1)


def _loss(features: torch.Tensor, labels: torch.Tensor, protos: torch.Tensor, head) -> torch.Tensor:
    # sum, not mean: g[n] is then the gradient of sample n's own loss
    return F.cross_entropy(head(features, protos), labels, reduction="sum")


@torch.no_grad()
def _embed(backbone, x, chunk):
    return torch.cat([backbone(x[i:i + chunk]) for i in range(0, len(x), chunk)])


def fisher_potential(backbone, support_x: torch.Tensor, support_y: torch.Tensor,
                     layers: Sequence[int] | None = None, activation: str = "input",
                     chunk: int = 25, head=None, path: str = "total") -> FisherPotential:
    """Fisher potentials for the convs `layers` (default: all) of `backbone` over the support set.

    Two passes: a no-grad forward for the prototypes, then per chunk a forward and a backward
    that reaches only as far back as the earliest candidate activation. `path` ("total" or
    "conv"): which gradient of a conv's input is used (module docstring).
    """
    if activation not in ("input", "output"):
        raise ValueError(f"activation must be 'input' or 'output', not {activation!r}")
    if path not in ("total", "conv"):
        raise ValueError(f"path must be 'total' or 'conv', not {path!r}")
    if len(support_x) == 0:
        raise ValueError("the support set is empty: the Fisher potential needs labelled samples")
    convs = backbone.convs()
    layers = sorted(set(range(len(convs)) if layers is None else layers))
    index_of = {id(u): i for i, u in enumerate(convs)}
    wanted = set(layers)
    first = layers[0]
    head = head or CosineHead(learnable=False)
    n_way = int(support_y.max()) + 1
    dev = next(backbone.parameters()).device
    support_x, support_y = support_x.to(dev), support_y.to(dev)

    was_training = backbone.training
    flags = [p.requires_grad for p in backbone.parameters()]
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    try:
        protos = prototypes(_embed(backbone, support_x, chunk), support_y, n_way)
        sums = {i: None for i in layers}
        for start in range(0, len(support_x), chunk):
            xb, yb = support_x[start:start + chunk], support_y[start:start + chunk]
            acts: dict[int, torch.Tensor] = {}

            def unit(u, t, acts=acts):
                i = index_of[id(u)]
                if i == first and not t.requires_grad:
                    t = t.detach().requires_grad_(True)   # backward starts its graph here
                if i in wanted and activation == "input":
                    if path == "conv":
                        t = t.view_as(t)   # an alias only this conv reads (the skip keeps t)
                    acts[i] = t
                y = u(t)
                if i in wanted and activation == "output":
                    acts[i] = y
                return y

            with torch.enable_grad():
                feats = backbone.run(xb, unit=unit)
                loss = _loss(feats, yb, protos, head)
                keys = sorted(acts)
                grads = torch.autograd.grad(loss, [acts[i] for i in keys], allow_unused=True)
            for i, g in zip(keys, grads):
                a = acts[i].detach()
                per_sample = (a * g).sum((2, 3)) if g is not None else torch.zeros(a.shape[:2], device=dev)
                s = per_sample.double().pow(2).sum(0)
                sums[i] = s if sums[i] is None else sums[i] + s
    finally:
        for p, f in zip(backbone.parameters(), flags):
            p.requires_grad_(f)
        backbone.train(was_training)
    n = len(support_x)
    return FisherPotential(activation, {i: (s / (2 * n)).float().cpu() for i, s in sums.items()}, n, path)
