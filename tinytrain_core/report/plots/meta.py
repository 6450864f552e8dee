"""Meta-training figures: frozen-feature accuracy before vs after (and the paired change), and
notebook 01's learning curves."""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ...paths import figures_dir
from .common import (_CB, _CHECKPOINT_LABELS, _VERDICT_COLOURS, ACCURACY_RANGE, _bands, _clamp_axis, _finish,
                     _label_line, _legend_outside, _point_ranges, _require, _style, clipped_errors, domain_order)


# ---------------------------------------------------------------------------------------------
# 5. meta-training: before vs after, and the paired change
# ---------------------------------------------------------------------------------------------

def _meta_category(domain: str, split: str, base: set) -> str:
    if domain in base:
        return f"{domain} (base)" if split == "test" else f"{domain} (base, {split})"
    return domain if split == "test" else f"{domain} ({split})"


def _before_after(checkpoints: Sequence[str]) -> tuple[str, str]:
    cps = list(dict.fromkeys(checkpoints))
    if len(cps) != 2:
        raise ValueError(f"meta_training needs two checkpoints (before, after), got {cps}")
    after = [c for c in cps if "meta" in c]
    if len(after) == 1:
        return next(c for c in cps if c != after[0]), after[0]
    return cps[0], cps[1]


def meta_training(before_after: pd.DataFrame, paired: pd.DataFrame | None = None, title: str | None = None,
                  path=None, base: Sequence[str] | None = None):
    """Frozen-feature accuracy before and after meta-training, per model and domain.

    ``before_after``: ``results/<profile>/meta_training.csv`` (or ``meta_training_scratch.csv``):
    model, domain, split, checkpoint (two values: the start, e.g. ``imagenet``, and the
    meta-trained one, ``meta``), acc, ci95. ``paired``: the matching ``*_paired.csv`` (model,
    domain, split, delta, ci95, verdict), the change on the same episodes.

    One column per model. Top row: accuracy with the table's 95% CI (cut at 0 and 100%), start vs meta-trained.
    Bottom row: paired change (meta minus start) with its 95% CI, coloured by verdict, and the
    zero line labelled ``no change``. Without ``paired`` the change is drawn from the two means
    with the conservative unpaired interval ``sqrt(ci_a**2 + ci_b**2)``.
    The base domain (default: any domain with a non-test split, i.e. used for model selection)
    is labelled ``(base)``.
    """
    _require(before_after, ["model", "domain", "checkpoint", "acc", "ci95"], "meta_training table")
    t = before_after.copy()
    if "split" not in t.columns:
        t["split"] = "test"
    t[["model", "domain", "split", "checkpoint"]] = t[["model", "domain", "split", "checkpoint"]].astype(str)
    before, after = _before_after(t["checkpoint"])
    base = set(base) if base is not None else set(t.loc[t["split"] != "test", "domain"])
    t["cat"] = [_meta_category(d, s, base) for d, s in zip(t["domain"], t["split"])]
    keys = t[["domain", "split", "cat"]].drop_duplicates()
    rank = {d: i for i, d in enumerate(domain_order(keys["domain"]))}
    keys = keys.assign(_d=keys["domain"].map(rank), _s=(keys["split"] != "test").astype(int)).sort_values(["_d", "_s"])
    cats = list(keys["cat"])
    models = list(dict.fromkeys(t["model"]))
    unpaired = paired is None
    if unpaired:
        w = t.pivot_table(index=["model", "domain", "split"], columns="checkpoint", values=["acc", "ci95"],
                          aggfunc="first")
        d = pd.DataFrame({"delta": w[("acc", after)] - w[("acc", before)],
                          "ci95": np.sqrt(w[("ci95", after)] ** 2 + w[("ci95", before)] ** 2)}).reset_index()
    else:
        _require(paired, ["model", "domain", "delta", "ci95"], "meta_training paired table")
        d = paired.copy()
        if "split" not in d.columns:
            d["split"] = "test"
        d[["model", "domain", "split"]] = d[["model", "domain", "split"]].astype(str)
    if "verdict" not in d.columns:
        d["verdict"] = np.where(d["delta"] - d["ci95"] > 0, "helps",
                                np.where(d["delta"] + d["ci95"] < 0, "hurts", "no clear change"))
    d["cat"] = [_meta_category(a, b, base) for a, b in zip(d["domain"], d["split"])]
    cp_col = {before: (0.5, 0.5, 0.5), after: _CB[0]}
    cp_lab = {c: _CHECKPOINT_LABELS.get(c, c) for c in (before, after)}
    verdicts = [v for v in ("helps", "no clear change", "hurts") if v in set(d["verdict"])] + \
        sorted(set(d["verdict"]) - set(_VERDICT_COLOURS))
    vcol = {v: _VERDICT_COLOURS.get(v, _CB[4]) for v in verdicts}
    with _style():
        fig, axes = plt.subplots(2, len(models), figsize=(3.8 * len(models) + 4.4, 0.62 * len(cats) + 2.6),
                                 sharey=True, sharex="row", squeeze=False, layout="constrained")
        for j, m in enumerate(models):
            ax = axes[0, j]
            _bands(ax, len(cats), horizontal=True)
            sub = t[t["model"] == m].assign(lab=lambda f: f["checkpoint"].map(cp_lab))
            _point_ranges(ax, sub.rename(columns={"acc": "mean"}), "cat", cats, "lab",
                          [cp_lab[before], cp_lab[after]], {cp_lab[c]: cp_col[c] for c in cp_col},
                          horizontal=True, width=0.5, ms=5, bounds=ACCURACY_RANGE)
            ax.set_title(m, fontsize=10.5, fontweight="bold")
            ax.set_xlabel("5-way 5-shot accuracy (%)")
            ax.grid(axis="y", visible=False)
            ax2 = axes[1, j]
            _bands(ax2, len(cats), horizontal=True)
            ax2.axvline(0.0, color="0.2", ls="--", lw=1.1, zorder=2)
            _label_line(ax2, 0.0, "no change", horizontal_line=False)
            _point_ranges(ax2, d[d["model"] == m].rename(columns={"delta": "mean"}), "cat", cats, "verdict",
                          verdicts, vcol, horizontal=True, width=0.0, ms=5.5)
            ax2.set_xlabel(f"change, {after} − {before} (pp)")
            ax2.grid(axis="y", visible=False)
        _clamp_axis(axes[0, 0], "x")     # the top row shares its accuracy axis
        for i in range(2):
            axes[i, 0].set_yticks(range(len(cats)), cats)
            axes[i, 0].set_ylim(len(cats) - 0.5, -0.5)
        axes[0, 0].set_ylabel("accuracy, 95% CI")
        axes[1, 0].set_ylabel("paired change, 95% CI" if not unpaired else "change, unpaired 95% CI")
        h_cp = [Line2D([], [], marker="o", ls="-", color=cp_col[c], label=cp_lab[c]) for c in (before, after)]
        h_v = [Line2D([], [], marker="o", ls="-", color=vcol[v], label=v) for v in verdicts]
        axes[0, -1].legend(handles=h_cp, title="checkpoint", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                           frameon=False, handletextpad=0.4)
        axes[1, -1].legend(handles=h_v, title="change", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                           frameon=False, handletextpad=0.4)
        default = (f"Meta-training: {cp_lab[before]} vs {cp_lab[after]}\n"
                   f"frozen-feature accuracy (top) and the {'paired ' if not unpaired else ''}change (bottom)")
        fig.suptitle(title or default, fontsize=12)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# 6. meta-training learning curves (notebook 01)
# ---------------------------------------------------------------------------------------------

def plot_curves(histories: dict, profile: str, init: str = "imagenet"):
    """Learning curves: training query loss and base-val frozen accuracy (95% CI, cut at 0 and
    100%) per backbone, saved to figures/<profile>/meta_training[_scratch].png. One legend, right
    of the panels (both panels name the same backbones; inside, it covered curves)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, hist in histories.items():
        ep = [r["episode"] for r in hist]
        ax1.plot(ep[1:], [r["train_loss"] for r in hist[1:]], marker="o", ms=3, label=m)
        acc = [r.get("val_acc", math.nan) for r in hist]
        ci = [r.get("val_ci95", 0.0) for r in hist]
        ax2.errorbar(ep, acc, yerr=clipped_errors(acc, ci), marker="o", ms=3, capsize=2, label=m)
    ax1.set(xlabel="episode", ylabel="query cross-entropy (mean since last point)",
            title="meta-training loss")
    ax2.set(xlabel="episode", ylabel="base-val 5-way accuracy (%)",
            title="model selection (frozen features, 95% CI)")
    _clamp_axis(ax2, "y")
    _legend_outside(ax2, fontsize=8, title="backbone")
    fig.suptitle(f"ProtoNet meta-training on the base domain ({profile}, init={init})")
    fig.tight_layout()
    name = "meta_training" if init == "imagenet" else "meta_training_scratch"
    fig.savefig(figures_dir(profile) / f"{name}.png", dpi=120, bbox_inches="tight")
    return fig
