"""Trainable side branches beside a frozen block: TinyTL's lite residual and AdapterDrop's adapter.

A branch reads block b's input x and adds its output to the block's main path before the skip
connection: block(x) = x + main(x) + branch(x) (no skip where the block has none). An
`UpdateScheme` names them (`branches`: block -> kind); the sparse engine builds and trains them,
the cost model prices them from `branch_shape`, both from the same shapes.

- `lite_residual` (TinyTL, Cai et al. 2020; mit-han-lab/tinyml `LiteResidualModule`):
      avgpool 2x2 (ceil) -> conv k x k, 2 groups, the block's stride, width = in channels
      -> GroupNorm -> ReLU -> conv 1x1 to the block's out channels -> GroupNorm (scale 0)
      -> bilinear upsample to the block's output size.
  k = 5, shrunk by 2 while it exceeds the pooled resolution (TinyTL's rule). GroupNorm with 8
  channels per group replaces TinyTL's BatchNorm (few-shot batches are tiny). No pretrained branch
  weights exist for these nets: convs start from a fixed seeded draw (`seed`, the same in every
  task), the last norm's scale from 0, so the branch adds exactly 0 before the first step.
- `adapter` (AdapterDrop, Ruckle et al. 2021, for CNNs; no public CNN design exists, ours): one
  1x1 conv from the block's in to out channels at the block's stride, no bias, zero-initialised,
  so it too adds 0 before the first step.

What autograd keeps (the cost model's fp32 preset charges exactly this, `measure.py` checks it):
the pool saves nothing (`_Pool2`, its backward needs only the shape); each conv its input; each
GroupNorm its input plus a mean and an inverse std per (sample, group) in fp32; the ReLU its
output, which is also conv 1x1's input (one tensor, counted once); the upsample nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import ConvShape

KINDS = ("lite_residual", "adapter")
MAX_KERNEL = 5
GROUPS = 2
CHANNELS_PER_NORM_GROUP = 8


@dataclass(frozen=True)
class BranchShape:
    """One branch's geometry: its convs (index -1: not in the backbone's conv list), its
    GroupNorms as (channels, hw, groups), and the pooled input size (None: no pool)."""
    block: int
    kind: str
    convs: tuple[ConvShape, ...]
    norms: tuple[tuple[int, int, int], ...]
    in_channels: int
    in_hw: int
    out_hw: int
    pool_hw: int | None

    @property
    def params(self) -> int:
        return sum(c.params - c.out_channels for c in self.convs) + sum(2 * n[0] for n in self.norms)

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.convs)


def block_io(shapes: Sequence[ConvShape], block: int) -> tuple[ConvShape, ConvShape]:
    """(first, last) conv of block `block`, read off the conv names ('blocks.<b>.<part>')."""
    mine = [s for s in shapes if s.name.startswith(f"blocks.{block}.")]
    if not mine:
        raise ValueError(f"no block {block} in this conv list ({n_blocks(shapes)} blocks)")
    return mine[0], mine[-1]


def n_blocks(shapes: Sequence[ConvShape]) -> int:
    return len({s.name.split(".")[1] for s in shapes if s.name.startswith("blocks.")})


def first_conv_of(shapes: Sequence[ConvShape], block: int) -> int:
    """Index of block `block`'s first conv; past the last block: the conv after it (or len)."""
    if block >= n_blocks(shapes):
        last = block_io(shapes, n_blocks(shapes) - 1)[1].index
        return last + 1
    return block_io(shapes, block)[0].index


def _norm_groups(c: int) -> int:
    return max(1, c // CHANNELS_PER_NORM_GROUP) if c % CHANNELS_PER_NORM_GROUP == 0 else 1


def branch_shape(shapes: Sequence[ConvShape], block: int, kind: str) -> BranchShape:
    if kind not in KINDS:
        raise ValueError(f"unknown branch kind {kind!r}; choose one of {', '.join(KINDS)}")
    first, last = block_io(shapes, block)
    cin, cout, hw, out_hw = first.in_channels, last.out_channels, first.in_hw, last.out_hw
    stride = max(s.stride for s in shapes if s.name.startswith(f"blocks.{block}."))
    name = f"blocks.{block}.{kind}"
    if kind == "adapter":
        conv = ConvShape(-1, f"{name}.conv", cin, cout, 1, stride, 1, hw, out_hw, False)
        return BranchShape(block, kind, (conv,), (), cin, hw, out_hw, None)
    pool_hw = -(-hw // 2)
    k = MAX_KERNEL
    while k > pool_hw and k > 1:
        k -= 2
    q = -(-pool_hw // stride)
    conv1 = ConvShape(-1, f"{name}.conv1", cin, cin, k, stride, GROUPS, pool_hw, q, False)
    conv2 = ConvShape(-1, f"{name}.conv2", cin, cout, 1, 1, 1, q, q, False)
    norms = ((cin, q, _norm_groups(cin)), (cout, q, _norm_groups(cout)))
    return BranchShape(block, kind, (conv1, conv2), norms, cin, hw, out_hw, pool_hw)


class _Pool2(torch.autograd.Function):
    """2x2 average pool (ceil mode) that saves nothing: its backward needs only the input's shape."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return F.avg_pool2d(x, 2, 2, 0, ceil_mode=True)

    @staticmethod
    def backward(ctx, g):
        like = g.new_empty(1).expand(ctx.shape)
        return torch.ops.aten.avg_pool2d_backward(g, like, [2, 2], [2, 2], [0, 0], True, True, None)


class Branch(nn.Module):
    def __init__(self, shape: BranchShape, seed: int = 0):
        super().__init__()
        self.shape = shape
        gen = torch.Generator().manual_seed(seed * 1000 + shape.block)
        self.convs = nn.ParameterList()
        for c in shape.convs:
            w = torch.zeros(c.out_channels, c.in_channels // c.groups, c.kernel, c.kernel)
            if shape.kind == "lite_residual":     # kaiming-normal (fan out), as TinyTL initialises convs
                w.normal_(0.0, (2.0 / (c.out_channels * c.kernel ** 2)) ** 0.5, generator=gen)
            self.convs.append(nn.Parameter(w))
        self.norm_w, self.norm_b = nn.ParameterList(), nn.ParameterList()
        for i, (ch, _hw, _g) in enumerate(shape.norms):
            last = i == len(shape.norms) - 1
            self.norm_w.append(nn.Parameter(torch.zeros(ch) if last else torch.ones(ch)))
            self.norm_b.append(nn.Parameter(torch.zeros(ch)))

    def _conv(self, i, x):
        c = self.shape.convs[i]
        return F.conv2d(x, self.convs[i], None, c.stride, c.kernel // 2, 1, c.groups)

    def _norm(self, i, x):
        return F.group_norm(x, self.shape.norms[i][2], self.norm_w[i], self.norm_b[i])

    def forward(self, x):
        if self.shape.kind == "adapter":
            return self._conv(0, x)
        y = _Pool2.apply(x) if torch.is_grad_enabled() else F.avg_pool2d(x, 2, 2, 0, ceil_mode=True)
        y = F.relu(self._norm(0, self._conv(0, y)))
        y = self._norm(1, self._conv(1, y))
        if y.shape[-1] != self.shape.out_hw:
            y = F.interpolate(y, size=(self.shape.out_hw, self.shape.out_hw), mode="bilinear", align_corners=False)
        return y


def build(shapes: Sequence[ConvShape], branches: dict[int, str], device=None, seed: int = 0) -> dict[int, Branch]:
    return {b: Branch(branch_shape(shapes, b, k), seed).to(device) for b, k in sorted(branches.items())}


class WithBranches(nn.Module):
    """A backbone plus trained branches, for evaluation: `forward(x)` = `backbone.run(x)` with
    each branch added to its block's output."""

    def __init__(self, backbone, branches: dict[int, Branch]):
        super().__init__()
        self.backbone, self.branches = backbone, nn.ModuleDict({str(b): m for b, m in branches.items()})

    def branch(self, block: int, x):
        m = self.branches[str(block)] if str(block) in self.branches else None
        return None if m is None else m(x)

    def forward(self, x):
        return self.backbone.run(x, branch=self.branch)
