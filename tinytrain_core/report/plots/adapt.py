"""Adaptation figures: accuracy per domain and method (with paired differences), and which convs a
method trains (with the table and the scheme parser behind it)."""
from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .common import (ACCURACY_RANGE, AVERAGE, Z95, _bands, _bold_tick, _check_methods, _clamp_axis, _finish,
                     _label_line, _point_ranges, _require, _style, domain_order, method_order, method_palette,
                     paired_differences, stratified_mean_ci)


# ---------------------------------------------------------------------------------------------
# 1. adaptation accuracy
# ---------------------------------------------------------------------------------------------

def adapt_accuracy(rows: pd.DataFrame, reference: str | None = "FullTrain", title: str | None = None,
                   path=None, value: str = "accuracy", z: float = Z95):
    """Query accuracy after adaptation, per domain and method, with an average over domains.

    ``rows`` are per-task rows of one checkpoint (``results/<profile>/adapt/<model>/<domain>.csv``:
    domain, episode, method, accuracy, ...; read them with :func:`read_adapt_rows`).

    (a) mean accuracy and 95% CI per domain and method, and an ``average`` group: the mean over
    domains of the per-domain means (each domain counts once), with the stratified interval
    ``t95(df) * sqrt(sum_d sd_d**2 / n_d) / D`` (Welch-Satterthwaite df) over the D domains all
    methods share
    (:func:`stratified_mean_ci`).
    Intervals of accuracies are cut at 0 and 100% (:func:`~.common.clipped_errors`), and so is
    the axis.
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
        is_acc = value == "accuracy"
        _point_ranges(ax_a, summ, "domain", cats, "method", methods, colours, bounds=ACCURACY_RANGE if is_acc else None)
        if is_acc:
            _clamp_axis(ax_a, "y")
        ax_a.set_ylabel(f"query {value} (%)" if is_acc else value)
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

_SCHEME_RE = re.compile(r"(?:conv\s*)?(\d+)\s*:\s*(\d+)\s*/\s*(\d+)(?:@[0-9a-f]+)?", re.IGNORECASE)


def parse_scheme(scheme) -> dict[int, tuple[int, int]]:
    """``"31:240/240;38:48/384"`` (optionally ``conv31:...``) -> ``{31: (240, 240), 38: (48, 384)}``.

    Empty or missing means no conv trained (``{}``); side-branch parts (``adapter=3,4``) train no conv
    weight and are skipped."""
    if scheme is None or (isinstance(scheme, float) and math.isnan(scheme)):
        return {}
    out = {}
    for part in str(scheme).split(";"):
        part = part.strip()
        if not part or "=" in part:
            continue
        m = _SCHEME_RE.fullmatch(part)
        if not m:
            raise ValueError(f"unreadable scheme entry {part!r} in {scheme!r} (expected 'conv:kept/in')")
        out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return out


def readable_scheme(scheme, sep: str = "; ") -> str:
    """A row's ``scheme`` as a reader takes it in: ``"28:192/192;29:96/192@5831…"`` ->
    ``"conv 28: 192/192 channels; conv 29: 96/192 channels"``, side branches as
    ``"adapter at blocks 3, 4"``, nothing trained as ``"no conv trained"``.

    The stored form keeps each partial conv's channel set as a hex bit mask (so that two tasks'
    channels can be compared, `analysis.scheme_items`); printed, that is a line of noise. Result
    CSVs keep the stored form; notebooks print this one."""
    parts = [f"conv {c}: {k}/{n} channels" for c, (k, n) in sorted(parse_scheme(scheme).items())]
    text = "" if scheme is None or (isinstance(scheme, float) and math.isnan(scheme)) else str(scheme)
    for part in text.split(";"):
        kind, eq, blocks = part.strip().partition("=")
        if eq:
            parts.append(f"{kind} at blocks {', '.join(b for b in blocks.split(',') if b)}")
    return sep.join(parts) or "no conv trained"


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
# 3. learning-rate validation curves
# ---------------------------------------------------------------------------------------------

LR_PANELS_PER_ROW = 4      # panels of lr_curves per row: nine methods in one row made a 5647 px wide PNG
LR_PANEL_INCHES = (3.5, 2.9)  # width, height of one panel; 4 x 3.5 in at 150 dpi stays under 2400 px


def _lr_grid(n: int):
    """Rows x columns of panels for ``n`` methods: at most :data:`LR_PANELS_PER_ROW` per row, the
    rows as evenly filled as that allows (nine methods: 3 x 3, not 4 + 4 + 1)."""
    nrows = max(1, math.ceil(n / LR_PANELS_PER_ROW))
    return nrows, max(1, math.ceil(n / nrows))


def _lr_panel(ax, table: pd.DataFrame, method: str, pos: dict, colours: dict) -> None:
    """One method: a line per (checkpoint, domain), thick for ``pooled``; chosen LRs ringed."""
    for ck, g in table[table.method == method].groupby("checkpoint"):
        for d, gd in g.groupby("domain"):
            gd = gd.sort_values("lr")
            pooled = d == "pooled"
            ax.plot(gd.lr.map(pos), gd.val_accuracy, color=colours[ck], lw=2.4 if pooled else 0.7,
                    alpha=1 if pooled else 0.35, marker="o" if pooled else None,
                    label=ck if pooled else None)
            if pooled or gd.chosen.any():
                c = gd[gd.chosen]
                ax.scatter(c.lr.map(pos), c.val_accuracy, s=120 if pooled else 30, facecolors="none",
                           edgecolors=colours[ck], linewidths=1.5, zorder=5)
    ax.set_title(method)


def lr_curves(table: pd.DataFrame, title: str | None = None, path=None):
    """Validation accuracy against the learning rate, one panel per trainable method, a line per
    checkpoint: thick for the mean over domains (``domain == "pooled"``), thin for each domain;
    the LR each arm's test rows used is ringed. ``table`` is :func:`analysis.lr_validation`'s.
    LR 0 (no training) is drawn at the left end of the log axis.

    Panels wrap into rows of :data:`LR_PANELS_PER_ROW` (a figure a reader can take in without
    scrolling sideways), share the 0-100% accuracy axis, and the legend sits below them."""
    _require(table, ["method", "checkpoint", "domain", "lr", "val_accuracy", "chosen"], "lr_curves table")
    methods = method_order(table["method"].unique())
    lrs = sorted(table["lr"].unique())
    pos = {lr: i for i, lr in enumerate(lrs)}
    colours = dict(zip(sorted(table["checkpoint"].unique()), sns.color_palette("deep", 4)))
    nrows, ncols = _lr_grid(len(methods))
    w, h = LR_PANEL_INCHES
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows + 1.0), sharex=True, sharey=True,
                                 squeeze=False, layout="constrained")
        flat = list(axes.flat)
        for ax, m in zip(flat, methods):
            _lr_panel(ax, table, m, pos, colours)
            ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
            ax.tick_params(axis="x", labelbottom=True)
        for ax in flat[len(methods):]:
            ax.set_visible(False)
        for j in range(ncols):               # the lowest drawn panel of each column names the axis
            drawn = [ax for ax in axes[:, j] if ax.get_visible()]
            if drawn:
                drawn[-1].set_xlabel("learning rate (0 = no training)")
        _clamp_axis(flat[0], "y")
        for row in axes:
            row[0].set_ylabel("validation accuracy (%)")
        seen = {}
        for ax in flat[:len(methods)]:       # a checkpoint may be missing from the first panel
            for hd, lb in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lb, hd)
        labels = sorted(seen)
        fig.legend([seen[lb] for lb in labels], labels, title="checkpoint (thick: mean over domains; ringed: used on test)",
                   loc="outside lower center", ncol=max(1, len(labels)), frameon=False)
        fig.suptitle(title or "Learning rate on validation episodes (ringed: the one used on test episodes)",
                     fontsize=11)
    return _finish(fig, path)
