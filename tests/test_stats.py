"""stats: Student t intervals, the stratified average with Welch-Satterthwaite df, grouping by
several columns, leave-one-stratum-out, checked against hand computations."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tinytrain_core import stats
from tinytrain_core.stats import stratified_mean_ci, t95

T3, T9 = 3.1824463, 2.2621572  # t_{0.975, 3}, t_{0.975, 9} from a table


def _rows(seed=0, methods=("FullTrain", "TinyTrain"), domains=("icons", "signs", "cjk"), n=(4, 6, 5)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame([dict(domain=d, episode=e, method=m, accuracy=float(rng.normal(60 + 5 * i, 3 + 4 * j)))
                         for i, m in enumerate(methods) for j, (d, k) in enumerate(zip(domains, n))
                         for e in range(k)])


def test_t95_is_the_student_quantile_and_nan_without_df():
    assert stats.t95(3) == pytest.approx(T3) and stats.t95(9) == pytest.approx(T9)
    assert stats.t95(1e9) == pytest.approx(1.959964)
    assert math.isnan(stats.t95(0)) and math.isnan(stats.t95(math.nan))


def test_ci_of_four_values_is_t3_times_se_by_hand():
    xs = [1.0, 2.0, 4.0, 9.0]
    sd = math.sqrt(((1 - 4) ** 2 + (2 - 4) ** 2 + 0 + (9 - 4) ** 2) / 3)
    m, ci = stats.mean_ci95(xs)
    assert m == 4.0 and ci == pytest.approx(T3 * sd / 2)
    s = stats.stratified_mean_ci(pd.DataFrame({"domain": "a", "method": "m", "accuracy": xs}))
    a = s[s.domain == "a"].iloc[0]
    assert a["df"] == 3 and a["se"] == pytest.approx(sd / 2) and a["ci95"] == pytest.approx(T3 * sd / 2)


def test_stratified_df_is_welch_satterthwaite_by_hand():
    rows = _rows()
    s = stats.stratified_mean_ci(rows)
    for m in ("FullTrain", "TinyTrain"):
        g = rows[rows.method == m].groupby("domain").accuracy
        v, n = g.var() / g.count(), g.count()
        df = v.sum() ** 2 / (v ** 2 / (n - 1)).sum()
        avg = s[(s.method == m) & (s.domain == "average")].iloc[0]
        assert avg["mean"] == pytest.approx(g.mean().mean())
        assert avg["df"] == pytest.approx(df)
        assert avg["ci95"] == pytest.approx(stats.t95(df) * math.sqrt(v.sum()) / 3)
        assert df < (n - 1).sum()  # unequal variances cost degrees of freedom


def test_stratified_df_with_equal_sd_and_n_is_strata_times_n_minus_one():
    base = [0.0, 1.0, 2.0, 3.0]
    rows = pd.DataFrame([dict(domain=d, method="m", accuracy=x + 10 * i)
                         for i, d in enumerate(["a", "b", "c"]) for x in base])
    avg = stats.stratified_mean_ci(rows).set_index("domain").loc["average"]
    sd = float(np.std(base, ddof=1))
    assert avg["df"] == pytest.approx(3 * (4 - 1))
    assert avg["ci95"] == pytest.approx(T9 * math.sqrt(3 * sd ** 2 / 4) / 3)


def test_zero_variances_give_a_zero_interval_and_pooled_df():
    rows = pd.DataFrame({"domain": ["a"] * 3 + ["b"] * 4, "method": "m", "accuracy": [5.0] * 3 + [7.0] * 4})
    avg = stats.stratified_mean_ci(rows).set_index("domain").loc["average"]
    assert avg["ci95"] == 0 and avg["df"] == 2 + 3


def test_grouping_by_two_columns_equals_grouping_by_one_combined_column():
    rows = pd.concat([_rows(0).assign(checkpoint="meta"), _rows(1).assign(checkpoint="imagenet")], ignore_index=True)
    two = stats.stratified_mean_ci(rows, group=["method", "checkpoint"])
    one = stats.stratified_mean_ci(rows.assign(mc=rows.method + "/" + rows.checkpoint), group="mc")
    assert list(two.columns) == ["method", "checkpoint", "domain", "n", "n_strata", "mean", "sd", "se", "ci95", "df"]
    two = two.assign(mc=two.method + "/" + two.checkpoint).set_index(["mc", "domain"]).sort_index()
    one = one.set_index(["mc", "domain"]).sort_index()
    assert len(two) == len(one) == 4 * 4
    cols = ["n", "n_strata", "mean", "sd", "se", "ci95", "df"]
    pd.testing.assert_frame_equal(two[cols], one[cols])

    d2 = stats.paired_differences(rows, reference=("FullTrain", "meta"), group=["method", "checkpoint"])
    d1 = stats.paired_differences(rows.assign(mc=rows.method + "/" + rows.checkpoint), "FullTrain/meta", group="mc")
    assert list(d2.columns) == ["domain", "episode", "method", "checkpoint", "accuracy", "reference", "diff"]
    assert ("FullTrain", "meta") not in set(zip(d2.method, d2.checkpoint))
    assert len(d2) == 3 * 15  # the 3 other (method, checkpoint) pairs x 15 tasks
    np.testing.assert_allclose(d2["diff"], d1["diff"])
    with pytest.raises(ValueError, match="duplicate"):
        stats.paired_differences(rows, reference="FullTrain")  # two checkpoints per (domain, episode, method)
    with pytest.raises(ValueError, match="not among"):
        stats.paired_differences(rows, reference=("FullTrain", "scratch"), group=["method", "checkpoint"])


def test_leave_one_out_of_three_strata_equals_the_average_of_each_pair():
    rows = _rows()
    loo = stats.leave_one_out(rows, value="accuracy")
    assert list(loo.columns) == ["method", "left_out", "n_strata", "mean", "ci95", "df"]
    assert len(loo) == 2 * 3 and (loo.n_strata == 2).all()
    for d in ("icons", "signs", "cjk"):
        pair = stats.stratified_mean_ci(rows[rows.domain != d])
        pair = pair[pair.domain == "average"].set_index("method")
        got = loo[loo.left_out == d].set_index("method")
        for c in ("mean", "ci95", "df"):
            np.testing.assert_allclose(got.loc[pair.index, c], pair[c], rtol=1e-12)


def test_stats_imports_neither_matplotlib_nor_plots():
    code = "import sys, tinytrain_core.stats; assert not {'matplotlib', 'tinytrain_core.report.plots'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_power_plans_ci_formula_is_the_stratified_ci_of_equal_domains():
    from tinytrain_core.stats import stratified_ci_for, tasks_for_ci
    rng = np.random.default_rng(0)
    # 3 domains x 8 tasks whose sds are exactly 2, 4 and 4 (rms = sqrt(12))
    vals = []
    for d, sd in (("a", 2.0), ("b", 4.0), ("c", 4.0)):
        z = rng.standard_normal(8)
        z = (z - z.mean()) / z.std(ddof=1)
        vals += [dict(method="m", domain=d, accuracy=sd * x) for x in z]
    got = stratified_mean_ci(pd.DataFrame(vals), group="method")
    avg = got[got.domain == "average"].iloc[0]
    # equal n and the Welch df: the formula's N - D is exact only for equal sds; here it is the plan's
    assert avg["ci95"] == pytest.approx(t95(avg["df"]) * math.sqrt(12.0 / 24))
    assert stratified_ci_for(math.sqrt(12.0), 24, 3) == pytest.approx(t95(21) * math.sqrt(12.0 / 24))
    n = tasks_for_ci(5.5, 1.0, 9)
    assert n % 9 == 0 and stratified_ci_for(5.5, n, 9) <= 1.0 < stratified_ci_for(5.5, n - 9, 9)


def test_the_power_plan_predicts_the_ci_the_rows_achieved_and_plans_tasks_per_domain():
    from tinytrain_core.experiment.analysis import power_plan
    rng = np.random.default_rng(1)
    rows = []
    for d in ("a", "b", "c"):
        for ep in range(10):
            base = rng.normal(60, 10)
            rows += [dict(domain=d, episode=ep, method="TinyTrain", checkpoint="meta", accuracy=base + rng.normal(1, 3)),
                     dict(domain=d, episode=ep, method="FullTrain", checkpoint="meta", accuracy=base)]
    plan = power_plan(pd.DataFrame(rows), {"TinyTrain − FullTrain (meta)": 0.5}).iloc[0]
    assert plan.tasks == 30 and plan.domains == 3
    assert plan.ci95_predicted == pytest.approx(plan.ci95, rel=0.1)      # Welch df vs N - D only
    assert plan.tasks_needed == 3 * plan.per_domain_needed and plan.tasks_needed > 30


T80_9 = 0.883404  # t_{0.8, 9} from a table


def test_mde80_is_t95_plus_t80_times_the_standard_error_by_hand():
    se = 1.7
    assert stats.t80(9) == pytest.approx(T80_9, abs=1e-6)
    assert stats.mde80(T9 * se, 9) == pytest.approx((T9 + T80_9) * se, rel=1e-6)
    assert stats.mde80(np.array([T9 * se]), np.array([9.0]))[0] == pytest.approx((T9 + T80_9) * se, rel=1e-6)
    assert math.isnan(stats.mde80(math.nan, 9)) and math.isnan(stats.mde80(1.0, math.nan))


@pytest.mark.parametrize("df", [5, 9, 26, 100])
def test_a_true_effect_of_mde80_makes_the_ci_exclude_zero_four_times_in_five(df):
    """Exact power of 'the CI lies above 0' (mean / se > t95) when the true difference is mde80:
    the noncentral t, independent of the shifted-t formula behind mde80."""
    from scipy.stats import nct
    se = 2.0
    power = nct.sf(stats.t95(df), df, stats.mde80(stats.t95(df) * se, df) / se)
    assert power == pytest.approx(0.80, abs=0.01)
