"""Sparse training engine: trains exactly an `UpdateScheme`, and does only the work it needs.

`SparseEngine(backbone, scheme)` freezes the backbone and creates trainable parameters only for
what the scheme trains: for a weight-trained conv, a slice `weight[:, kept]` (depthwise:
`weight[kept]`); for a bias-trained conv, its bias. Optimiser state therefore exists only for
those. The forward walks `backbone.run` with its own per-conv function:

- convs before the earliest trained conv run under `torch.no_grad()`: nothing is saved, no
  gradient ever flows there;
- from the earliest trained conv on, each conv is one `_SparseConv` autograd function that saves
  (through `ctx.save_for_backward`, so `saved_tensors_hooks` sees all of it):
  * the kept input channels `x[:, kept]` if its weights train (all of `x`, no copy, if all train);
  * its ReLU6 mask bit-packed to 1 bit per element if it has a ReLU6;
  * nothing else: the weight it needs for the input gradient is referenced, not copied (it exists
    anyway), and bias gradients are sums of the output gradient.
- backward calls `aten.convolution_backward` with an output mask asking only for what is needed:
  the input gradient unless the conv is the earliest trained one, and the weight gradient of the
  kept slice only (on `x[:, kept]`), so `FlopCounterMode` sees exactly the work done.

Side branches (`scheme.branches`, `branches.py`) are built here, seeded, and train whole; the
gradient then has to reach the output of the lowest branch's block, so every conv of the blocks
above it runs as a `_SparseConv` (input gradient, masks) even if nothing in it trains.

This matches the cost model's `fp32` preset (`costs.py`) byte for byte and MAC for MAC;
`measure.py` checks it on real steps. Residual adds and the mean pool are done by `run()` and save
no tensors. Whole trained weights and biases share storage with the backbone's, so the optimiser
updates the backbone in place; partial slices are copies, written into the backbone's frozen
weights at each forward (so the conv sees current values) and by `write_back()` after the last
optimiser step. Under `torch.no_grad()` the engine runs the plain backbone (e.g. for prototypes).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nets import branches as side
from ..nets.models import Backbone, ConvUnit
from ..runtime import CL
from .schemes import UpdateScheme

_SHIFTS = torch.arange(8, dtype=torch.uint8)


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=CL)


# Multiplying 8 bytes b_0..b_7 (each 0 or 1, read as one little-endian int64) by this constant puts
# b_i at bit 56 + i with no carries: the top byte is the 8 flags packed. One op per 8 elements.
_GATHER = 0x0102040810204080


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """bool tensor -> uint8 tensor of ceil(numel/8) bytes (1 bit per element), read in the mask's
    memory order (NCHW or channels_last) so no copy is made."""
    flat = mask.permute(0, 2, 3, 1).reshape(-1) if _is_channels_last(mask) else mask.reshape(-1)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    words = flat.view(torch.uint8).view(torch.int64)
    return ((words * _GATHER) >> 56).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, shape, channels_last: bool) -> torch.Tensor:
    """Inverse of `pack_bits` for a mask of `shape` packed in the given layout, as 0/1 uint8."""
    n = 1
    for d in shape:
        n *= d
    bits = ((packed.unsqueeze(1) >> _SHIFTS.to(packed.device)) & 1).view(-1)[:n]
    if channels_last:
        b, c, h, w = shape
        return bits.view(b, h, w, c).permute(0, 3, 1, 2)
    return bits.view(shape)


class _ConvSpec:
    """Everything `_SparseConv` needs about one conv besides the tensors autograd tracks."""

    def __init__(self, unit: ConvUnit, kept: torch.Tensor | None, all_kept: bool):
        conv = unit.conv
        self.conv, self.relu6, self.depthwise = conv, unit.shape.relu6, unit.shape.depthwise
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        self.kept, self.all_kept = kept, all_kept


def _conv_backward(g, x, weight, stride, padding, groups, output_mask):
    return torch.ops.aten.convolution_backward(g, x, weight, None, stride, padding, (1, 1), False, (0, 0),
                                               groups, output_mask)


class _SparseConv(torch.autograd.Function):
    """conv (+ ReLU6) with trainable weight slice `w` and/or bias `b` (None when frozen)."""

    @staticmethod
    def forward(ctx, x, w, b, spec: _ConvSpec):
        conv = spec.conv
        weight = w if spec.all_kept and w is not None else conv.weight
        y = F.conv2d(x, weight, b if b is not None else conv.bias, spec.stride, spec.padding, 1, spec.groups)
        saved = []
        if w is not None:
            saved.append(x if spec.all_kept else x.index_select(1, spec.kept))
        if spec.relu6:
            y = F.hardtanh_(y, 0.0, 6.0)
            mask = (y > 0) & (y < 6)
            ctx.mask_layout = (y.shape, _is_channels_last(mask))
            saved.append(pack_bits(mask))
        ctx.save_for_backward(*saved)
        ctx.spec, ctx.weight, ctx.x_shape = spec, weight, x.shape
        ctx.has_w, ctx.has_b = w is not None, b is not None
        return y

    @staticmethod
    def backward(ctx, g):
        spec, saved = ctx.spec, list(ctx.saved_tensors)
        xs = saved.pop(0) if ctx.has_w else None
        if spec.relu6:
            g = g * unpack_bits(saved.pop(0), *ctx.mask_layout)
        need_x = ctx.needs_input_grad[0]
        gx = gw = gb = None
        if ctx.has_w and spec.all_kept:       # one call for both gradients of a fully trained conv
            gx, gw, _ = _conv_backward(g, xs, ctx.weight, spec.stride, spec.padding, spec.groups,
                                       (need_x, True, False))
        else:
            if need_x:
                shape_only = g.new_empty(1).expand(ctx.x_shape)
                gx = _conv_backward(g, shape_only, ctx.weight, spec.stride, spec.padding, spec.groups,
                                    (True, False, False))[0]
            if ctx.has_w:   # the kept slice only, from the kept input channels only
                c = xs.shape[1]
                gk, groups, out = ((g.index_select(1, spec.kept), c, c) if spec.depthwise
                                   else (g, 1, ctx.weight.shape[0]))
                shape_only = g.new_empty(1).expand(out, c // groups, *ctx.weight.shape[2:])
                gw = _conv_backward(gk, xs, shape_only, spec.stride, spec.padding, groups,
                                    (False, True, False))[1]
        if ctx.has_b:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb, None


class SparseEngine:
    """Train `scheme` on `backbone`: `engine(x)` -> pooled features; optimise `engine.parameters()`;
    `engine.write_back()` after the last step puts the trained slices into the backbone's weights."""

    def __init__(self, backbone: Backbone, scheme: UpdateScheme, seed: int = 0):
        units = backbone.convs()
        shapes = [u.shape for u in units]
        scheme.validate(shapes)
        self.backbone, self.scheme = backbone, scheme
        backbone.requires_grad_(False)
        self.index = {id(u): u.shape.index for u in units}
        self.branches = side.build(shapes, scheme.branches, backbone.first_conv.conv.weight.device, seed)
        for m in self.branches.values():
            m.to(memory_format=CL)
        # the first conv whose output needs a gradient: the earliest trained conv, or the first
        # conv above the lowest branch's block
        firsts = [i for i in (scheme.earliest,) if i is not None]
        if scheme.branches:
            firsts.append(side.first_conv_of(shapes, scheme.lowest_branch + 1))
        self.earliest = min(firsts) if firsts else None
        stages = [backbone.stage_of(scheme.earliest)] if scheme.earliest is not None else []
        if scheme.branches:
            stages.append(scheme.lowest_branch + 1)      # block b is stage b + 1
        self._cut = min(stages) if stages else 0
        self.weights: dict[int, nn.Parameter] = {}
        self.biases: dict[int, nn.Parameter] = {}
        self.specs: dict[int, _ConvSpec] = {}
        for u in units:
            i, s, w = u.shape.index, u.shape, u.conv.weight
            kept, all_kept = None, True
            if i in scheme.weights:
                chans = scheme.weights[i]
                all_kept = len(chans) == s.in_channels
                kept = None if all_kept else torch.tensor(chans, dtype=torch.long, device=w.device)
                # a whole weight is trained in place (the parameter shares the backbone's storage);
                # a slice is a copy, written back at each forward and by write_back()
                self.weights[i] = nn.Parameter(w.detach() if all_kept else
                                               w.detach().index_select(0 if s.depthwise else 1, kept).clone())
            if i in scheme.biases:
                self.biases[i] = nn.Parameter(u.conv.bias.detach())   # shares storage: trained in place
            self.specs[i] = _ConvSpec(u, kept, all_kept)
        self.units = units

    def parameters(self) -> list[nn.Parameter]:
        out = []
        for i in sorted(set(self.weights) | set(self.biases)):
            out += [p for p in (self.weights.get(i), self.biases.get(i)) if p is not None]
        for b in sorted(self.branches):
            out += list(self.branches[b].parameters())
        return out

    def _branch(self, block: int, x: torch.Tensor):
        m = self.branches.get(block)
        return None if m is None else m(x)

    def module(self) -> nn.Module:
        """The backbone with this scheme's trained branches, as one module (for evaluation)."""
        return side.WithBranches(self.backbone, self.branches) if self.branches else self.backbone

    @torch.no_grad()
    def _sync_slices(self):
        """Write the partial weight slices into the backbone's frozen weights (the conv uses them)."""
        for i, p in self.weights.items():
            spec = self.specs[i]
            if not spec.all_kept:
                spec.conv.weight.index_copy_(0 if spec.depthwise else 1, spec.kept, p)

    def _unit(self, u: ConvUnit, x: torch.Tensor) -> torch.Tensor:
        i = self.index[id(u)]
        if self.earliest is None or (i < self.earliest and not x.requires_grad):
            with torch.no_grad():
                return u(x)
        return _SparseConv.apply(x, self.weights.get(i), self.biases.get(i), self.specs[i])

    @property
    def cut(self) -> int:
        """The stage (`Backbone.stages`) holding the earliest trained conv or the lowest branch's
        block: everything before it is frozen, so its output for a given input never changes
        while this scheme trains."""
        return self._cut

    @torch.no_grad()
    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen prefix: the activation entering stage `cut` (x itself when it is 0)."""
        return self.backbone.run(x, stop=self.cut)

    def from_prefix(self, a: torch.Tensor) -> torch.Tensor:
        """Pooled features from `prefix(x)`: `from_prefix(prefix(x))` is `forward(x)` cut in
        two, so a caller may compute the prefix of an input once and reuse it."""
        self._sync_slices()
        return self.backbone.run(a, unit=self._unit, start=self.cut, branch=self._branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._sync_slices()
        if self.earliest is None or not torch.is_grad_enabled():   # e.g. prototypes under no_grad
            with torch.no_grad():
                return self.backbone.run(x, branch=self._branch)
        return self.backbone.run(x, unit=self._unit, branch=self._branch)

    __call__ = forward

    def write_back(self) -> None:
        """Put the trained slices into the backbone's weights (whole weights and biases are trained
        in place already). Call it after the last optimiser step before using the backbone alone."""
        self._sync_slices()
