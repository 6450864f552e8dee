"""FullTrain by plain autograd: the cheaper path when a scheme trains everything (issue 23).

A scheme that trains every conv's whole weight and its bias and has no side branches (FullTrain,
Transductive's scheme) leaves the sparse engine nothing to skip: no frozen prefix, no partial
slice, every input gradient needed. Its ReLU6 masks bit-packed to save memory (packing and
unpacking: ~28% of the engine's CPU time in a FullTrain profile) and its per-conv Python
autograd function then only cost time. `AutogradEngine` trains the same parameters with PyTorch's
own autograd instead: `requires_grad` on every conv weight and bias, the backbone's plain
forward, ATen's convolution and hardtanh backward. `fine_tune` keeps everything else (the same
Adam, betas, constant LR, fixed cosine head, DiffAugment draws and loss), so the two paths compute
the same function with floating-point sums taken in a different order (the bias gradient, ATen's
conv backward with or without the bias): not bit-identical. Measured on mcunet-5fps, default
test episodes (<= 15 support images, 40 steps), one thread: a FullTrain task 1.2-1.6x faster
(median 1.33x, `make bench` part 4). Per-step losses (`tests/test_dense.py`): float64 equal to
rtol 1e-10 over 10 steps; float32 equal for 3 steps to rtol 1e-5, then Adam, which steps ~lr
whatever a gradient's size, amplifies the rounding differences ~10x per step (up to 13% by step
6 on fixture tasks at lr 1e-3), yet the query accuracy came out equal on every task compared
(10 fixture tasks after 10 steps, 2 default test tasks after 40).

The switch is explicit and off by default (`fine_tune(..., full_autograd=True)`, `run_task`,
`AdaptConfig.full_autograd`), so the committed results, trained by the engine, stay reproducible
bit for bit; other schemes always take the engine (`uses_autograd`). It applies to `run_task`'s
path: with `batch_tasks` > 1, batchable tasks train through `batched.py` whatever the switch.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..nets.models import Backbone
from .schemes import UpdateScheme


def trains_everything(scheme: UpdateScheme, backbone: Backbone) -> bool:
    """Whether `scheme` trains every conv's whole weight and bias of `backbone`, and nothing else
    (no side branch): what `schemes.full_train` builds, whatever its name."""
    shapes = backbone.conv_shapes()
    whole = {s.index: tuple(range(s.in_channels)) for s in shapes}
    return not scheme.branches and scheme.weights == whole and scheme.biases == frozenset(whole)


def uses_autograd(scheme: UpdateScheme, backbone: Backbone, full_autograd: bool) -> bool:
    """The switch and the scheme together: plain autograd only where it trains the same parameters."""
    return full_autograd and trains_everything(scheme, backbone)


class AutogradEngine:
    """The part of `SparseEngine`'s interface that `fine_tune` uses, by plain autograd, for a
    scheme that trains everything. Nothing is frozen, so the prefix is the input itself; the
    parameters are the backbone's own (trained in place) in the engine's order (by conv: weight,
    bias); `write_back` turns `requires_grad` off again, as the engine leaves the backbone."""

    cut = 0

    def __init__(self, backbone: Backbone, scheme: UpdateScheme):
        if not trains_everything(scheme, backbone):
            raise ValueError(f"scheme {scheme.name} does not train every conv weight and bias: use SparseEngine")
        self.backbone = backbone
        backbone.requires_grad_(False)
        self._params = [p for u in backbone.convs() for p in (u.conv.weight, u.conv.bias)]
        for p in self._params:
            p.requires_grad_(True)

    def parameters(self) -> list[nn.Parameter]:
        return list(self._params)

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def from_prefix(self, a: torch.Tensor) -> torch.Tensor:
        return self.backbone.run(a)

    def write_back(self) -> None:
        self.backbone.requires_grad_(False)

    def module(self) -> nn.Module:
        return self.backbone
