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
from .plots.common import _clamp_axis, _log_axis, clipped_errors, method_palette


def _cell_text(value: float, ci: float) -> str:
    """A heat-map cell: the mean, and its 95% CI half-width below it when there is one."""
    if math.isnan(value):
        return ""
    return f"{value:.1f}" if math.isnan(ci) else f"{value:.1f}\n±{ci:.1f}"


def _heat_map(ax, grid: pd.DataFrame, cis: pd.DataFrame | None, lo: float, hi: float, fontsize: float):
    """One annotated heat map on `ax` (text white on dark cells); returns the image for the colour bar."""
    values = grid.to_numpy(float)
    im = ax.imshow(values, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
    ci = cis.to_numpy(float) if cis is not None else np.full(values.shape, np.nan)
    for (i, j), v in np.ndenumerate(values):
        if not math.isnan(v):
            ax.text(j, i, _cell_text(v, ci[i, j]), ha="center", va="center", fontsize=fontsize, linespacing=1.1,
                    color="white" if v < (lo + hi) / 2 else "black")
    return im


def _paper_names(names) -> str:
    """The paper's domain(s) one of ours stands in for, "-" for none (read back, an empty cell
    is NaN, which would print as "nan")."""
    return names if isinstance(names, str) and names else "-"


def plot_table1(t1: pd.DataFrame, model: str, path=None):
    """Table 1 as two heat maps for `model`: ours (the paper's configuration), each cell the mean
    and its 95% CI half-width ("62.3\n±4.1": with few tasks per domain the CI decides what a
    difference means), and the paper's number for the domain(s) each of ours stands in for (the
    paper gives no CI); rows methods, columns domains. One colour bar, shared: the same colour is
    the same accuracy in both maps."""
    import matplotlib.pyplot as plt
    t = t1[t1.model == model]
    methods, domains = method_order(t.method), domain_order(t.domain)
    grids = [t.set_index(["method", "domain"])[c].unstack().reindex(index=methods, columns=domains)
             for c in ("accuracy", "paper_accuracy", "ci95")]
    lo, hi = np.nanmin([g.min().min() for g in grids[:2]]), np.nanmax([g.max().max() for g in grids[:2]])
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.46 * len(methods) + 2.2), sharey=True, layout="constrained")
    pdoms = t.drop_duplicates("domain").set_index("domain").paper_domains
    titles = (f"ours: {model}, baselines from imagenet, TinyTrain from meta (mean ± 95% CI)",
              "paper (Meta-Dataset domain each of ours stands in for; no CI given)")
    ticks = (domains, [f"{d}\n{_paper_names(pdoms.get(d))}" for d in domains])
    for ax, g, cis, title, tk in zip(axes, grids[:2], (grids[2], None), titles, ticks):
        im = _heat_map(ax, g, cis, lo, hi, fontsize=6.5 if cis is not None else 7)
        ax.set_xticks(range(len(domains)), tk, fontsize=7, rotation=45, ha="right")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(methods)), methods, fontsize=8)
    fig.colorbar(im, ax=list(axes), label="top-1 accuracy (%)", shrink=0.9, pad=0.01)
    fig.suptitle("Top-1 accuracy (%), average over tasks; stratified average last", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def _sweep_note(pareto: pd.DataFrame | None, model: str) -> str:
    """What the title says about the budget sweeps: why there are none for `model`, if so.
    Notebook 03 runs on one model: its table existing without `model` is not 'not run'."""
    if pareto is None:
        return " (notebook 03 not run: no budget sweeps)"
    if not (pareto.model == model).any():
        ran = ", ".join(sorted(set(pareto.model.astype(str)))) or "no model"
        return f" (no budget sweeps: notebook 03 ran on {ran})"
    return ""


def plot_pareto(inp: Inputs, model: str, path=None):
    """Accuracy against backward memory and MACs (log scales) from ablations/pareto.csv (notebook
    03: the fixed methods as points, the budget sweeps as lines), or without it notebook 02's
    methods alone (circles imagenet, squares meta). Zero-cost arms (None) cannot be drawn.
    Intervals are cut at 0 and 100%; the log axes carry a few plain-number ticks."""
    import matplotlib.pyplot as plt
    p, s = inp.ablations["pareto"], inp.adapt[model]["summary"]
    swept = p is not None and (p.model == model).any()
    pts = p[p.model == model] if swept else s[s.domain == AVG].assign(memory_kib_budget=NAN)
    pal = method_palette(pts.method)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, x, label in zip(axes, ("backward_kib", "backward_mmacs"), ("backward memory, KiB", "backward MACs, M")):
        for (m, ck), g in pts[pts[x] > 0].groupby(["method", "checkpoint"], sort=False):
            for line, h in g.groupby(g.memory_kib_budget.notna()):
                h = h.sort_values(x)
                ax.errorbar(h[x], h.accuracy, yerr=clipped_errors(h.accuracy, h.ci95), color=pal[m], capsize=2,
                            alpha=0.8, fmt="-^" if line else "o" if ck == "imagenet" else "s",
                            label=f"{m} ({ck}{', budget sweep' if line else ''})")
        ax.set_xscale("log")
        _log_axis(ax, "x")
        ax.set_xlabel(label)
    _clamp_axis(axes[0], "y")
    axes[0].set_ylabel("accuracy, % (95% CI)")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{model}: accuracy against backward cost" + _sweep_note(p, model), fontsize=10)
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
