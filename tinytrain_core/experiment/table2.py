"""Table 2 (notebook 04): our backward costs for every method beside the paper's figures.

Per (model, variant, method): the analytic costs of `costs.scheme_costs` under both MAC
conventions (`count_input_grad_of_first`: the paper's FullTrain figure counts the image's
gradient, the engine never computes it) and the memory presets, one step measured through the
sparse engine where the profile's `costs` section asks for it (`measure.measure_step`), and
the ratios to the paper. Variants: "nomix" (the released nets) and "paper" (with the 1x1
feature-mix conv the paper's costs imply; `models.FEATURE_MIX`).
"""
from __future__ import annotations

import copy

import pandas as pd
import torch
from tqdm import tqdm

from ..nets import checkpoints
from .. import methods, profiles
from ..training import schemes
from ..methods import sparse_search
from ..training.costs import scheme_costs
from ..training.measure import measure_step
from ..nets.models import MODEL_NAMES, Backbone
from .. import reference
from ..paths import results_dir
from ..results import read_table
from ..profiles import budgets

VARIANTS = {"paper": True, "nomix": False}   # variant name -> feature_mix


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 (backward MMACs and memory MB per model and method)."""
    return reference.paper_table("table2")


def searched_gains(model: str, profile: str = "default", checkpoint: str = "imagenet"):
    """The contribution analysis notebook 02 wrote for `model` (None before it ran), from which
    SparseUpdate's search finds its scheme at TinyTrain's memory budget."""
    path = results_dir(profile) / "adapt" / model / "sparse_search" / f"{checkpoint}.csv"
    return read_table(path) if path.is_file() else None


def method_schemes(model: str, backbone: Backbone, tinytrain_support: int = 25, seed: int = 0,
                   tinytrain: bool = True, profile: str = "default") -> dict:
    """method -> UpdateScheme for every method the project can price. TinyTrain's scheme (when
    `tinytrain`) is chosen on a synthetic support set: its costs are bounded by its budgets,
    not by the data. "SparseUpdate (search)" appears once notebook 02 has written `profile`'s
    contribution analysis (ImageNet checkpoint) for `model`."""
    sh = backbone.conv_shapes()
    weights = schemes.conv_weights_of(backbone)
    largest = list(schemes.released_sparse_update(model))[-1]
    # "NoUpdate" is the paper's "None" (a CSV reader would take the string None for a missing value)
    out = {"NoUpdate": schemes.no_update(), "FullTrain": schemes.full_train(sh),
           "LastLayer": schemes.last_layer(sh), "BiasOnly": schemes.bias_only(sh),
           "SparseUpdate": schemes.sparse_update(model, largest, sh, weights)}
    # methods whose scheme ignores the support set, as they run (Transductive: FullTrain's scheme
    # per sample; its batch also holds the unlabelled queries)
    for m in ("TinyTL", "AdapterDrop-25%", "AdapterDrop-50%", "AdapterDrop-75%", "Transductive"):
        out[m] = methods.get(m).scheme(backbone, None, None, methods.Context(model))
    gains = searched_gains(model, profile) if backbone.feature_mix is None else None   # gains index the nomix convs
    if gains is not None:
        out["SparseUpdate (search)"] = sparse_search.evolve(sh, gains, budgets(model)[0], conv_weights=weights)
    if not tinytrain:
        return out
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(tinytrain_support, 3, 128, 128, generator=g) * 2 - 1
    y = torch.arange(tinytrain_support) % 5
    out["TinyTrain"] = methods.get("TinyTrain").scheme(copy.deepcopy(backbone), x, y,
                                                       methods.Context(model, *budgets(model)))
    return out


def cost_table(models_: tuple[str, ...] = MODEL_NAMES, profile: str = "smoke", fp32_batch: int = 136,
               seed: int = 0, progress: bool = True, **overrides) -> pd.DataFrame:
    """One row per (model, variant, method): analytic costs (both presets, both MAC conventions),
    one measured sparse-engine step, and the paper's figures with our/paper ratios.
    `overrides` replace the profile's `costs` settings (None = keep the profile's value)."""
    cfg = profiles.settings(profile, "costs", **overrides)
    paper = paper_table2().set_index(["model", "method"])
    rows = []
    jobs = [(m, v) for m in models_ for v in VARIANTS]
    for model, variant in tqdm(jobs, desc="models", disable=not progress):
        bb = checkpoints.create(model, pretrained=True, feature_mix=VARIANTS[variant]).backbone
        sh = bb.conv_shapes()
        chosen = method_schemes(model, bb, cfg["tinytrain_support"], seed, model in cfg["tinytrain_models"], profile)
        measured = model in cfg["measure_models"] and (variant == "nomix" or cfg["measure_mix"])
        for method, scheme in chosen.items():
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


def fit_paper_batch(models_: tuple[str, ...] = MODEL_NAMES, preset: str = "fp32_unfolded_bn") -> dict:
    """The batch at which `preset` reproduces the paper's FullTrain MB figure, per model
    (paper variant): memory(b) = b * per-sample saved bytes + batch-independent parameter bytes."""
    paper = paper_table2().set_index(["model", "method"])
    out = {}
    for m in models_:
        sh = Backbone(m, feature_mix=True).conv_shapes()
        c1, c2 = (scheme_costs(sh, schemes.full_train(sh), preset=preset, batch=b) for b in (1, 2))
        per_sample = c2.memory_bytes - c1.memory_bytes
        fixed = c1.memory_bytes - per_sample
        out[m] = (float(paper.loc[(m, "FullTrain"), "backward_memory_MB"]) * 1e6 - fixed) / per_sample
    return out
