"""The sentences of each notebook's "What the default run shows" are computed from the committed
tables: checked here against numbers recomputed independently from the same tables."""
from __future__ import annotations

import pandas as pd
import pytest

from tinytrain_core.report import findings
from tinytrain_core.experiment import taskrows
from tinytrain_core.stats import paired_diff_ci95


def _arms(acc: dict, domains=("a", "b")) -> pd.DataFrame:
    """Rows of arms {(method, checkpoint): accuracies per episode}, the same in every domain but
    shifted by the domain's index (so domain means differ)."""
    return pd.DataFrame([dict(domain=d, episode=e, method=m, checkpoint=c, accuracy=a + 3 * i, lr=1e-3,
                              backward_macs=0, backward_kib=0.0, select_s=0.0, train_s=1.0, scheme="")
                         for i, d in enumerate(domains) for (m, c), v in acc.items() for e, a in enumerate(v)])


def test_adaptation_headline_equals_the_mean_of_per_domain_paired_differences():
    rows = taskrows.load_rows("default", "mcunet-5fps")
    if not ((rows.method == "FullTrain") & (rows.checkpoint == "meta")).any():
        rows = _arms({("TinyTrain", "meta"): [55, 61, 79, 82], ("FullTrain", "meta"): [50, 60, 70, 80],
                      ("FullTrain", "imagenet"): [40, 62, 71, 70]})
    per = []
    for _domain, g in rows.groupby("domain"):
        a = g[(g.method == "TinyTrain") & (g.checkpoint == "meta")].set_index("episode").accuracy
        b = g[(g.method == "FullTrain") & (g.checkpoint == "meta")].set_index("episode").accuracy
        per.append(paired_diff_ci95(a.loc[b.index], b)[0])
    expected = sum(per) / len(per)
    pairs, lines = findings.adaptation(rows)
    got = pairs[(pairs.domain == "average") & (pairs.comparison == "TinyTrain − FullTrain (meta)")]["mean"].iloc[0]
    assert got == pytest.approx(expected)
    assert f"TinyTrain − FullTrain (meta): {expected:+.1f}" in "\n".join(lines)


def test_a_difference_counts_only_when_its_ci_excludes_zero():
    rows = _arms({("FullTrain", "meta"): [50.0, 60.0, 70.0], ("TinyTrain", "meta"): [51.0, 59.0, 72.0],
                  ("None", "meta"): [20.0, 30.0, 41.0]})
    _, lines = findings.adaptation(rows)
    assert any("TinyTrain − FullTrain (meta)" in x and "no clear difference" in x for x in lines)
    assert any(x.startswith("Each method − None (meta)") and "FullTrain +" in x and "(better)" in x for x in lines)


def test_frozen_findings_name_the_hardest_and_easiest_target():
    t = pd.DataFrame({"domain": ["base", "x", "y"], "role": ["base", "target", "target"],
                      "frozen_5w5s_acc": [80.0, 30.0, 90.0], "ci95": [2.0, 3.0, 2.0]})
    text = "\n".join(findings.frozen(t))
    assert "2 of 2 targets" in text and "Hardest target for frozen ImageNet features: x" in text


def test_an_arm_whose_lr_is_0_is_flagged_untrained_wherever_the_sentences_name_it():
    rows = _arms({("FullTrain", "meta"): [50.0, 60.0, 70.0], ("TinyTrain", "meta"): [51.0, 59.0, 72.0],
                  ("None", "meta"): [50.0, 60.0, 70.0]})
    rows.loc[rows.method.isin(["FullTrain", "None"]), "lr"] = 0.0          # None trains nothing: never flagged
    _, lines = findings.adaptation(rows)
    assert "FullTrain (meta) 61.5 ± " in lines[0] and "[untrained: lr 0 in 2/2 domains]" in lines[0]
    assert lines[0].count("untrained") == 1
    head = next(x for x in lines if x.startswith("TinyTrain − FullTrain (meta):"))
    assert head.endswith("(no clear difference; untrained: FullTrain (meta)).")
    each = next(x for x in lines if x.startswith("Each method − None (meta)"))
    assert "FullTrain +0.0 ± 0.0 (no clear difference; untrained: FullTrain (meta))" in each
    assert "TinyTrain +" in each and "untrained: TinyTrain" not in each


def test_the_search_sentence_says_shared_convs_in_words_that_fit_a_jaccard_of_0():
    row = dict(model="mcunet-5fps", label="49kb", budget_kib=49.75, n_bias_found=6, n_bias_released=20,
               conv_jaccard=0.0, item_jaccard=0.0, n_bias_diff=14, memory_found_kib=12.9, memory_released_kib=49.75,
               gain_found=1.0, gain_released=-10.6)
    none, same = findings.sparse_search(pd.DataFrame([row, {**row, "conv_jaccard": 1.0, "item_jaccard": 1.0}]))
    assert "shares no weight-trained conv" in none and "other convs" not in none and "12.9 KiB" in none
    assert "the same convs" in same
