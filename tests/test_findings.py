"""The sentences of each notebook's "What the default run shows" are computed from the committed
tables: checked here against numbers recomputed independently from the same tables."""
from __future__ import annotations

import pandas as pd
import pytest

from tinytrain_core import findings, taskrows
from tinytrain_core.stats import paired_diff_ci95


def test_adaptation_headline_equals_the_mean_of_per_domain_paired_differences():
    rows = taskrows.load_rows("default", "mcunet-5fps")
    if not len(rows):
        pytest.skip("no committed default adaptation rows")
    per = []
    for _domain, g in rows.groupby("domain"):
        a = g[g.method == "TinyTrain"].set_index("episode").accuracy
        b = g[g.method == "FullTrain"].set_index("episode").accuracy
        per.append(paired_diff_ci95(a.loc[b.index], b)[0])
    expected = sum(per) / len(per)
    diffs, lines = findings.adaptation(rows)
    got = diffs[(diffs.domain == "average") & (diffs.method == "TinyTrain")]["mean"].iloc[0]
    assert got == pytest.approx(expected)
    assert f"TinyTrain − FullTrain: {expected:+.1f}" in "\n".join(lines)


def test_a_difference_counts_only_when_its_ci_excludes_zero():
    rows = pd.DataFrame({"domain": ["a"] * 6, "episode": [0, 1, 2] * 2,
                         "method": ["FullTrain"] * 3 + ["TinyTrain"] * 3,
                         "accuracy": [50.0, 60.0, 70.0, 51.0, 59.0, 72.0]})
    _, lines = findings.adaptation(rows)
    assert any("TinyTrain − FullTrain" in x and "no clear difference" in x for x in lines)


def test_frozen_findings_name_the_hardest_and_easiest_target():
    t = pd.DataFrame({"domain": ["base", "x", "y"], "role": ["base", "target", "target"],
                      "frozen_5w5s_acc": [80.0, 30.0, 90.0], "ci95": [2.0, 3.0, 2.0]})
    text = "\n".join(findings.frozen(t))
    assert "2 of 2 targets" in text and "Hardest target for frozen ImageNet features: x" in text
