"""Figures for the committed result tables: read at a glance, drawn from plain DataFrames.

Every function takes the DataFrame of a committed table (or the per-task rows behind it), returns
the matplotlib :class:`~matplotlib.figure.Figure`, optionally saves it to ``path``, and never calls
``plt.show`` (the Agg backend is enough). Close the figure (``plt.close(fig)``) when done.

Conventions shared by all figures:

* methods in a fixed, meaningful order (:data:`METHOD_ORDER`: nothing trained, then more and more
  of the network, TinyTrain last; any other method after them, alphabetically), each method
  always in the same colour (:func:`method_palette`);
* domains in the table order (:data:`DOMAIN_ORDER`: the base domain, then the nine targets), any
  other domain after them alphabetically, and the ``"average"`` group last;
* intervals are 95% normal-approximation intervals over tasks, ``z * sd / sqrt(n)`` with
  ``z = 1.96`` as in :mod:`tinytrain_core.stats`; tables that carry a ``ci95`` column are drawn
  with that column as is.

The numbers behind the adaptation figure come from :func:`stratified_mean_ci` and
:func:`paired_differences`, exposed so that a notebook (or a test) can print what is drawn.
"""
from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = [
    "METHOD_ORDER", "DOMAIN_ORDER", "AVERAGE", "Z95",
    "method_order", "domain_order", "method_palette", "read_adapt_rows",
    "stratified_mean_ci", "paired_differences", "parse_scheme", "layer_choice_table",
    "episode_stats_from_rows",
    "adapt_accuracy", "layer_choices", "episode_sizes", "frozen_accuracy", "meta_training",
]

METHOD_ORDER: tuple[str, ...] = ("None", "LastLayer", "SparseUpdate", "FullTrain", "TinyTrain")
DOMAIN_ORDER: tuple[str, ...] = ("icons", "signs", "glyphs", "cjk", "emoji", "lineart", "cards", "fashion",
                                 "textures", "clipart")
AVERAGE = "average"
Z95 = 1.96  # same normal quantile as tinytrain_core.stats.mean_ci95

# Colour-blind-safe (seaborn "colorblind"); a method keeps its colour whichever others are drawn.
_CB = sns.color_palette("colorblind", 10)
_METHOD_COLOURS = {"None": _CB[7], "LastLayer": _CB[0], "SparseUpdate": _CB[2], "FullTrain": _CB[1],
                   "TinyTrain": _CB[3]}
_EXTRA_COLOURS = [_CB[4], _CB[5], _CB[6], _CB[8], _CB[9]]
_BASE_COLOUR, _TARGET_COLOUR = _CB[1], _CB[0]
_VERDICT_COLOURS = {"helps": _CB[2], "hurts": _CB[3], "no clear change": (0.45, 0.45, 0.45)}
_CHECKPOINT_LABELS = {"imagenet": "ImageNet init", "meta": "after meta-training",
                      "scratch": "random init", "scratch-meta": "random init + meta-training"}
_BAND = "0.955"          # alternate category bands
_AVERAGE_BAND = "#fbeecb"  # the average group's background


# ---------------------------------------------------------------------------------------------
# orders, colours, reading
# ---------------------------------------------------------------------------------------------

def _ordered(names: Iterable, known: Sequence[str], last: Sequence[str] = ()) -> list[str]:
    names = list(dict.fromkeys(str(n) for n in names))
    head = [n for n in known if n in names]
    tail = [n for n in last if n in names]
    rest = sorted(n for n in names if n not in head and n not in tail)
    return head + rest + tail


def method_order(names: Iterable) -> list[str]:
    """None, LastLayer, SparseUpdate, FullTrain, TinyTrain (those present), then others alphabetically."""
    return _ordered(names, METHOD_ORDER)


def domain_order(names: Iterable) -> list[str]:
    """The table order of :data:`DOMAIN_ORDER` (those present), others alphabetically, "average" last."""
    return _ordered(names, DOMAIN_ORDER, last=(AVERAGE,))


def method_palette(methods: Iterable) -> dict:
    """A colour per method: fixed for the known methods, the next free colour for any other."""
    pal, extra = {}, iter(_EXTRA_COLOURS * 4)
    for m in method_order(methods):
        pal[m] = _METHOD_COLOURS.get(m) or next(extra)
    return pal


def read_adapt_rows(source) -> pd.DataFrame:
    """Per-task adaptation rows from a results folder (every ``<domain>.csv`` but ``summary.csv``) or
    from a list of CSV paths. The method called ``"None"`` stays a string (``keep_default_na=False``)."""
    src = Path(source) if isinstance(source, (str, Path)) else None
    if src is not None and src.is_dir():
        files = sorted(p for p in src.glob("*.csv") if p.name != "summary.csv")
    elif src is not None:
        files = [src]
    else:
        files = [Path(p) for p in source]
    if not files:
        raise FileNotFoundError(f"no per-domain CSVs in {source}")
    return pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in files], ignore_index=True)


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; got {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{what}: the table is empty")


def _check_methods(rows: pd.DataFrame, col: str = "method") -> pd.DataFrame:
    if rows[col].isna().any():
        raise ValueError(f"{col!r} has missing values: was the CSV read without keep_default_na=False, "
                         "na_values=[''] (pandas reads the method 'None' as NaN otherwise)? "
                         "read_adapt_rows() reads it right.")
    rows = rows.copy()
    rows[col] = rows[col].astype(str)
    return rows


def _finish(fig, path, dpi: int = 150):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _style():
    """Seaborn look, applied only while a figure is built (global rcParams are left alone)."""
    class _Both:
        def __enter__(self):
            self._a = sns.axes_style("whitegrid", {"grid.color": "0.88", "axes.edgecolor": "0.6"})
            self._c = sns.plotting_context("notebook", font_scale=0.82)
            self._a.__enter__()
            self._c.__enter__()

        def __exit__(self, *exc):
            self._c.__exit__(*exc)
            self._a.__exit__(*exc)
    return _Both()


# ---------------------------------------------------------------------------------------------
# statistics behind the figures
# ---------------------------------------------------------------------------------------------

def stratified_mean_ci(rows: pd.DataFrame, value: str = "accuracy", group: str = "method",
                       stratum: str = "domain", z: float = Z95, average: str | None = AVERAGE,
                       common_strata: bool = True) -> pd.DataFrame:
    """Mean and 95% CI of ``value`` per (``group``, ``stratum``), plus an average row per group.

    Per stratum d (a domain) with n_d tasks: ``mean_d``, ``sd_d`` (n-1 denominator),
    ``se_d = sd_d / sqrt(n_d)``, ``ci95 = z * se_d``.

    The average row (``stratum == "average"``) weighs every stratum equally, whatever its number
    of tasks (the mean over domains of the per-domain means), and its interval is the
    stratified one, the strata being independent samples::

        mean_avg = (1/D) * sum_d mean_d
        se_avg   = sqrt(sum_d sd_d**2 / n_d) / D
        ci95_avg = z * se_avg            (z = 1.96)

    With ``common_strata`` the average of every group runs over the strata all groups share, so
    that averages of different methods compare like with like (``n_strata`` says how many).
    A stratum with a single task has no sd, and then neither has the average (NaN).

    Returns columns ``[group, stratum, n, n_strata, mean, sd, se, ci95]``, groups in
    :func:`method_order`, strata in :func:`domain_order`.
    """
    _require(rows, [value, group, stratum], "stratified_mean_ci")
    if average is not None and (rows[stratum].astype(str) == average).any():
        raise ValueError(f"a {stratum} is called {average!r}, the name of the average row")
    per = (rows.dropna(subset=[value]).groupby([group, stratum], sort=False)[value]
           .agg(n="count", mean="mean", sd="std").reset_index())
    per["n_strata"] = 1
    per["se"] = per["sd"] / np.sqrt(per["n"])
    per["ci95"] = z * per["se"]
    out = [per]
    if average is not None:
        groups = list(per[group].unique())
        sets = [set(per.loc[per[group] == g, stratum]) for g in groups]
        shared = set.intersection(*sets) if sets else set()
        avg = []
        for g, own in zip(groups, sets):
            use = shared if common_strata else own
            sub = per[(per[group] == g) & per[stratum].isin(use)]
            d = len(sub)
            if d == 0:
                continue
            se = math.sqrt(float((sub["se"] ** 2).sum())) / d if sub["se"].notna().all() else math.nan
            avg.append({group: g, stratum: average, "n": int(sub["n"].sum()), "n_strata": d,
                        "mean": float(sub["mean"].mean()), "sd": math.nan, "se": se, "ci95": z * se})
        if avg:
            out.append(pd.DataFrame(avg))
    res = pd.concat(out, ignore_index=True)
    g_rank = {m: i for i, m in enumerate(method_order(res[group].astype(str)))}
    s_rank = {d: i for i, d in enumerate(domain_order(res[stratum].astype(str)))}
    res = res.assign(_g=res[group].astype(str).map(g_rank), _s=res[stratum].astype(str).map(s_rank))
    res = res.sort_values(["_g", "_s"]).drop(columns=["_g", "_s"]).reset_index(drop=True)
    return res[[group, stratum, "n", "n_strata", "mean", "sd", "se", "ci95"]]


def paired_differences(rows: pd.DataFrame, reference: str = "FullTrain", value: str = "accuracy",
                       group: str = "method", pair_on: Sequence[str] = ("domain", "episode")) -> pd.DataFrame:
    """Per shared task, ``value`` of every other method minus that of ``reference``.

    Tasks are matched on ``pair_on`` (domain and episode); a task that one side lacks is left out.
    Returns columns ``[*pair_on, group, value, "reference", "diff"]``; feed it to
    :func:`stratified_mean_ci` with ``value="diff"`` for the paired mean and CI.
    """
    pair_on = list(pair_on)
    _require(rows, [*pair_on, group, value], "paired_differences")
    dup = rows.duplicated([*pair_on, group])
    if dup.any():
        raise ValueError(f"{int(dup.sum())} duplicate ({', '.join(pair_on)}, {group}) rows: pairing is ambiguous "
                         "(filter to one checkpoint / learning rate first)")
    if reference not in set(rows[group]):
        raise ValueError(f"reference {reference!r} not among {method_order(rows[group].unique())}")
    ref = rows.loc[rows[group] == reference, [*pair_on, value]].rename(columns={value: "reference"})
    other = rows.loc[rows[group] != reference, [*pair_on, group, value]]
    m = other.merge(ref, on=pair_on, how="inner")
    m["diff"] = m[value] - m["reference"]
    return m[[*pair_on, group, value, "reference", "diff"]].reset_index(drop=True)


_SCHEME_RE = re.compile(r"(?:conv\s*)?(\d+)\s*:\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)


def parse_scheme(scheme) -> dict[int, tuple[int, int]]:
    """``"31:240/240;38:48/384"`` (optionally ``conv31:...``) -> ``{31: (240, 240), 38: (48, 384)}``.

    Empty or missing means no conv trained (``{}``)."""
    if scheme is None or (isinstance(scheme, float) and math.isnan(scheme)):
        return {}
    out = {}
    for part in str(scheme).split(";"):
        part = part.strip()
        if not part:
            continue
        m = _SCHEME_RE.fullmatch(part)
        if not m:
            raise ValueError(f"unreadable scheme entry {part!r} in {scheme!r} (expected 'conv:kept/in')")
        out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return out


def layer_choice_table(rows: pd.DataFrame, method: str = "TinyTrain") -> pd.DataFrame:
    """Per domain and conv ever trained by ``method``: how many of its tasks trained the conv
    (``trained`` of ``tasks``, ``share``), the mean kept fraction of input channels over those tasks
    (``kept_frac``) and, when every such task kept the same slice, that slice (``slice``, e.g.
    ``"48/384"``). Convs no task trained are left out."""
    _require(rows, ["domain", "method", "scheme"], "layer_choice_table")
    rows = _check_methods(rows)
    sel = rows[rows["method"] == method]
    if sel.empty:
        raise ValueError(f"no rows of method {method!r}; methods: {method_order(rows['method'].unique())}")
    recs = []
    for dom, g in sel.groupby("domain", sort=False):
        parsed = [parse_scheme(s) for s in g["scheme"]]
        convs = sorted({c for p in parsed for c in p})
        for c in convs:
            used = [p[c] for p in parsed if c in p]
            fr = [k / i if i else math.nan for k, i in used]
            recs.append(dict(domain=str(dom), conv=c, tasks=len(parsed), trained=len(used),
                             share=len(used) / len(parsed), kept_frac=float(np.mean(fr)),
                             slice=f"{used[0][0]}/{used[0][1]}" if len(set(used)) == 1 else None))
    out = pd.DataFrame(recs, columns=["domain", "conv", "tasks", "trained", "share", "kept_frac", "slice"])
    if out.empty:
        return out
    rank = {d: i for i, d in enumerate(domain_order(out["domain"]))}
    return (out.assign(_d=out["domain"].map(rank)).sort_values(["_d", "conv"])
            .drop(columns="_d").reset_index(drop=True))


def episode_stats_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (domain, episode) from per-task adaptation rows: ``ways``, ``support`` (the rows'
    ``shots`` column, the support-set size) and ``query`` (``queries``)."""
    _require(rows, ["domain", "episode", "ways", "shots", "queries"], "episode_stats_from_rows")
    ep = rows.drop_duplicates(["domain", "episode"])[["domain", "episode", "ways", "shots", "queries"]]
    return ep.rename(columns={"shots": "support", "queries": "query"}).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# drawing helpers
# ---------------------------------------------------------------------------------------------

def _offsets(k: int, width: float = 0.72) -> np.ndarray:
    return (np.arange(k) - (k - 1) / 2) * (width / max(k, 1))


def _bands(ax, n: int, horizontal: bool = False, average_last: bool = False) -> None:
    span = ax.axhspan if horizontal else ax.axvspan
    for i in range(n):
        if average_last and i == n - 1:
            span(i - 0.5, i + 0.5, color=_AVERAGE_BAND, zorder=0, lw=0)
        elif i % 2:
            span(i - 0.5, i + 0.5, color=_BAND, zorder=0, lw=0)
    if average_last and n > 1:
        (ax.axhline if horizontal else ax.axvline)(n - 1.5, color="0.55", lw=1.0, zorder=1)


def _point_ranges(ax, summary: pd.DataFrame, cat_col: str, cats: Sequence[str], hue_col: str,
                  hues: Sequence[str], colours: dict, mean: str = "mean", ci: str = "ci95",
                  horizontal: bool = False, width: float = 0.72, ms: float = 5.5) -> None:
    """Mean and CI bar per (category, hue), hues side by side within a category; one errorbar
    container per hue, labelled with the hue (so ``ax.containers`` map back to the data)."""
    off = _offsets(len(hues), width)
    for j, h in enumerate(hues):
        sub = summary[summary[hue_col].astype(str) == h]
        sub = sub.set_index(sub[cat_col].astype(str)).reindex(list(cats))
        ok = sub[mean].notna().to_numpy()
        if not ok.any():
            continue
        pos = (np.arange(len(cats)) + off[j])[ok]
        val = sub[mean].to_numpy(float)[ok]
        err = np.nan_to_num(sub[ci].to_numpy(float)[ok], nan=0.0)
        kw = dict(fmt="o", color=colours[h], ms=ms, capsize=2.5, elinewidth=1.5, capthick=1.2,
                  label=str(h), zorder=3, mec="white", mew=0.6)
        if horizontal:
            ax.errorbar(val, pos, xerr=err, **kw)
        else:
            ax.errorbar(pos, val, yerr=err, **kw)


def _label_line(ax, value: float, text: str, horizontal_line: bool = True, colour="0.25") -> None:
    """Name a reference line just outside the axes, where it can cover no data."""
    if horizontal_line:
        ax.annotate(text, xy=(1.0, value), xycoords=("axes fraction", "data"), xytext=(5, 0),
                    textcoords="offset points", ha="left", va="center", fontsize=8.5, color=colour,
                    annotation_clip=False)
    else:
        ax.annotate(text, xy=(value, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8.5, color=colour,
                    annotation_clip=False)


def _bold_tick(labels, name: str) -> None:
    for t in labels:
        if t.get_text().split("\n")[0] == name:
            t.set_fontweight("bold")


# ---------------------------------------------------------------------------------------------
# 1. adaptation accuracy
# ---------------------------------------------------------------------------------------------

def adapt_accuracy(rows: pd.DataFrame, reference: str | None = "FullTrain", title: str | None = None,
                   path=None, value: str = "accuracy", z: float = Z95):
    """Query accuracy after adaptation, per domain and method, with an average over domains.

    ``rows`` are per-task rows (``results/<profile>/adapt/<model>/<domain>.csv``: domain,
    episode, method, accuracy, ...; read them with :func:`read_adapt_rows`).

    (a) mean accuracy and 95% CI per domain and method, and an ``average`` group: the mean over
    domains of the per-domain means (each domain counts once), with the stratified interval
    ``1.96 * sqrt(sum_d sd_d**2 / n_d) / D`` over the D domains all methods share
    (:func:`stratified_mean_ci`).
    (b) paired difference of every other method to ``reference`` on the tasks both ran, per domain
    and averaged the same way, with the zero line (= ``reference``) labelled. ``reference=None``
    draws (a) only.
    """
    _require(rows, ["domain", "episode", "method", value], "adapt_accuracy rows")
    rows = _check_methods(rows)
    methods = method_order(rows["method"].unique())
    colours = method_palette(methods)
    summ = stratified_mean_ci(rows, value=value, z=z)
    cats = domain_order(summ["domain"].astype(str).unique())
    if reference is not None:
        if reference not in methods:
            raise ValueError(f"reference {reference!r} not among the methods {methods}")
        diffs = stratified_mean_ci(paired_differences(rows, reference, value=value), value="diff", z=z)
        others = [m for m in methods if m != reference]
    n_avg = int(summ.loc[summ["domain"] == AVERAGE, "n_strata"].max())
    ns = summ.loc[summ["domain"] != AVERAGE, "n"]
    per_dom = f"{int(ns.iloc[0])} tasks per domain" if ns.nunique() == 1 else "tasks per domain under the names"

    tick = [c if c != AVERAGE else f"average\n({n_avg} domains)" for c in cats]
    if ns.nunique() != 1:
        counts = summ[summ["domain"] != AVERAGE].groupby("domain")["n"].max()
        tick = [f"{c}\nn={counts[c]}" if c in counts.index else t for c, t in zip(cats, tick)]

    with _style():
        nrows = 2 if reference is not None else 1
        fig, axes = plt.subplots(nrows, 1, figsize=(max(7.5, 0.95 * len(cats) + 2.8), 7.6 if nrows == 2 else 4.6),
                                 sharex=True, squeeze=False, layout="constrained",
                                 gridspec_kw={"height_ratios": [3, 2][:nrows]})
        ax_a = axes[0, 0]
        _bands(ax_a, len(cats), average_last=True)
        _point_ranges(ax_a, summ, "domain", cats, "method", methods, colours)
        ax_a.set_ylabel(f"query {value} (%)" if value == "accuracy" else value)
        ax_a.set_title(f"(a) mean and 95% CI ({per_dom}); average = mean of the {n_avg} per-domain means",
                       loc="left", fontsize=9.5)
        ax_a.set_xlim(-0.6, len(cats) - 0.4)
        ax_a.grid(axis="x", visible=False)
        handles, labels = ax_a.get_legend_handles_labels()
        ax_a.legend(handles, labels, title="method", loc="upper left", bbox_to_anchor=(1.005, 1.0),
                    frameon=False, handletextpad=0.3, borderaxespad=0.2)
        if reference is not None:
            ax_b = axes[1, 0]
            _bands(ax_b, len(cats), average_last=True)
            ax_b.axhline(0.0, color="0.2", lw=1.1, ls="--", zorder=2)
            _point_ranges(ax_b, diffs, "domain", cats, "method", others, colours)
            _label_line(ax_b, 0.0, f"= {reference}\n(no difference)")
            ax_b.set_ylabel(f"{value} − {reference}\n(percentage points)")
            ax_b.set_title(f"(b) paired difference to {reference} on the same tasks (95% CI); "
                           f"above 0 = better than {reference}", loc="left", fontsize=9.5)
            ax_b.grid(axis="x", visible=False)
        bottom = axes[-1, 0]
        bottom.set_xticks(range(len(cats)), tick)
        bottom.set_xlabel("domain")
        _bold_tick(bottom.get_xticklabels(), "average")
        fig.suptitle(title or "Accuracy after few-shot adaptation, per domain and method", fontsize=12)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# 2. which convs a method trains
# ---------------------------------------------------------------------------------------------

def layer_choices(rows: pd.DataFrame, method: str = "TinyTrain", n_convs: int | None = None,
                  title: str | None = None, path=None):
    """Which convs ``method`` trained, per domain: a heatmap of domains x convs.

    Only convs that some task trained are shown (labelled ``conv 31`` etc., counting from the
    input, 0 = first conv). (a) share of the domain's tasks that trained the conv; (b) mean
    fraction of the conv's input channels kept when it was trained, annotated with the slice
    (``kept/in``) when every task kept the same one; grey = not trained in that domain.
    ``n_convs`` (the network's conv count, for the title) defaults to one more than the highest
    conv index any method in ``rows`` trained (FullTrain's scheme lists them all).
    """
    tab = layer_choice_table(rows, method)
    rows = _check_methods(rows)
    if n_convs is None:
        idx = [c for s in rows["scheme"] for c in parse_scheme(s)]
        n_convs = max(idx) + 1 if idx and rows["method"].nunique() > 1 else None
    doms = domain_order(rows.loc[rows["method"] == method, "domain"].astype(str).unique())
    convs = sorted(tab["conv"].unique()) if not tab.empty else []
    cols = [f"conv {c}" for c in convs]
    of = f" of {n_convs}" if n_convs else ""
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.5 * len(convs) + 4.5), 0.42 * len(doms) + 2.3),
                                 sharey=True, layout="constrained")
        if tab.empty:
            for ax in axes:
                ax.text(0.5, 0.5, f"{method} trained no conv", ha="center", va="center", transform=ax.transAxes)
        else:
            share = tab.pivot(index="domain", columns="conv", values="share").reindex(index=doms, columns=convs)
            kept = tab.pivot(index="domain", columns="conv", values="kept_frac").reindex(index=doms, columns=convs)
            sl = tab.pivot(index="domain", columns="conv", values="slice").reindex(index=doms, columns=convs)
            share = share.fillna(0.0)
            share.columns = kept.columns = cols
            ann_share = share.map(lambda v: f"{v:.0%}")
            ann_kept = pd.DataFrame(
                [[("" if pd.isna(k) else (s if isinstance(s, str) else f"{k:.2f}"))
                  for k, s in zip(kept.loc[d], sl.loc[d])] for d in doms], index=doms, columns=cols)
            fs = 8.5 if len(convs) <= 10 else 7
            sns.heatmap(share, ax=axes[0], vmin=0, vmax=1, cmap="Blues", annot=ann_share, fmt="",
                        annot_kws={"fontsize": fs}, linewidths=0.6, linecolor="white",
                        cbar_kws={"label": "share of the domain's tasks\nthat trained the conv"})
            axes[1].set_facecolor("0.85")
            sns.heatmap(kept, ax=axes[1], vmin=0, vmax=1, cmap="viridis", annot=ann_kept, fmt="",
                        annot_kws={"fontsize": fs}, linewidths=0.6, linecolor="white",
                        cbar_kws={"label": "mean kept fraction of\ninput channels (when trained)"})
        axes[0].set_title("(a) how often the conv is trained", loc="left", fontsize=9.5)
        axes[1].set_title("(b) channels kept (kept/in; grey = not trained)", loc="left", fontsize=9.5)
        for ax in axes:
            ax.set_xlabel(f"conv index (0 = first conv{'; ' + str(n_convs) + ' in all' if n_convs else ''})")
            ax.tick_params(axis="x", rotation=0)
            ax.tick_params(axis="y", rotation=0)
        axes[0].set_ylabel("domain")
        axes[1].set_ylabel("")
        fig.suptitle(title or f"{method}: which convs are trained ({len(convs)}{of} convs ever chosen)",
                     fontsize=12)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# 3. episode sizes
# ---------------------------------------------------------------------------------------------

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
    with the table's 95% CI, the base domain hatched and in its own colour. Two labelled reference
    lines: ``chance (20%)`` (1 of 5 ways) and the ``ceiling`` (95%), above which a domain leaves
    too little room to show what adaptation adds."""
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
        ax.errorbar(x, t[value], yerr=np.nan_to_num(err), fmt="none", ecolor="0.15", elinewidth=1.3,
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

    One column per model. Top row: accuracy with the table's 95% CI, start vs meta-trained.
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
                          horizontal=True, width=0.5, ms=5)
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
