"""Summary statistics over tasks: mean with a 95% confidence interval, and paired differences.

Few-shot papers (and Meta-Dataset) report the normal-approximation interval
1.96 * std / sqrt(n) over tasks; we do the same. When two methods are run on the same tasks,
the interval of their *paired* difference is far tighter than comparing two intervals.
"""
from __future__ import annotations

import math
from typing import Sequence

Z95 = 1.96


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% CI). One value gives a half-width of NaN, none gives NaNs."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    m = sum(xs) / n
    if n == 1:
        return m, math.nan
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return m, Z95 * math.sqrt(var / n)


def paired_diff_ci95(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% CI half-width of a[i] - b[i] over shared tasks."""
    if len(a) != len(b):
        raise ValueError(f"paired difference needs the same tasks: {len(a)} vs {len(b)} values")
    return mean_ci95([x - y for x, y in zip(a, b)])


def fmt_ci(mean: float, ci: float, digits: int = 1) -> str:
    if math.isnan(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"
