"""Data figures: episode sizes per domain, and frozen-feature accuracy (room for adaptation)."""
from __future__ import annotations

import warnings
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .common import (_BASE_COLOUR, _CB, _TARGET_COLOUR, _bands, _bold_tick, _finish, _label_line, _require, _style,
                     clipped_errors, domain_order)


# ---------------------------------------------------------------------------------------------
# 3. episode sizes
# ---------------------------------------------------------------------------------------------

def episode_stats_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (domain, episode) from per-task adaptation rows: ``ways``, ``support`` (the rows'
    ``shots`` column, the support-set size) and ``query`` (``queries``)."""
    _require(rows, ["domain", "episode", "ways", "shots", "queries"], "episode_stats_from_rows")
    ep = rows.drop_duplicates(["domain", "episode"])[["domain", "episode", "ways", "shots", "queries"]]
    return ep.rename(columns={"shots": "support", "queries": "query"}).reset_index(drop=True)


_QUANTITY_LABELS = {"ways": "ways (classes per episode)", "support": "support images per episode",
                    "query": "query images per episode", "max_shot": "most shots of one class",
                    "min_shot": "fewest shots of one class"}


def _count_dots(ax, stats: pd.DataFrame, q: str, order: Sequence[str]) -> None:
    """A quantity with few distinct values: one dot per (domain, value), area = episodes, count written."""
    cnt = stats.groupby(["_dom", q]).size().rename("k").reset_index()
    ypos = {d: i for i, d in enumerate(order)}
    y = cnt["_dom"].map(ypos).to_numpy(float)
    ax.scatter(cnt[q], y, s=40 + 360 * cnt["k"] / cnt["k"].max(), color="#bcd6ea", edgecolor="0.3", lw=0.8, zorder=3)
    for xv, yv, k in zip(cnt[q], y, cnt["k"]):
        ax.text(xv, yv, str(k), ha="center", va="center", fontsize=8, zorder=4)
    vals = sorted(stats[q].dropna().unique())
    ax.set_xticks(vals)
    pad = max(0.6, 0.12 * (vals[-1] - vals[0]))
    ax.set_xlim(vals[0] - pad, vals[-1] + pad)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)


def episode_sizes(stats: pd.DataFrame, quantities: Sequence[str] = ("ways", "support", "query"),
                  title: str | None = None, path=None):
    """Distribution of episode sizes per domain: one panel per quantity (ways, support, query),
    a horizontal box per domain (quartiles, whiskers to 1.5 IQR, diamond = mean), every episode
    as a dot when there are at most 100 per domain. A whole-number quantity spanning at most 8
    values (e.g. 5-6 ways) is drawn as counts instead: one dot per value, its area and number the
    episodes that have it. ``stats``: one row per sampled episode with
    ``domain`` and the quantities (see :func:`episode_stats_from_rows` for adaptation rows)."""
    _require(stats, ["domain", *quantities], "episode_sizes stats")
    stats = stats.copy()
    stats["domain"] = stats["domain"].astype(str)
    doms = domain_order(stats["domain"].unique())
    counts = stats.groupby("domain").size()
    same_n = counts.nunique() == 1
    lab = {d: d if same_n else f"{d} (n={counts[d]})" for d in doms}
    stats["_dom"] = stats["domain"].map(lab)
    order = [lab[d] for d in doms]
    dots = counts.max() <= 100
    with _style():
        fig, axes = plt.subplots(1, len(quantities), figsize=(3.5 * len(quantities) + 1.4, 0.4 * len(doms) + 2.0),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax, q in zip(axes[0], quantities):
            _bands(ax, len(order), horizontal=True)
            v = stats[q].dropna()
            if np.allclose(v % 1, 0) and v.max() - v.min() <= 7:
                _count_dots(ax, stats, q, order)
                ax.set_xlabel(_QUANTITY_LABELS.get(q, q) + "\n(dot area and number = episodes)")
                ax.set_ylabel("")
                ax.grid(axis="y", visible=False)
                continue
            with warnings.catch_warnings():  # seaborn 0.13 passes vert= to matplotlib >= 3.11
                warnings.filterwarnings("ignore", message=".*vert: bool.*")
                sns.boxplot(data=stats, x=q, y="_dom", order=order, ax=ax, color="#bcd6ea", width=0.62,
                            linewidth=1.0, fliersize=0 if dots else 2.5, showmeans=True,
                            meanprops=dict(marker="D", markerfacecolor="white", markeredgecolor="0.1", markersize=5),
                            boxprops=dict(zorder=2))
            if dots:
                sns.stripplot(data=stats, x=q, y="_dom", order=order, ax=ax, size=2.6, color="0.25",
                              alpha=0.45, jitter=0.22, zorder=3)
            ax.set_xlabel(_QUANTITY_LABELS.get(q, q))
            ax.set_ylabel("")
            ax.grid(axis="y", visible=False)
            if pd.api.types.is_integer_dtype(stats[q]):
                ax.xaxis.get_major_locator().set_params(integer=True)
        handles = [Patch(facecolor="#bcd6ea", edgecolor="0.3", label="middle 50% of episodes (box), median (line)"),
                   Line2D([], [], marker="D", ls="", mfc="white", mec="0.1", label="mean")]
        if dots:
            handles.append(Line2D([], [], marker="o", ls="", color="0.25", alpha=0.6, ms=4, label="one episode"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        n_txt = f"{int(counts.iloc[0])} episodes per domain" if same_n else "episodes per domain as named"
        fig.suptitle(title or f"Episode sizes per domain ({n_txt})", fontsize=12)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# 4. frozen-feature accuracy: is there room for adaptation?
# ---------------------------------------------------------------------------------------------

def frozen_accuracy(table: pd.DataFrame, chance: float = 20.0, ceiling: float = 95.0,
                    value: str = "frozen_5w5s_acc", ci: str = "ci95", title: str | None = None, path=None):
    """Frozen-feature 5-way 5-shot accuracy per domain (``results/<profile>/domains.csv``), bars
    with the table's 95% CI (cut at 0 and 100%, as is the axis), the base domain hatched and in
    its own colour. Two labelled reference lines: ``chance (20%)`` (1 of 5 ways) and the
    ``ceiling`` (95%), above which a domain leaves too little room to show what adaptation adds."""
    _require(table, ["domain", value], "frozen_accuracy table")
    t = table.copy()
    t["domain"] = t["domain"].astype(str)
    doms = domain_order(t["domain"].unique())
    t = t.set_index("domain").reindex(doms)
    role = t["role"].astype(str) if "role" in t.columns else pd.Series("target", index=t.index)
    base = (role == "base").to_numpy()
    err = t[ci].to_numpy(float) if ci in t.columns else np.zeros(len(t))
    with _style():
        fig, ax = plt.subplots(figsize=(max(7.0, 0.78 * len(doms) + 2.6), 4.4), layout="constrained")
        x = np.arange(len(doms))
        ax.bar(x, t[value], width=0.68, color=[_BASE_COLOUR if b else _TARGET_COLOUR for b in base],
               hatch=None, edgecolor="white", zorder=2)
        for xi, b in zip(x, base):
            if b:
                top = t[value].iloc[xi]  # hatch above the value label, which stays legible
                ax.bar(xi, max(top - 12, 0), bottom=12, width=0.68, color="none", edgecolor="white", hatch="//",
                       lw=0, zorder=2.5)
        ax.errorbar(x, t[value], yerr=clipped_errors(t[value], err), fmt="none", ecolor="0.15", elinewidth=1.3,
                    capsize=3.5, zorder=3)
        for xi, v in zip(x, t[value]):
            if pd.notna(v):
                ax.text(xi, 3, f"{v:.1f}", ha="center", va="bottom", color="white", fontsize=8.5,
                        fontweight="bold", zorder=4,
                        bbox=dict(boxstyle="round,pad=0.2", fc=(0, 0, 0, 0.42), lw=0))
        ax.axhline(chance, color="0.3", ls="--", lw=1.2, zorder=3.5)
        ax.axhline(ceiling, color=_CB[3], ls=":", lw=1.6, zorder=3.5)
        _label_line(ax, chance, f"chance ({chance:g}%)")
        _label_line(ax, ceiling, f"ceiling ({ceiling:g}%)", colour=_CB[3])
        ax.set_xticks(x, doms)
        _bold_tick(ax.get_xticklabels(), doms[int(np.argmax(base))] if base.any() else "")
        ax.set_ylim(0, 100)
        ax.set_xlim(-0.6, len(doms) - 0.4)
        ax.set_ylabel("5-way 5-shot accuracy (%)\nfrozen features, 95% CI")
        ax.set_xlabel("domain")
        ax.grid(axis="x", visible=False)
        handles = [Patch(facecolor=_BASE_COLOUR, hatch="//", edgecolor="white", label="base domain (meta-training)"),
                   Patch(facecolor=_TARGET_COLOUR, label="target domains (adaptation)")]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
        fig.suptitle(title or "Room for adaptation: frozen-feature accuracy per domain", fontsize=12)
    return _finish(fig, path)

