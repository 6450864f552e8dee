"""What the figures share: orders, colours, reading, checks, style and the drawing helpers; the
statistics behind the figures live in :mod:`tinytrain_core.stats`.

Every figure function of :mod:`tinytrain_core.report.plots` (but ``plot_curves``) takes the DataFrame of
a committed table (or the per-task rows behind it), returns the matplotlib
:class:`~matplotlib.figure.Figure`, optionally saves it to ``path``, and never calls ``plt.show``
(the Agg backend is enough). Close the figure (``plt.close(fig)``) when done.

Conventions shared by all figures:

* methods in a fixed, meaningful order (:data:`METHOD_ORDER`: nothing trained, then more and more
  of the network, TinyTrain last; any other method after them, alphabetically), each method
  always in the same colour (:func:`method_palette`);
* domains in the table order (:data:`DOMAIN_ORDER`: the base domain, then the nine targets), any
  other domain after them alphabetically, and the ``"average"`` group last;
* intervals are 95% Student t intervals over tasks, ``t95(n - 1) * sd / sqrt(n)``, and the
  average over domains has the stratified interval with Welch-Satterthwaite df, both as in
  :mod:`tinytrain_core.stats`; tables that carry a ``ci95`` column are drawn with that column as is;
* an accuracy's interval is cut at 0 and 100% and so is its axis (:func:`clipped_errors`);
* legends sit outside the axes (:func:`_legend_outside`, or a figure legend below the panels);
  log axes carry a few plain-number ticks (:func:`_log_axis`).

The numbers behind the adaptation figure come from :func:`~tinytrain_core.stats.stratified_mean_ci`
and :func:`~tinytrain_core.stats.paired_differences` (re-exported here), so that a notebook (or a
test) can print what is drawn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import seaborn as sns

from ...stats import (AVERAGE, DOMAIN_ORDER, METHOD_ORDER, _require, domain_order, method_order,  # noqa: F401 (re-exported)
                      paired_differences, stratified_mean_ci)

Z95 = None  # the quantile of the 95% intervals: None = Student t (stats.t95); a number forces a normal z

# Colour-blind-safe (seaborn "colorblind", with black as in Okabe-Ito); a method keeps its colour
# whichever others are drawn. FullTrain (the usual reference) and TinyTrain (the method on trial)
# are black and vermillion: seaborn's orange beside vermillion read as one colour. Every pair of
# these (and the extra colours) lies more than 0.25 apart in RGB (tests/test_plots.py).
_CB = sns.color_palette("colorblind", 10)
_METHOD_COLOURS = {"None": _CB[7], "LastLayer": _CB[0], "SparseUpdate": _CB[2], "FullTrain": (0.0, 0.0, 0.0),
                   "TinyTrain": _CB[3], "TinyTL": _CB[4], "AdapterDrop-25%": _CB[5], "AdapterDrop-50%": _CB[6],
                   "AdapterDrop-75%": _CB[8], "Transductive": _CB[9]}
_EXTRA_COLOURS = [(0.3, 0.3, 0.3), (0.45, 0.2, 0.55)]
_BASE_COLOUR, _TARGET_COLOUR = _CB[1], _CB[0]
_VERDICT_COLOURS = {"helps": _CB[2], "hurts": _CB[3], "no clear change": (0.45, 0.45, 0.45)}
_CHECKPOINT_LABELS = {"imagenet": "ImageNet init", "meta": "after meta-training",
                      "scratch": "random init", "scratch-meta": "random init + meta-training"}
_BAND = "0.955"          # alternate category bands
_AVERAGE_BAND = "#fbeecb"  # the average group's background
ACCURACY_RANGE = (0.0, 100.0)  # where an accuracy (or its interval) can lie, in percent


# ---------------------------------------------------------------------------------------------
# orders, colours, reading
# ---------------------------------------------------------------------------------------------

def method_palette(methods: Iterable) -> dict:
    """A colour per method: fixed for the known methods, the next free colour for any other."""
    pal, extra = {}, iter(_EXTRA_COLOURS * 4)
    for m in method_order(methods):
        pal[m] = _METHOD_COLOURS.get(m) or next(extra)
    return pal


def read_adapt_rows(source) -> pd.DataFrame:
    """Per-task test rows from a results folder (its per-domain CSVs: `taskrows.row_files`) or
    from a list of CSV paths, read as `taskrows` reads them (the method "None" stays a string)."""
    from ...experiment.taskrows import row_files, rows_in
    src = Path(source) if isinstance(source, (str, Path)) else None
    files = row_files(src) if src is not None and src.is_dir() else [src] if src is not None else list(source)
    if not files:
        raise FileNotFoundError(f"no per-domain CSVs in {source}")
    return rows_in(files)


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


def clipped_errors(values, half_widths, bounds: tuple[float, float] | None = ACCURACY_RANGE) -> np.ndarray:
    """Asymmetric error bars (2 x n: below, above) for ``values ± half_widths`` cut at ``bounds``.

    A t interval around a mean near 0 or 100% runs past what an accuracy can be (e.g. -10..140%);
    drawn as is, it stretches the axis and hides the differences between methods. The interval is
    cut, not the mean; missing half-widths draw no bar. ``bounds=None`` leaves them symmetric."""
    v = np.asarray(values, float)
    e = np.nan_to_num(np.asarray(half_widths, float), nan=0.0)
    if bounds is None:
        return np.vstack([e, e])
    lo, hi = bounds
    return np.vstack([np.clip(np.minimum(e, v - lo), 0, None), np.clip(np.minimum(e, hi - v), 0, None)])


def _clamp_axis(ax, which: str = "y", bounds: tuple[float, float] = ACCURACY_RANGE) -> None:
    """Keep an accuracy axis inside ``bounds`` (autoscaling's margins would reach past 100%)."""
    get, set_ = (ax.get_ylim, ax.set_ylim) if which == "y" else (ax.get_xlim, ax.set_xlim)
    lo, hi = get()
    lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    if lo < hi:
        set_(lo, hi)
    else:
        set_(*bounds)


def _legend_outside(ax, **kw):
    """A legend right of ``ax``, top-aligned: beside the data, never over it."""
    kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "frameon": False, "borderaxespad": 0.2, **kw}
    return ax.legend(**kw)


def _plain_number(v: float, _pos=None) -> str:
    return f"{v:g}"


def _log_axis(ax, which: str = "x", max_ticks: int = 7) -> None:
    """Readable ticks on a log axis already drawn: 1-2-5 per decade over a short range, whole
    decades over a long one, at most ``max_ticks`` labels, as plain numbers ("20", not
    "2x10^1"), minor ticks unlabelled. Matplotlib's default labels every minor tick of a short
    range in scientific form, and they overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    if not (lo > 0 and hi > lo):
        return
    locator = None
    for subs in ((1.0, 2.0, 5.0), (1.0, 3.0), (1.0,)):
        cand = LogLocator(10, subs=subs, numticks=max_ticks)
        if 2 <= sum(lo <= t <= hi for t in cand.tick_values(lo, hi)) <= max_ticks:
            locator = cand
            break
    if locator is None:      # a short range with no two 1-2-5 ticks inside (20..28): linear ticks
        locator = MaxNLocator(nbins=4)
    axis.set_major_locator(locator)
    axis.set_major_formatter(FuncFormatter(_plain_number))
    axis.set_minor_formatter(NullFormatter())


def _point_ranges(ax, summary: pd.DataFrame, cat_col: str, cats: Sequence[str], hue_col: str,
                  hues: Sequence[str], colours: dict, mean: str = "mean", ci: str = "ci95",
                  horizontal: bool = False, width: float = 0.72, ms: float = 5.5,
                  bounds: tuple[float, float] | None = None) -> None:
    """Mean and CI bar per (category, hue), hues side by side within a category; one errorbar
    container per hue, labelled with the hue (so ``ax.containers`` map back to the data).
    ``bounds`` cuts the intervals (:func:`clipped_errors`; accuracies: :data:`ACCURACY_RANGE`)."""
    off = _offsets(len(hues), width)
    for j, h in enumerate(hues):
        sub = summary[summary[hue_col].astype(str) == h]
        sub = sub.set_index(sub[cat_col].astype(str)).reindex(list(cats))
        ok = sub[mean].notna().to_numpy()
        if not ok.any():
            continue
        pos = (np.arange(len(cats)) + off[j])[ok]
        val = sub[mean].to_numpy(float)[ok]
        err = clipped_errors(val, sub[ci].to_numpy(float)[ok], bounds)
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

