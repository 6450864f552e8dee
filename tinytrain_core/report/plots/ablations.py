"""Notebook 03's figures: accuracy per channel criterion and budget, and accuracy against
backward memory / compute (the paper's memory-compute figure)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .common import _clamp_axis, _finish, _legend_outside, _log_axis, _style, clipped_errors, method_palette

_CRITERION_COLOURS = {"fisher": "#0173b2", "l2": "#de8f05", "random": "#949494"}


def ablation_channels(summary: pd.DataFrame, title: str | None = None, path=None):
    """Stratified mean accuracy (95% t CI, cut at 0 and 100%) of the channel arms against their
    memory budget; the legend right of the axes (the curves run across the whole width)."""
    avg = summary[(summary.domain == "average") & (summary.ablation == "channels")]
    with _style():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for i, (crit, g) in enumerate(sorted(avg.groupby("criterion"), key=lambda kv: list(_CRITERION_COLOURS).index(kv[0])
                                             if kv[0] in _CRITERION_COLOURS else 9)):
            g = g.sort_values("memory_kib")
            x = g.memory_kib * (1 + 0.012 * (i - 1))        # side by side, same budgets
            ax.errorbar(x, g.accuracy, yerr=clipped_errors(g.accuracy, g.ci95), marker="o", capsize=3, label=crit,
                        color=_CRITERION_COLOURS.get(crit))
        _clamp_axis(ax, "y")
        ax.set_xlabel("memory budget, KiB (tiny-training int8)")
        ax.set_ylabel("accuracy, % (stratified mean, 95% t CI)")
        _legend_outside(ax, title="channels by")
        ax.set_title(title or "channel choice")
    return _finish(fig, path, dpi=110)


def pareto(points: pd.DataFrame, title: str | None = None, path=None):
    """Accuracy against backward memory (left) and backward MACs (right) per method; budgeted
    methods (several points) are joined in budget order, fixed schemes are single points.
    Intervals are cut at 0 and 100%, the log axes carry a few plain-number ticks, and the legend
    sits right of the axes."""
    pal = method_palette(points.method.unique())
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for ax, col, label in ((axes[0], "backward_kib", "backward memory per sample, KiB (int8, log)"),
                               (axes[1], "backward_mmacs", "backward MACs per sample, M (log)")):
            for m, g in points.groupby("method"):
                g = g.sort_values(["memory_kib_budget", col])
                ax.errorbar(g[col], g.accuracy, yerr=clipped_errors(g.accuracy, g.ci95), marker="o", capsize=2,
                            color=pal[m], label=m,
                            linestyle="-" if g.memory_kib_budget.notna().any() and len(g) > 1 else "none")
            ax.set_xscale("log")
            _log_axis(ax, "x")
            ax.set_xlabel(label)
        _clamp_axis(axes[0], "y")
        axes[0].set_ylabel("accuracy, % (stratified mean, 95% t CI)")
        _legend_outside(axes[1], fontsize=7)
        fig.suptitle(title or "accuracy vs backward cost")
    return _finish(fig, path, dpi=110)
