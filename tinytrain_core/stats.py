"""Summary statistics over tasks: means with 95% confidence intervals, stratified averages over
domains, and paired differences. The one home of the statistics behind the tables and figures.

Every interval is a Student t interval over tasks. For n values with sample sd (n-1 denominator)::

    ci95 = t95(n - 1) * sd / sqrt(n),      t95(df) = t.ppf(0.975, df)

Few-shot papers (and Meta-Dataset) use the normal quantile 1.96 instead; that is fine over their
600+ tasks, but we run 10-12 tasks per domain, where 1.96 understates the interval
(t95(11) = 2.20, t95(9) = 2.26). The stratified average over D domains weighs each domain once::

    mean_avg = (1/D) * sum_d mean_d
    se_avg   = sqrt(sum_d v_d) / D,        v_d = sd_d**2 / n_d
    df_avg   = (sum_d v_d)**2 / sum_d (v_d**2 / (n_d - 1))      (Welch-Satterthwaite)
    ci95_avg = t95(df_avg) * se_avg

(with equal sd and n, df_avg = D * (n - 1); when every v_d is 0, df_avg = sum_d (n_d - 1)).
When two methods are run on the same tasks, the interval of their *paired* difference is far
tighter than comparing two intervals: :func:`paired_differences`, :func:`paired_diff_ci95`.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import t as _student_t

AVERAGE = "average"
METHOD_ORDER: tuple[str, ...] = ("None", "LastLayer", "AdapterDrop-75%", "AdapterDrop-50%", "AdapterDrop-25%",
                                 "SparseUpdate", "TinyTL", "FullTrain", "Transductive", "TinyTrain")
DOMAIN_ORDER: tuple[str, ...] = ("icons", "signs", "glyphs", "cjk", "emoji", "lineart", "cards", "fashion",
                                 "textures", "clipart")


def t95(df):
    """Two-sided 95% Student t quantile with ``df`` degrees of freedom (NaN where df <= 0 or NaN);
    a float for a scalar, an array for an array."""
    q = _student_t.ppf(0.975, df)
    return float(q) if np.ndim(q) == 0 else q


def t80(df):
    """The one-sided 80% Student t quantile, t.ppf(0.8, df): the z of 80% power (0.84 for large df)."""
    q = _student_t.ppf(0.8, df)
    return float(q) if np.ndim(q) == 0 else q


def mde80(ci95, df):
    """Minimum detectable effect at 80% power of a difference whose 95% t CI has half-width
    ``ci95`` on ``df`` degrees of freedom::

        se    = ci95 / t95(df)
        mde80 = (t95(df) + t80(df)) * se  =  ci95 * (1 + t80(df) / t95(df))

    Why: a difference "holds" when its CI excludes 0 on the claimed side (mean - ci95 > 0, a
    one-sided test at 2.5%). If the true difference is mde80, the estimate lands above
    t95 * se four times in five: mde80 is the smallest effect the design finds 80% of the time
    (the shifted-t approximation of the noncentral t; the exact power is 0.79-0.80 from df 5 on).
    A paper effect below mde80 is one these tasks were unlikely to confirm even if it is real.
    NaN where ci95 or df is NaN (or df <= 0)."""
    return ci95 * (1 + t80(df) / t95(df))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% t CI). One value gives a half-width of NaN, none gives NaNs."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    m = sum(xs) / n
    if n == 1:
        return m, math.nan
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return m, t95(n - 1) * math.sqrt(var / n)


def paired_diff_ci95(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% CI half-width of a[i] - b[i] over shared tasks."""
    if len(a) != len(b):
        raise ValueError(f"paired difference needs the same tasks: {len(a)} vs {len(b)} values")
    return mean_ci95([x - y for x, y in zip(a, b)])


def fmt_ci(mean: float, ci: float, digits: int = 1) -> str:
    if math.isnan(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# tables of per-task rows
# ---------------------------------------------------------------------------------------------

def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; got {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{what}: the table is empty")


def _cols(group: str | Sequence[str]) -> list[str]:
    return [group] if isinstance(group, str) else list(group)


def _sorted(res: pd.DataFrame, cols: list[str], stratum: str) -> pd.DataFrame:
    """Groups in method order, strata in domain order."""
    orders = [(c, method_order) for c in cols] + [(stratum, domain_order)]
    ranks = {f"_rank{i}": res[c].astype(str).map({n: r for r, n in enumerate(order(res[c].astype(str)))})
             for i, (c, order) in enumerate(orders)}
    return res.assign(**ranks).sort_values(list(ranks)).drop(columns=list(ranks)).reset_index(drop=True)


def _per_stratum(rows, value, cols, stratum, z):
    per = (rows.dropna(subset=[value]).groupby([*cols, stratum], sort=False)[value]
           .agg(n="count", mean="mean", sd="std").reset_index())
    per["n_strata"] = 1
    per["se"] = per["sd"] / np.sqrt(per["n"])
    per["df"] = (per["n"] - 1).astype(float)
    per["ci95"] = (z if z is not None else t95(per["df"].to_numpy())) * per["se"]
    return per


def _average(sub: pd.DataFrame, z: float | None) -> dict:
    """The stratified average of per-stratum rows (module docstring): mean, se, Welch df, t CI."""
    n = sub["n"].to_numpy(float)
    v = (sub["sd"] ** 2).to_numpy(float) / n
    d = len(sub)
    if np.isnan(v).any():  # a stratum with one task has no sd, and then neither has the average
        se = df = math.nan
    else:
        se = math.sqrt(v.sum()) / d
        df = v.sum() ** 2 / (v ** 2 / (n - 1)).sum() if v.sum() > 0 else (n - 1).sum()
    return {"n": int(n.sum()), "n_strata": d, "mean": float(sub["mean"].mean()), "sd": math.nan, "se": se,
            "ci95": (z if z is not None else t95(df)) * se, "df": float(df)}


def _averages(per: pd.DataFrame, cols: list[str], stratum: str, z, common_strata: bool) -> list[dict]:
    groups = list(per.groupby(cols, sort=False))
    shared = set.intersection(*(set(g[stratum]) for _, g in groups)) if groups else set()
    out = []
    for key, g in groups:
        sub = g[g[stratum].isin(shared)] if common_strata else g
        if len(sub):
            out.append({**dict(zip(cols, key)), **_average(sub, z)})
    return out


def stratified_mean_ci(rows: pd.DataFrame, value: str = "accuracy", group: str | Sequence[str] = "method",
                       stratum: str = "domain", z: float | None = None, average: str | None = AVERAGE,
                       common_strata: bool = True) -> pd.DataFrame:
    """Mean and 95% CI of ``value`` per (``group``, ``stratum``), plus an average row per group.

    ``group`` is a column or a list of columns (e.g. ``["method", "checkpoint"]``). Per stratum d
    (a domain) with n_d tasks: ``mean``, ``sd`` (n-1 denominator), ``se = sd / sqrt(n)``,
    ``df = n - 1``, ``ci95 = t95(df) * se``. The average row (``stratum == average``) is the
    stratified average of the module docstring: each stratum counts once, Welch-Satterthwaite df.
    ``z`` forces a normal quantile instead of t (None: t).

    With ``common_strata`` the average of every group runs over the strata all groups share, so
    that averages of different methods compare like with like (``n_strata`` says how many).
    A stratum with a single task has no sd, and then neither has the average (NaN).

    Returns columns ``[*group, stratum, n, n_strata, mean, sd, se, ci95, df]``, groups in
    method order, strata in domain order (:func:`method_order`, :func:`domain_order`).
    """
    cols = _cols(group)
    _require(rows, [value, *cols, stratum], "stratified_mean_ci")
    if average is not None and (rows[stratum].astype(str) == average).any():
        raise ValueError(f"a {stratum} is called {average!r}, the name of the average row")
    per = _per_stratum(rows, value, cols, stratum, z)
    avg = _averages(per, cols, stratum, z, common_strata) if average is not None else []
    res = pd.concat([per, pd.DataFrame(avg).assign(**{stratum: average})] if avg else [per], ignore_index=True)
    return _sorted(res, cols, stratum)[[*cols, stratum, "n", "n_strata", "mean", "sd", "se", "ci95", "df"]]


def leave_one_out(rows: pd.DataFrame, value: str = "diff", group: str | Sequence[str] = "method",
                  stratum: str = "domain") -> pd.DataFrame:
    """The stratified average of :func:`stratified_mean_ci` (same formula, t CI, shared strata)
    recomputed with each stratum left out in turn: does one domain carry the result?

    Returns columns ``[*group, "left_out", "n_strata", "mean", "ci95", "df"]``.
    """
    cols = _cols(group)
    _require(rows, [value, *cols, stratum], "leave_one_out")
    per = _per_stratum(rows, value, cols, stratum, None)
    out = [{**r, "left_out": s} for s in per[stratum].unique()
           for r in _averages(per[per[stratum] != s], cols, stratum, None, True)]
    res = pd.DataFrame(out, columns=[*cols, "left_out", "n_strata", "mean", "ci95", "df"])
    return _sorted(res[[*cols, "left_out", "n_strata", "mean", "ci95", "df"]], cols, "left_out")


def paired_differences(rows: pd.DataFrame, reference="FullTrain", value: str = "accuracy",
                       group: str | Sequence[str] = "method",
                       pair_on: Sequence[str] = ("domain", "episode")) -> pd.DataFrame:
    """Per shared task, ``value`` of every other group minus that of ``reference``.

    ``reference`` is a value of ``group``, or a tuple of values when ``group`` is a list of columns.
    Tasks are matched on ``pair_on`` (domain and episode); a task that one side lacks is left out.
    Returns columns ``[*pair_on, *group, value, "reference", "diff"]`` (the group columns of the
    other rows); feed it to :func:`stratified_mean_ci` with ``value="diff"`` for the paired mean and CI.
    """
    pair_on, cols = list(pair_on), _cols(group)
    ref_key = (reference,) if isinstance(group, str) else tuple(reference)
    _require(rows, [*pair_on, *cols, value], "paired_differences")
    if len(ref_key) != len(cols):
        raise ValueError(f"reference {reference!r} does not match the group columns {cols}")
    dup = rows.duplicated([*pair_on, *cols])
    if dup.any():
        raise ValueError(f"{int(dup.sum())} duplicate ({', '.join(pair_on + cols)}) rows: pairing is ambiguous "
                         "(filter to one checkpoint / learning rate first, or group by it)")
    is_ref = np.logical_and.reduce([rows[c] == k for c, k in zip(cols, ref_key)])
    if not is_ref.any():
        keys = sorted(set(rows[cols].itertuples(index=False, name=None)), key=str)
        raise ValueError(f"reference {reference!r} not among {[k[0] for k in keys] if isinstance(group, str) else keys}")
    ref = rows.loc[is_ref, [*pair_on, value]].rename(columns={value: "reference"})
    m = rows.loc[~is_ref, [*pair_on, *cols, value]].merge(ref, on=pair_on, how="inner")
    m["diff"] = m[value] - m["reference"]
    return m[[*pair_on, *cols, value, "reference", "diff"]].reset_index(drop=True)


def ci_with_extra_sd(ci95: float, df: float, extra_sd: float) -> float:
    """A 95% t CI half-width widened by an independent source of spread the tasks do not show
    (the meta-training seed): t95(df) * sqrt(se^2 + extra_sd^2), se = ci95 / t95(df)."""
    t = t95(df)
    return float(t * math.sqrt((ci95 / t) ** 2 + extra_sd ** 2))


def stratified_ci_for(sd_within: float, n_tasks: int, n_strata: int) -> float:
    """The stratified average's 95% t CI half-width that `n_tasks` tasks, spread evenly over
    `n_strata` domains, give when every domain's per-task sd is `sd_within` (the root mean square
    of the domains' sds): with n_d = N / D the module's se_avg = sqrt(sum_d sd_d**2 / n_d) / D
    becomes sqrt(mean_d sd_d**2 / N), and the Welch df becomes D * (N / D - 1) = N - D."""
    if n_tasks <= n_strata:
        return math.nan
    return t95(n_tasks - n_strata) * sd_within / math.sqrt(n_tasks)


def tasks_for_ci(sd_within: float, target: float, n_strata: int) -> int:
    """The fewest tasks, a multiple of `n_strata` (the same count per domain), whose stratified
    CI (`stratified_ci_for`) is at most `target` points: the power plan of a paired comparison."""
    if not sd_within > 0:
        return 2 * n_strata
    n = n_strata * 2
    while stratified_ci_for(sd_within, n, n_strata) > target:
        n += n_strata
    return n


# ---------------------------------------------------------------------------------------------
# table order and the verdict rule (shared by tables, figures and sentences)
# ---------------------------------------------------------------------------------------------

def _ordered(names: Iterable, known: Sequence[str], last: Sequence[str] = ()) -> list[str]:
    names = list(dict.fromkeys(str(n) for n in names))
    head = [n for n in known if n in names]
    tail = [n for n in last if n in names]
    rest = sorted(n for n in names if n not in head and n not in tail)
    return head + rest + tail


def method_order(names: Iterable) -> list[str]:
    """Table 1's methods from the least to the most trained, TinyTrain last (those present), then
    others alphabetically."""
    return _ordered(names, METHOD_ORDER)


def domain_order(names: Iterable) -> list[str]:
    """The table order of :data:`DOMAIN_ORDER` (those present), others alphabetically, "average" last."""
    return _ordered(names, DOMAIN_ORDER, last=(AVERAGE,))


def pm(mean: float, ci: float) -> str:
    """'+1.2 ± 0.3' (a difference and its 95% CI, one decimal); '(no CI)' when there is none."""
    return f"{mean:+.1f} ± {ci:.1f}" if not math.isnan(ci) else f"{mean:+.1f} (no CI)"


def verdict(mean: float, ci: float) -> str:
    """better / worse / no clear difference: whether the 95% CI of a difference excludes 0 (above
    or below). The one rule for "a difference counts": the sentences use it as is, and the claims
    table's verdict (`report.claims.verdict`) builds on it, adding the paper's effect."""
    if mean - ci > 0:
        return "better"
    if mean + ci < 0:
        return "worse"
    return "no clear difference"
