"""Backward-pass cost model: what one training step of an update scheme costs, per layer and in total.

Pure arithmetic over the conv shapes (no torch), so a budgeted selection can call it thousands of
times. Every number here is checked twice in the tests: against the oracle numbers of
`../shared/reference/ACCOUNTING.md`, and against a real training step of the sparse engine
(`measure.py`: `FlopCounterMode` for MACs, `saved_tensors_hooks` for saved bytes).

Compute (MACs; a MAC = 2 FLOPs):
- forward: every conv's MACs.
- backward = input-gradient MACs + weight-gradient MACs.
  * input gradient: every conv after the earliest trained conv (the gradient has to reach it).
    It costs what the conv's forward costs. The earliest trained conv needs none, nor does the
    first conv of the network when it trains: the image needs no gradient. The paper's FullTrain
    figure (2 x forward) still counts it: `count_input_grad_of_first=True` reproduces that
    convention; the measured engine never computes it, so measured-vs-analytic uses False.
  * weight gradient of the kept input channels c of a trained conv: (out/groups) * c * k^2 * H_out * W_out.
  * bias gradients are sums, not MACs (FlopCounterMode ignores them too).

Memory, two presets (`PRESETS`):
- `tiny_training_int8` (tiny-training's rule, batch 1, the paper's section 7, oracles):
  activations and weights 8 bit, biases 32 bit, no optimiser state, classifier weights not
  counted but its input activation (in_features bytes) is. A conv that trains its bias saves a
  1-bit mask of its output (linear or not: the int8 output clamp needs it); a conv that trains
  weights saves its kept input channels (H_in*W_in*c bytes) and its kept weights
  ((out/groups)*c*k^2 bytes). We also charge a 1-bit mask to a frozen ReLU6 conv behind the
  earliest trained conv (the gradient must pass its clamp); SparseUpdate's released schemes never
  have one, so the oracles are unaffected.
- `fp32` (TinyTL-style, times a batch): what a float training step really keeps for backward,
  i.e. exactly what the sparse engine saves and `measure.py` counts:
  saved_bytes = batch * (kept input channels of every weight-trained conv, 4 bytes each)
              + ceil(batch * out * H_out * W_out / 8) for every ReLU6 conv from the earliest
                trained conv on (1-bit masks; linear convs need none in float);
  plus parameters (trainable 32 bit, frozen 8 bit), gradients of the trainable ones (32 bit)
  and Adam's two moments (32 bit each). memory_bytes = the sum of all four.
- `fp32_unfolded_bn`: `fp32` plus the fp32 BatchNorm input of every weight-trained conv (below).

Side branches (`scheme.branches`: TinyTL's lite residual, AdapterDrop's adapter; `branches.py`)
train whole. The gradient must then reach the output of the lowest branch's block: every conv
of the blocks above it computes its input gradient and keeps its mask (as behind a trained conv).
A branch costs its convs' forward MACs, their weight gradients, and their input gradients (conv
1x1 of a lite residual always; a branch's first conv when its block's input carries a gradient);
pools, norms and upsampling are not MACs (FlopCounterMode counts none either). It saves each
conv's input and each GroupNorm's input (act_bytes per element) plus 2 fp32 statistics per
(sample, norm group); the ReLU's output is the 1x1 conv's input, charged once (`branches.py`).
Its conv weights are trained weights, its norm scales and shifts are charged like biases.
`extra_params` (e.g. a classifier) are charged as trained parameters only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..nets.branches import branch_shape, first_conv_of
from ..nets.models import ConvShape
from .schemes import UpdateScheme

KIB = 1024
MB = 1e6

PRESETS = {
    "tiny_training_int8": dict(act_bytes=1, trained_weight_bytes=1, frozen_weight_bytes=0, bias_bytes=4,
                               grad_bytes=0, optimizer_states=0, masks_on_bias_convs=True,
                               classifier_input=True),
    "fp32": dict(act_bytes=4, trained_weight_bytes=4, frozen_weight_bytes=1, bias_bytes=4,
                 grad_bytes=4, optimizer_states=2, masks_on_bias_convs=False, classifier_input=False),
}
# TinyTL's rule on the un-folded network: a BatchNorm whose conv trains weights also trains its scale
# and saves its fp32 input (the conv output). Not what our engine does (BN is folded), but the rule
# that makes the paper's FullTrain MB figures one consistent batch (notebook 04).
PRESETS["fp32_unfolded_bn"] = dict(PRESETS["fp32"], bn_inputs=True)


@dataclass
class SchemeCost:
    scheme: str
    preset: str
    batch: int
    forward_macs: int
    input_grad_macs: int
    weight_grad_macs: int
    saved_bytes: int        # activations (and 1-bit masks) saved for backward
    mask_bytes: int         # the 1-bit-mask part of saved_bytes
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    trainable_params: int
    per_layer: list[dict] = field(repr=False, default_factory=list)

    @property
    def backward_macs(self) -> int:
        return self.input_grad_macs + self.weight_grad_macs

    @property
    def memory_bytes(self) -> int:
        """The preset's backward memory."""
        return self.saved_bytes + self.param_bytes + self.grad_bytes + self.optimizer_bytes

    @property
    def memory_kib(self) -> float:
        return self.memory_bytes / KIB

    @property
    def memory_mb(self) -> float:
        return self.memory_bytes / MB


def _branch_costs(shapes, block: int, kind: str, scheme: UpdateScheme, batch: int, p: dict) -> dict:
    """One side branch's row: MACs, saved bytes and parameters (module docstring)."""
    bs = branch_shape(shapes, block, kind)
    first = first_conv_of(shapes, block)
    # the block's input carries a gradient if a conv before it trains or a branch sits below it
    grad_in = any(i < first for i in scheme.trained_layers) or any(b < block for b in scheme.branches)
    ig = sum(c.macs for k, c in enumerate(bs.convs) if k > 0 or grad_in)
    elems = sum(c.in_channels * c.in_hw ** 2 for c in bs.convs) + sum(ch * hw ** 2 for ch, hw, _ in bs.norms)
    stats = sum(2 * g * 4 for _, _, g in bs.norms)
    weights = sum(kept_weight_count(c, c.in_channels) for c in bs.convs)
    norm_params = sum(2 * ch for ch, _, _ in bs.norms)
    return dict(index=-1, name=f"blocks.{block}.{kind}", forward_macs=bs.macs, input_grad_macs=ig,
                weight_grad_macs=bs.macs, backward_macs=ig + bs.macs, kept_channels=0, trains_bias=False,
                saved_act_bytes=batch * (elems * p["act_bytes"] + stats), mask_bytes=0,
                trainable_params=weights + norm_params, weights=weights, norm_params=norm_params)


def kept_weight_count(s: ConvShape, c: int) -> int:
    """Weights in the slice weight[:, kept] of a conv with c kept input channels."""
    return (s.out_channels // s.groups) * c * s.kernel ** 2


def weight_grad_macs(s: ConvShape, c: int) -> int:
    return kept_weight_count(s, c) * s.out_hw ** 2


def scheme_costs(shapes: Sequence[ConvShape], scheme: UpdateScheme, preset: str = "tiny_training_int8",
                 batch: int = 1, count_input_grad_of_first: bool = False) -> SchemeCost:
    """Price `scheme` on the conv list `shapes` (a backbone's `conv_shapes()`)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown cost preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    p = PRESETS[preset]
    earliest = scheme.earliest
    weights, biases = scheme.weights, scheme.biases
    # the first conv whose input carries a gradient because of a branch below it
    above = first_conv_of(shapes, scheme.lowest_branch + 1) if scheme.branches else len(shapes)
    fwd = in_grad = w_grad = saved = masks = 0
    trainable = frozen = 0
    rows = []
    for s in shapes:
        i = s.index
        c = len(weights.get(i, ()))
        if c > s.in_channels:
            raise ValueError(f"scheme {scheme.name}: conv {i} keeps {c} of {s.in_channels} channels")
        behind = (earliest is not None and i >= earliest) or i >= above
        grad_in = (earliest is not None and (i > earliest or (i == 0 and count_input_grad_of_first))) or i >= above
        ig = s.macs if behind and grad_in else 0
        wg = weight_grad_macs(s, c)
        act = batch * c * s.in_hw ** 2 * p["act_bytes"]
        if c and p.get("bn_inputs"):
            act += batch * s.out_channels * s.out_hw ** 2 * p["act_bytes"]
        needs_mask = behind and (s.relu6 or (p["masks_on_bias_convs"] and i in biases))
        mask = -(-batch * s.out_channels * s.out_hw ** 2 // 8) if needs_mask else 0
        kept_w = kept_weight_count(s, c)
        train_b = s.out_channels if i in biases else 0
        trainable += kept_w + train_b
        frozen += s.params - kept_w - train_b
        fwd, in_grad, w_grad = fwd + s.macs, in_grad + ig, w_grad + wg
        saved, masks = saved + act + mask, masks + mask
        rows.append(dict(index=i, name=s.name, forward_macs=s.macs, input_grad_macs=ig, weight_grad_macs=wg,
                         backward_macs=ig + wg, kept_channels=c, trains_bias=i in biases,
                         saved_act_bytes=act, mask_bytes=mask, trainable_params=kept_w + train_b))
    extra = sum(scheme.extra_params.values())
    branch_w = branch_norm = 0
    for b, kind in scheme.branches.items():
        r = _branch_costs(shapes, b, kind, scheme, batch, p)
        fwd, in_grad, w_grad, saved = fwd + r["forward_macs"], in_grad + r["input_grad_macs"], \
            w_grad + r["weight_grad_macs"], saved + r["saved_act_bytes"]
        branch_w, branch_norm = branch_w + r["weights"], branch_norm + r["norm_params"]
        rows.append(r)
    if p["classifier_input"] and scheme.trains:
        saved += batch * shapes[-1].out_channels * p["act_bytes"]
    trained_w = sum(r["trainable_params"] - (shapes[r["index"]].out_channels if r["trains_bias"] else 0)
                    for r in rows if r["index"] >= 0) + branch_w
    trainable += branch_w + branch_norm
    n_bias = sum(shapes[i].out_channels for i in biases) + branch_norm
    param_bytes = ((trained_w + extra) * p["trained_weight_bytes"] + n_bias * p["bias_bytes"]
                   + frozen * p["frozen_weight_bytes"])
    n_train = trainable + extra
    return SchemeCost(scheme.name, preset, batch, fwd, in_grad, w_grad, saved, masks, param_bytes,
                      n_train * p["grad_bytes"], n_train * p["grad_bytes"] * p["optimizer_states"],
                      n_train, rows)
