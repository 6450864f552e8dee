"""The budgeted selection of one task drawn on the network (notebook 02's worked example): the
scheme TinyTrain chose, the score that ranked the convs and the budgets that refused them."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .common import _CB, _finish, _require, _style

OUTCOME_COLOURS = {"chosen": _CB[2], "refused: compute": _CB[1], "refused: memory": _CB[0],
                   "refused: both": _CB[4]}
_REGION = {"compute": "#fdebd3", "memory": "#dbe9f6"}


def _spans(convs) -> list[tuple[int, int]]:
    """Runs of consecutive conv indices, as (first, last)."""
    runs = []
    for c in sorted(convs):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return [tuple(r) for r in runs]


def _shade(ax, table: pd.DataFrame, memory_kib: float, compute_macs: float, label: bool) -> None:
    """The budget-limited regions: convs no budget admits at any ratio, even trained alone."""
    for what, out in (("compute", table.alone_macs > compute_macs), ("memory", table.alone_kib > memory_kib)):
        for k, (a, b) in enumerate(_spans(table.conv[out])):
            ax.axvspan(a - 0.5, b + 0.5, color=_REGION[what], zorder=0, lw=0,
                       label=f"{what} budget-limited (even alone)" if label and k == 0 else None)


def selection_walk(table: pd.DataFrame, memory_kib: float, compute_macs: float, title: str | None = None,
                   path=None):
    """Three panels over the conv index, from `training.explain.explain_selection`'s table.

    (a) s_i per conv (log scale), coloured by the greedy walk's outcome, the chosen convs labelled
    with their channel ratio; (b) the backward MACs of training each conv alone at the smallest
    ratio, split into the input-gradient path that reaching it requires and its weight gradient,
    against the compute budget; (c) its backward memory alone, against the memory budget. The
    shaded columns are the budget-limited regions: no ratio makes those convs fit."""
    _require(table, ["conv", "s_i", "outcome", "ratio", "alone_path_macs", "alone_macs", "alone_kib"],
             "selection_walk table")
    t = table.sort_values("conv")
    x = t.conv.to_numpy()
    with _style():
        fig, (a, b, c) = plt.subplots(3, 1, figsize=(10, 7.2), sharex=True, layout="constrained",
                                      gridspec_kw={"height_ratios": [3, 2, 1.6]})
        for ax in (a, b, c):
            _shade(ax, t, memory_kib, compute_macs, label=ax is a)
        a.bar(x, t.s_i, color=[OUTCOME_COLOURS[o] for o in t.outcome], width=0.8, zorder=2)
        for o, col in OUTCOME_COLOURS.items():
            a.bar([np.nan], [np.nan], color=col, label=f"{o} ({int((t.outcome == o).sum())})")
        a.set_yscale("log")
        for r in t[t.outcome == "chosen"].itertuples():
            a.annotate(f"r={r.ratio:g}", (r.conv, r.s_i), xytext=(0, 2), textcoords="offset points", ha="center",
                       va="bottom", fontsize=7.5, rotation=90)
        a.set_ylabel("layer score $s_i$ (log)")
        a.set_title("(a) the ranking and the greedy walk's outcome; r = channel ratio of a chosen conv",
                    loc="left", fontsize=9.5)
        a.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=8)
        b.bar(x, t.alone_path_macs / 1e6, color="0.55", width=0.8, zorder=2, label="input-gradient path")
        b.bar(x, (t.alone_macs - t.alone_path_macs) / 1e6, bottom=t.alone_path_macs / 1e6, color="0.15",
              width=0.8, zorder=2, label="weight gradient")
        b.axhline(compute_macs / 1e6, color=_CB[1], lw=1.5, ls="--", zorder=3,
                  label=f"compute budget {compute_macs / 1e6:g} M")
        b.set_ylabel("backward M MACs")
        b.set_title("(b) training the conv alone at the smallest ratio: backward MACs", loc="left", fontsize=9.5)
        b.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=8)
        c.bar(x, t.alone_kib, color="0.4", width=0.8, zorder=2)
        c.axhline(memory_kib, color=_CB[0], lw=1.5, ls="--", zorder=3, label=f"memory budget {memory_kib:g} KiB")
        c.set_ylabel("KiB")
        c.set_title("(c) ... and its backward memory", loc="left", fontsize=9.5)
        c.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=8)
        c.set_xlabel("conv index (input side left)")
        c.set_xlim(x.min() - 0.6, x.max() + 0.6)
        step = 2 if len(x) > 24 else 1
        c.set_xticks(x[::step])
        if title:
            fig.suptitle(title, fontsize=10.5)
    return _finish(fig, path, dpi=110)
