"""Measure one real training step: backward MACs and bytes saved for backward.

- MACs: `torch.utils.flop_counter.FlopCounterMode` around `loss.backward()` (2 FLOPs per MAC).
  torch's formula for a convolution's *weight* gradient ignores `groups`: it charges a depthwise
  conv's weight gradient as if the conv were dense, C times too much. We register the correct
  formula (each weight-gradient element accumulates over N * H_out * W_out products) and keep
  torch's own for everything else; `raw_torch_counts=True` shows torch's figure.
- Saved bytes: every tensor packed by `torch.autograd.graph.saved_tensors_hooks` during the
  backbone's forward, parameters excluded (they exist anyway).

The loss is a fixed random projection of the pooled features, so no head work enters the counts.
"""
from __future__ import annotations

import copy
from math import prod

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from .costs import scheme_costs
from .models import Backbone
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
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t):
        if id(t) not in self.exclude and not isinstance(t, nn.Parameter):
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
    device = next(backbone.parameters()).device
    x = x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, proj.to(device)


def measure_step(backbone: Backbone, scheme: UpdateScheme, batch: int = 2, seed: int = 0,
                 channels_last: bool = True, copy_backbone: bool = True) -> dict:
    """One forward + backward of `scheme` with the sparse engine on `backbone` (a copy unless
    copy_backbone=False). Returns measured and analytic (cost model, fp32 preset) numbers:
    MACs per sample (backward, forward) and saved bytes for the whole batch."""
    bb = copy.deepcopy(backbone) if copy_backbone else backbone
    if channels_last:
        bb = bb.to(memory_format=torch.channels_last)
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
        bb = bb.to(memory_format=torch.channels_last)
    x, proj = _step_inputs(bb, batch, seed, channels_last)
    with SavedBytes(exclude=list(bb.parameters())) as saved:
        feats = bb(x)
    with flop_counter() as bwd:
        (feats @ proj).square().mean().backward()
    return dict(batch=batch, measured_backward_macs=bwd.get_total_flops() / 2 / batch,
                measured_saved_bytes=saved.bytes)


# ---------------------------------------------------------------------------------------------
# Table 2 (notebook 04): our costs for every method, measured where we can train, beside the paper.

ALL = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
# measure_models: models whose steps are measured (nomix variant; measure_mix adds the paper one);
# tinytrain_models: models that get a TinyTrain row (a Fisher pass each); smoke keeps nbval fast.
PROFILE_DEFAULTS = {
    "smoke": dict(measure_batch=1, measure_models=("mcunet-5fps",), measure_mix=False,
                  tinytrain_models=("mcunet-5fps",), tinytrain_support=10),
    "default": dict(measure_batch=2, measure_models=ALL, measure_mix=True, tinytrain_models=ALL,
                    tinytrain_support=25),
    "paper": dict(measure_batch=4, measure_models=ALL, measure_mix=True, tinytrain_models=ALL,
                  tinytrain_support=25),
}
VARIANTS = {"paper": True, "nomix": False}   # variant name -> feature_mix


def paper_table2():
    import pandas as pd

    from .paths import shared_dir
    return pd.read_csv(shared_dir() / "paper" / "table2_backward_costs.csv")


def method_schemes(model: str, backbone: Backbone, tinytrain_support: int = 25, seed: int = 0,
                   tinytrain: bool = True) -> dict:
    """method -> UpdateScheme for every method the project can price. TinyTrain appears only when
    the selection (`tinytrain_core.selection` + `methods`) is importable; its scheme is chosen on a
    synthetic support set (costs are bounded by its budgets, not by the data)."""
    from . import schemes
    sh = backbone.conv_shapes()
    weights = schemes.conv_weights_of(backbone)
    largest = list(schemes.released_sparse_update(model))[-1]
    # "NoUpdate" is the paper's "None" (a CSV reader would take the string None for a missing value)
    out = {"NoUpdate": schemes.no_update(), "FullTrain": schemes.full_train(sh),
           "LastLayer": schemes.last_layer(sh), "BiasOnly": schemes.bias_only(sh),
           "SparseUpdate": schemes.sparse_update(model, largest, sh, weights)}
    if not tinytrain:
        return out
    try:
        from .methods import Context, get
        tiny = get("TinyTrain")
    except (ImportError, KeyError, ValueError):
        return out
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(tinytrain_support, 3, 128, 128, generator=g) * 2 - 1
    y = torch.arange(tinytrain_support) % 5
    out["TinyTrain"] = tiny.scheme(copy.deepcopy(backbone), x, y, Context(model))
    return out


def cost_table(models_: tuple[str, ...] = ALL, profile: str = "smoke", fp32_batch: int = 136,
               seed: int = 0, progress: bool = True, **overrides):
    """One row per (model, variant, method): analytic costs (both presets, both MAC conventions),
    one measured sparse-engine step, and the paper's figures with our/paper ratios.
    `overrides` replace PROFILE_DEFAULTS[profile] entries (None = keep the profile's value)."""
    import pandas as pd
    from tqdm import tqdm

    from . import models
    cfg = dict(PROFILE_DEFAULTS[profile])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown cost_table settings {sorted(unknown)}; known: {sorted(cfg)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    paper = paper_table2().set_index(["model", "method"])
    rows = []
    jobs = [(m, v) for m in models_ for v in VARIANTS]
    for model, variant in tqdm(jobs, desc="models", disable=not progress):
        bb = models.create(model, pretrained=True, feature_mix=VARIANTS[variant]).backbone
        sh = bb.conv_shapes()
        methods = method_schemes(model, bb, cfg["tinytrain_support"], seed, model in cfg["tinytrain_models"])
        measured = model in cfg["measure_models"] and (variant == "nomix" or cfg["measure_mix"])
        for method, scheme in methods.items():
            paper_conv = scheme_costs(sh, scheme, count_input_grad_of_first=True)
            engine = scheme_costs(sh, scheme)
            fp32 = scheme_costs(sh, scheme, preset="fp32", batch=fp32_batch)
            bn = scheme_costs(sh, scheme, preset="fp32_unfolded_bn", batch=fp32_batch)
            row = dict(model=model, variant=variant, method=method,
                       scheme="no_update" if method == "NoUpdate" else scheme.name,
                       backward_MMACs=paper_conv.backward_macs / 1e6,
                       backward_MMACs_engine=engine.backward_macs / 1e6,
                       memory_KiB_int8_b1=engine.memory_kib, memory_MB_fp32=fp32.memory_mb,
                       memory_MB_fp32_unfolded_bn=bn.memory_mb, trainable_params=engine.trainable_params)
            if measured:
                r = measure_step(bb, scheme, batch=cfg["measure_batch"], seed=seed)
                row.update(measured_backward_MMACs=r["measured_backward_macs"] / 1e6,
                           measured_saved_MB=r["measured_saved_bytes"] / 1e6,
                           analytic_saved_MB=r["analytic_saved_bytes"] / 1e6,
                           measure_batch=cfg["measure_batch"])
            if variant == "paper" and (model, method) in paper.index:
                p = paper.loc[(model, method)]
                row.update(paper_backward_MMACs=float(p["backward_MMACs"]),
                           paper_memory_MB=float(p["backward_memory_MB"]))
            rows.append(row)
    df = pd.DataFrame(rows)
    for c in ("measured_backward_MMACs", "measured_saved_MB", "analytic_saved_MB", "measure_batch",
              "paper_backward_MMACs", "paper_memory_MB"):
        if c not in df:
            df[c] = float("nan")
    df["ratio_backward_MACs"] = df["backward_MMACs"] / df["paper_backward_MMACs"]
    df["ratio_memory_fp32"] = df["memory_MB_fp32"] / df["paper_memory_MB"]
    df["ratio_memory_fp32_unfolded_bn"] = df["memory_MB_fp32_unfolded_bn"] / df["paper_memory_MB"]
    df["ratio_memory_int8_b1"] = df["memory_KiB_int8_b1"] * 1024 / 1e6 / df["paper_memory_MB"]
    return df


def fit_paper_batch(models_: tuple[str, ...] = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"),
                    preset: str = "fp32_unfolded_bn") -> dict:
    """The batch at which `preset` reproduces the paper's FullTrain MB figure, per model
    (paper variant): memory(b) = b * per-sample saved bytes + batch-independent parameter bytes."""
    from . import models, schemes
    paper = paper_table2().set_index(["model", "method"])
    out = {}
    for m in models_:
        sh = models.Backbone(m, feature_mix=True).conv_shapes()
        c1, c2 = (scheme_costs(sh, schemes.full_train(sh), preset=preset, batch=b) for b in (1, 2))
        per_sample = c2.memory_bytes - c1.memory_bytes
        fixed = c1.memory_bytes - per_sample
        out[m] = (float(paper.loc[(m, "FullTrain"), "backward_memory_MB"]) * 1e6 - fixed) / per_sample
    return out
