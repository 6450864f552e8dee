"""Meta-training seed variance (experiment/meta_seeds.py, stats.ci_with_extra_sd, claim (d)):
the per-seed differences are the paired ones over the same tasks, their SD is the sample SD, and
folding it into a CI widens it exactly as the formula says."""
import math

import pandas as pd
import pytest

from tinytrain_core.experiment import meta_seeds
from tinytrain_core.nets import checkpoints
from tinytrain_core.stats import ci_with_extra_sd, paired_diff_ci95, t95


def _rows(method, checkpoint, accs, **extra):
    return pd.DataFrame([dict(domain="d", episode=e, method=method, checkpoint=checkpoint, accuracy=a, **extra)
                         for e, a in enumerate(accs)])


def test_each_seeds_difference_is_paired_over_the_same_tasks_and_the_seed_sd_is_the_sample_sd():
    imagenet = [50, 60, 70, 80]
    meta = {0: [52, 63, 71, 84], 1: [55, 61, 75, 81], 2: [50, 60, 73, 83]}
    rows02 = pd.concat([_rows(m, "imagenet", imagenet) for m in ("None", "TinyTrain")]
                       + [_rows("TinyTrain", "meta", meta[0]), _rows("None", "meta", imagenet),
                          _rows("TinyTrain", "imagenet", [0] * 2).assign(episode=[9, 10])],   # beyond `episodes`
                       ignore_index=True)
    seed_rows = pd.concat([_rows("TinyTrain", f"meta-seed{s}", meta[s], seed=s) for s in (1, 2)], ignore_index=True)
    t = meta_seeds.table(seed_rows, rows02, "mcunet-5fps", episodes=4)
    tt = t[t.method == "TinyTrain"].set_index("seed")
    for s in (0, 1, 2):
        d, ci = paired_diff_ci95(meta[s], imagenet)
        assert tt.loc[str(s), "diff"] == pytest.approx(d) and tt.loc[str(s), "diff_ci95"] == pytest.approx(ci)
    diffs = pd.Series([tt.loc[str(s), "diff"] for s in (0, 1, 2)])
    assert tt.loc["all", "seed_sd"] == pytest.approx(diffs.std(ddof=1))
    assert meta_seeds.seed_sd(t, "mcunet-5fps", "TinyTrain") == (pytest.approx(diffs.std(ddof=1)), 3)
    assert "seed_sd" not in t[t.method == "None"].dropna(axis=1).columns   # one seed only: no SD
    assert math.isnan(meta_seeds.seed_sd(t, "mcunet-5fps", "None")[0])


def test_folding_a_seed_sd_into_a_ci_adds_the_variances():
    ci, df = 2.0, 10
    se = ci / t95(df)
    assert ci_with_extra_sd(ci, df, 0.0) == pytest.approx(ci)
    assert ci_with_extra_sd(ci, df, 1.5) == pytest.approx(t95(df) * math.sqrt(se ** 2 + 1.5 ** 2))


def test_seed_checkpoints_have_their_own_names_and_a_bad_name_is_refused():
    assert checkpoints.meta_seed_name(2) == "meta-seed2" and checkpoints.is_checkpoint("meta-seed2")
    assert not checkpoints.is_checkpoint("meta-seedx") and not checkpoints.is_checkpoint("../meta")
    assert sorted(["meta-seed1", "meta", "imagenet"], key=checkpoints.order) == ["imagenet", "meta", "meta-seed1"]
    with pytest.raises(ValueError, match="unknown checkpoint"):
        checkpoints.load_backbone("mcunet-5fps", "meta-seed", "smoke")
