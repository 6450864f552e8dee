"""Measure one real training step: backward MACs and bytes saved for backward.

- MACs: `torch.utils.flop_counter.FlopCounterMode` around `loss.backward()` (2 FLOPs per MAC).
  torch's formula for a convolution's *weight* gradient ignores `groups`: it charges a depthwise
  conv's weight gradient as if the conv were dense, C times too much. We register the correct
  formula (each weight-gradient element accumulates over N * H_out * W_out products) and keep
  torch's own for everything else; `raw_torch_counts=True` shows torch's figure.
- Saved bytes: every tensor packed by `torch.autograd.graph.saved_tensors_hooks` during the
  backbone's forward, parameters excluded (they exist anyway), a tensor saved by two ops (a
  ReLU's output that the next conv saves as its input) counted once: memory holds it once.

The loss is a fixed random projection of the pooled features, so no head work enters the counts.
"""
from __future__ import annotations

import copy
from math import prod

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from .costs import scheme_costs
from ..nets.models import Backbone
from ..runtime import CL, to_channels_last
from .schemes import UpdateScheme
from .sparse import SparseEngine


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                         _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    if transposed:
        raise NotImplementedError("transposed convolutions are not used by these backbones")
    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(list(grad_out_shape), list(w_shape), list(out_shape[0]), transposed=True)
    if output_mask[1]:
        flops += 2 * grad_out_shape[0] * prod(out_shape[1]) * prod(grad_out_shape[2:])
    return flops


def flop_counter(raw_torch_counts: bool = False) -> FlopCounterMode:
    mapping = {} if raw_torch_counts else {torch.ops.aten.convolution_backward: _conv_backward_flops}
    return FlopCounterMode(display=False, custom_mapping=mapping)


class SavedBytes:
    """Context manager: sums the bytes of every tensor autograd saves for backward inside it,
    skipping `exclude` (the parameters)."""

    def __init__(self, exclude=()):
        self.exclude = {id(p) for p in exclude}
        self.bytes = 0
        self.tensors = 0
        self._seen = set()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t):
        view = (t.data_ptr(), t.numel(), t.dtype)
        if id(t) not in self.exclude and not isinstance(t, nn.Parameter) and view not in self._seen:
            self._seen.add(view)
            self.bytes += t.numel() * t.element_size()
            self.tensors += 1
        return t

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


def _step_inputs(backbone: Backbone, batch: int, seed: int, channels_last: bool):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, 128, 128, generator=g) * 2 - 1
    proj = torch.randn(backbone.feature_dim, generator=g)
    dev = next(backbone.parameters()).device
    x = x.to(dev)
    if channels_last:
        x = to_channels_last(x)
    return x, proj.to(dev)


def measure_step(backbone: Backbone, scheme: UpdateScheme, batch: int = 2, seed: int = 0,
                 channels_last: bool = True, copy_backbone: bool = True) -> dict:
    """One forward + backward of `scheme` with the sparse engine on `backbone` (a copy unless
    copy_backbone=False). Returns measured and analytic (cost model, fp32 preset) numbers:
    MACs per sample (backward, forward) and saved bytes for the whole batch."""
    bb = copy.deepcopy(backbone) if copy_backbone else backbone
    if channels_last:
        bb = bb.to(memory_format=CL)
    engine = SparseEngine(bb, scheme)
    x, proj = _step_inputs(bb, batch, seed, channels_last)
    params = list(engine.parameters()) + list(bb.parameters())
    with SavedBytes(exclude=params) as saved, flop_counter() as fwd:
        feats = engine(x)
    with flop_counter() as bwd:
        if feats.requires_grad:
            (feats @ proj).square().mean().backward()
    cost = scheme_costs(bb.conv_shapes(), scheme, preset="fp32", batch=batch)
    return dict(scheme=scheme.name, batch=batch,
                measured_forward_macs=fwd.get_total_flops() / 2 / batch,
                measured_backward_macs=bwd.get_total_flops() / 2 / batch,
                measured_saved_bytes=saved.bytes,
                analytic_forward_macs=cost.forward_macs, analytic_backward_macs=cost.backward_macs,
                analytic_saved_bytes=cost.saved_bytes)


def measure_dense_step(backbone: Backbone, batch: int = 2, seed: int = 0, channels_last: bool = True) -> dict:
    """Plain autograd FullTrain on a copy of `backbone`, for comparison: what an unmodified
    training step computes and keeps (conv inputs *and* ReLU6 inputs in fp32, the image's gradient
    not computed)."""
    bb = copy.deepcopy(backbone).requires_grad_(True)
    if channels_last:
        bb = bb.to(memory_format=CL)
    x, proj = _step_inputs(bb, batch, seed, channels_last)
    with SavedBytes(exclude=list(bb.parameters())) as saved:
        feats = bb(x)
    with flop_counter() as bwd:
        (feats @ proj).square().mean().backward()
    return dict(batch=batch, measured_backward_macs=bwd.get_total_flops() / 2 / batch,
                measured_saved_bytes=saved.bytes)
