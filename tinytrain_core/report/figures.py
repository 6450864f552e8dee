"""Notebook 05's figures: Table 1 as heat maps (ours beside the paper's) and the accuracy-cost
Pareto view per backbone; notebook 02's layer-choice figures are reused, not redrawn."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import figures_dir
from ..stats import domain_order, method_order
from .inputs import AVG, NAN, Inputs
from .plots.common import method_palette


def plot_table1(t1: pd.DataFrame, model: str, path=None):
    """Table 1 as two heat maps for `model`: ours (the paper's configuration) and the paper's
    number for the domain(s) each of ours stands in for; rows methods, columns domains."""
    import matplotlib.pyplot as plt
    t = t1[t1.model == model]
    methods, domains = method_order(t.method), domain_order(t.domain)
    grids = [t.set_index(["method", "domain"])[c].unstack().reindex(index=methods, columns=domains)
             for c in ("accuracy", "paper_accuracy")]
    lo, hi = np.nanmin([g.min().min() for g in grids]), np.nanmax([g.max().max() for g in grids])
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.32 * len(methods) + 1.9), sharey=True)
    pdoms = t.drop_duplicates("domain").set_index("domain").paper_domains
    for ax, g, title, ticks in zip(axes, grids, (f"ours: {model}, baselines from imagenet, TinyTrain from meta",
                                                 "paper (Meta-Dataset domain each of ours stands in for)"),
                                   (domains, [f"{d}\n{pdoms.get(d) or '-'}" for d in domains])):
        ax.imshow(g.to_numpy(float), cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
        for (i, j), v in np.ndenumerate(g.to_numpy(float)):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if v < (lo + hi) / 2 else "black")
        ax.set_xticks(range(len(domains)), ticks, fontsize=7, rotation=45, ha="right")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(methods)), methods, fontsize=8)
    fig.suptitle("Top-1 accuracy (%), average over tasks; stratified average last", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_pareto(inp: Inputs, model: str, path=None):
    """Accuracy against backward memory and MACs (log scales) from ablations/pareto.csv (notebook
    03: the fixed methods as points, the budget sweeps as lines), or without it notebook 02's
    methods alone (circles imagenet, squares meta). Zero-cost arms (None) cannot be drawn."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    p, s = inp.ablations["pareto"], inp.adapt[model]["summary"]
    swept = p is not None and (p.model == model).any()
    pts = p[p.model == model] if swept else s[s.domain == AVG].assign(memory_kib_budget=NAN)
    pal = method_palette(pts.method)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, x, label in zip(axes, ("backward_kib", "backward_mmacs"), ("backward memory, KiB", "backward MACs, M")):
        for (m, ck), g in pts[pts[x] > 0].groupby(["method", "checkpoint"], sort=False):
            for line, h in g.groupby(g.memory_kib_budget.notna()):
                h = h.sort_values(x)
                ax.errorbar(h[x], h.accuracy, yerr=h.ci95.fillna(0), color=pal[m], capsize=2, alpha=0.8,
                            fmt="-^" if line else "o" if ck == "imagenet" else "s",
                            label=f"{m} ({ck}{', budget sweep' if line else ''})")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
    axes[0].set_ylabel("accuracy, % (95% CI)")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{model}: accuracy against backward cost" + ("" if swept else " (notebook 03 not run: no sweeps)"),
                 fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def figures(inp: Inputs, t1: pd.DataFrame) -> list[Path]:
    """Draw and save both figures for every model that ran notebook 02; returns the paths."""
    import matplotlib.pyplot as plt
    out, d = [], figures_dir(inp.profile)
    for model in inp.adapt:
        out += [d / f"report_table1_{model}.png", d / f"report_pareto_{model}.png"]
        plt.close(plot_table1(t1, model, out[-2]))
        plt.close(plot_pareto(inp, model, out[-1]))
    return out


def layer_figures(profile: str) -> list[Path]:
    """Notebook 02's layer-choice figures of `profile` (reused, not redrawn)."""
    return sorted(figures_dir(profile).glob("adapt_layers_*.png"))
