"""Notebook 05's report (`tinytrain_core/report/`): the verdict rule, the claims table against
an independent recomputation from per-task rows (synthetic, and the committed default run),
missing inputs, the paper's numbers beside ours, figures and the README block."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tinytrain_core import stats
from tinytrain_core.experiment import ablations
from tinytrain_core.report import claims, findings, inputs, summary, tables
from tinytrain_core.results import read_table
from tinytrain_core.experiment import taskrows
from tinytrain_core.data.domains import BUILTIN
from tinytrain_core.paths import project_root
from tinytrain_core.stats import stratified_mean_ci

ROOT = project_root()
DOMAINS = ("signs", "glyphs", "cjk")
CONFIG = "TinyTrain (meta) − FullTrain (imagenet): the paper's configuration"


def _write_rows(root, arms, model="mcunet-5fps", episodes=5, seed=0, lr_zero=()):
    """Per-task test rows of `arms` {(method, checkpoint): mean accuracy} in results/smoke/adapt,
    at LR 1e-3 except LR 0 for the (method, checkpoint, domain) triples of `lr_zero`."""
    rng = np.random.default_rng(seed)
    folder = root / "results" / "smoke" / "adapt" / model
    folder.mkdir(parents=True)
    for i, d in enumerate(DOMAINS):
        rows = [dict(split="test", domain=d, episode=e, ways=5, shots=1, queries=5, method=m, checkpoint=c,
                     lr=0.0 if (m, c, d) in lr_zero else 1e-3,
                     accuracy=float(np.clip(acc + 3 * i + rng.normal(0, 4), 0, 100)),
                     backward_macs=0 if m == "None" else 5e6, backward_kib=0.0 if m == "None" else 90.0,
                     select_s=0.1, train_s=1.0 + (m == "FullTrain"), n_layers=1, scheme="", key="k")
                for (m, c), acc in arms.items() for e in range(episodes)]
        pd.DataFrame(rows, columns=taskrows.FIELDS).to_csv(folder / f"{d}.csv", index=False)


ARMS = {("None", "imagenet"): 40, ("None", "meta"): 45, ("FullTrain", "imagenet"): 60, ("FullTrain", "meta"): 62,
        ("SparseUpdate", "imagenet"): 55, ("SparseUpdate", "meta"): 57, ("TinyTrain", "imagenet"): 61,
        ("TinyTrain", "meta"): 66}


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    """A project root in tmp_path with synthetic adaptation rows for mcunet-5fps (profile smoke);
    the paper's tables are the package's own (tinytrain_core.reference)."""
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    _write_rows(tmp_path, ARMS)
    return tmp_path


def _write_ablations(root):
    """notebook 03's paired and summary tables, synthetic: budgets 50/100/150 KiB on mcunet."""
    d = root / "results" / "smoke" / "ablations"
    d.mkdir(parents=True)
    comps = [f"{a} − {b} @ {k} KiB" for k in (50, 100, 150) for a, b in (("fisher", "l2"), ("l2", "random"))]
    comps += ["TinyTrain − SparseUpdate @ 100 KiB", "TinyTrain − static"]
    pd.DataFrame([dict(ablation="x", model="mcunet-5fps", checkpoint="meta", comparison=c, domain="average", n=15,
                       n_strata=3, mean=1.0 + i, sd=np.nan, se=np.nan, ci95=1.5, df=12.0) for i, c in enumerate(comps)]
                 ).to_csv(d / "paired.csv", index=False)
    pd.DataFrame([dict(ablation="channels", arm=f"{c} @ {k} KiB", model="mcunet-5fps", checkpoint="meta",
                       method="TinyTrain", criterion=c, memory_kib=k, activation="input", fisher_path="total",
                       domain="average", tasks=15, n_strata=3, accuracy=60.0 + k / 50, ci95=2.0, backward_kib=k,
                       backward_mmacs=5.0, task_s=1.0) for k in (50, 100, 150) for c in ("fisher", "l2", "random")]
                 ).to_csv(d / "summary.csv", index=False)


def test_a_ci_that_excludes_zero_holds_on_the_claimed_side_and_does_not_hold_on_the_other():
    assert claims.verdict(2.0, 1.0) == claims.verdict(2.0, 1.0, paper=9.0) == "holds"   # smaller, but the sign holds
    assert claims.verdict(-2.0, 1.0) == "does not hold"
    assert claims.verdict(-2.0, 1.0, paper=3.0) == "does not hold"       # the wrong sign beats "smaller"
    assert claims.verdict(math.nan, math.nan) == "not run"


def test_a_ci_that_excludes_the_papers_effect_says_smaller_than_the_papers():
    assert claims.verdict(-0.2, 0.8, paper=1.65) == "smaller than the paper's"    # fisher − random @ 100 KiB
    assert claims.verdict(0.5, 1.0, paper=2.0) == "smaller than the paper's"
    assert claims.excludes_paper(0.5, 1.0, 2.0) and not claims.excludes_paper(0.5, 1.0, 1.5)


def test_a_ci_that_contains_both_zero_and_the_papers_effect_says_cannot_tell():
    assert claims.verdict(0.5, 1.0, paper=1.2) == "cannot tell"
    assert claims.verdict(0.5, 1.0, paper=1.5) == "cannot tell"       # a CI touching the paper's effect keeps it
    assert claims.verdict(0.5, 1.0) == "cannot tell"                   # no paper number
    assert claims.verdict(1.0, 1.0, paper=5.0) != "holds"              # a CI touching 0 does not exclude it
    assert claims.verdict(-0.5, 1.0) == "cannot tell"                  # "≥" claims too: no "holds (not worse)"
    assert claims.verdict(0.5, 1.0, paper=-3.0) == "cannot tell"       # the paper's own effect is not the claim's
    assert claims.verdict(3.0, math.nan, paper=9.0) == "cannot tell"   # no CI, no verdict


def test_the_four_verdicts_are_the_only_words_besides_not_run():
    words = {claims.verdict(m, ci, p) for m, ci, p in [(2, 1, 1), (-2, 1, 1), (0, 1, 3), (0, 1, 0.5), (0, 1, math.nan)]}
    assert words == {"holds", "does not hold", "smaller than the paper's", "cannot tell"}
    assert set(claims.VERDICTS) == words | {"not run"}
    assert "smaller than the paper's" in claims.VERDICT_RULE and "cannot tell" in claims.VERDICT_RULE
    assert "inconclusive" not in claims.VERDICT_RULE + (claims.__doc__ or "")


def _welch_mde80(diffs: pd.DataFrame) -> float:
    """MDE80 of the stratified mean of `diffs` (domain, diff) by hand: Welch df, shifted t."""
    from scipy.stats import t
    g = diffs.groupby("domain")["diff"]
    v, n = (g.var(ddof=1) / g.count()).to_numpy(), g.count().to_numpy()
    se, df = math.sqrt(v.sum()) / len(v), v.sum() ** 2 / (v ** 2 / (n - 1)).sum()
    return (t.ppf(0.975, df) + t.ppf(0.8, df)) * se


def test_the_power_column_is_the_mde80_of_the_paired_differences_computed_by_hand(tmp_results):
    c = claims.claims(summary.load("smoke"))
    rows = taskrows.rows_in(taskrows.row_files(tmp_results / "results" / "smoke" / "adapt" / "mcunet-5fps"))
    x = rows[(rows.method == "TinyTrain") & (rows.checkpoint == "meta")]
    y = rows[(rows.method == "FullTrain") & (rows.checkpoint == "imagenet")]
    m = x.merge(y, on=["domain", "episode"])
    got = c[(c.model == "mcunet-5fps") & (c.evidence == CONFIG)].iloc[0]
    assert got["mde80"] == pytest.approx(_welch_mde80(m.assign(diff=m.accuracy_x - m.accuracy_y)), rel=1e-9)
    assert f"MDE80 {got['mde80']:.1f}" in summary.claims_markdown(c)
    assert c[c.source == "table2_costs.csv"].mde80.isna().all()                 # exact counts: no power
    assert claims.power(2.0, 10) == pytest.approx(stats.mde80(2.0, 9))          # no df: n − 1


def _untrained_results(root):
    """tmp_results with FullTrain (meta) at LR 0 in every domain, SparseUpdate (imagenet) in
    signs, None (which trains nothing) everywhere, and notebook 03's "random @ 100 KiB" arm at
    LR 0 in every domain."""
    zero = {("FullTrain", "meta", d) for d in DOMAINS} | {("SparseUpdate", "imagenet", "signs")}
    _write_rows(root, ARMS, lr_zero=zero | {("None", c, d) for c in ("imagenet", "meta") for d in DOMAINS})
    _write_ablations(root)
    s = root / "results" / "smoke" / "ablations" / "summary.csv"
    summ = read_table(s)
    per = summ.drop(columns="domain").merge(pd.DataFrame({"domain": DOMAINS}), how="cross")
    per["lr"] = np.where(per.arm == "random @ 100 KiB", 0.0, 1e-4)
    pd.concat([summ, per]).to_csv(s, index=False)


def test_a_claim_resting_on_an_arm_whose_lr_is_0_names_it_untrained(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    _untrained_results(tmp_path)
    inp = summary.load("smoke")
    c = claims.claims(inp).query("model == 'mcunet-5fps'").set_index("evidence")
    assert c.loc["TinyTrain − FullTrain (meta)", "untrained_arms"] == "FullTrain (meta) lr 0 in 3/3 domains"
    assert c.loc["TinyTrain (meta) − SparseUpdate (imagenet): the paper's configuration", "untrained_arms"] == (
        "SparseUpdate (imagenet) lr 0 in 1/3 domains")
    assert c.loc[CONFIG, "untrained_arms"] == ""                 # None's LR is always 0: it trains nothing
    assert c.loc["l2 − random @ 100 KiB (meta)", "untrained_arms"] == "random @ 100 KiB (meta) lr 0 in 3/3 domains"
    assert c.loc["fisher − l2 @ 100 KiB (meta)", "untrained_arms"] == ""
    md = summary.claims_markdown(claims.claims(inp))
    assert "| TinyTrain − FullTrain (meta) |" in md and "; untrained: FullTrain (meta) lr 0 in 3/3 domains) |" in md


def test_table1_counts_the_domains_where_an_arms_lr_was_0_and_its_lines_flag_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    _untrained_results(tmp_path)
    inp = summary.load("smoke")
    t1 = tables.table1(inp).query("model == 'mcunet-5fps'").set_index(["method", "domain"])
    assert t1.loc[("FullTrain", "average"), "lr_zero_domains_meta"] == 3 and t1.loc[("FullTrain", "average"),
                                                                                      "lr_zero_domains"] == 0
    assert t1.loc[("SparseUpdate", "average"), "lr_zero_domains"] == 1 and t1.loc[("SparseUpdate", "signs"),
                                                                                  "lr_zero_domains"] == 1
    assert t1.loc[("SparseUpdate", "glyphs"), "lr_zero_domains"] == 0 and t1.loc[("None", "average"), "lr_zero_domains"] == 0
    line = next(x for x in tables.table1_lines(tables.table1(inp)) if x.startswith("mcunet-5fps"))
    assert "SparseUpdate (imagenet) " in line and "(untrained: lr 0 in 1/3 domains)" in line.split("SparseUpdate")[1]
    assert line.count("untrained") == 1


def test_the_ablation_arms_of_a_claim_are_those_notebook_03_pairs():
    assert claims.ablation_arms("fisher − random @ 100 KiB") == ("fisher @ 100 KiB", "random @ 100 KiB")
    assert claims.ablation_arms("TinyTrain − SparseUpdate @ 60 KiB") == ("fisher @ 60 KiB", "SparseUpdate @ 60 KiB")
    assert claims.ablation_arms("TinyTrain − static") == ("TinyTrain (02)", "static")
    arm = ablations.Arm
    arms = [arm("channels", "fisher @ 60 KiB", "TinyTrain", {"memory_kib": 60.0, "channels": "fisher"})]
    for _, label, a, b in ablations.comparisons(arms, 100.0):
        if label in ("fisher − l2 @ 60 KiB", "TinyTrain − SparseUpdate @ 60 KiB", "TinyTrain − static"):
            assert claims.ablation_arms(label) == (a, b)


def test_claims_table_matches_a_recomputation_from_per_task_rows(tmp_results):
    c = claims.claims(summary.load("smoke"))
    rows = taskrows.rows_in(taskrows.row_files(tmp_results / "results" / "smoke" / "adapt" / "mcunet-5fps"))
    for label, a, b in ((CONFIG, "meta", "imagenet"), ("TinyTrain − FullTrain (meta)", "meta", "meta"),
                        ("TinyTrain − FullTrain (imagenet)", "imagenet", "imagenet")):
        x = rows[(rows.method == "TinyTrain") & (rows.checkpoint == a)]
        y = rows[(rows.method == "FullTrain") & (rows.checkpoint == b)]
        m = x.merge(y, on=["domain", "episode"])
        want = stratified_mean_ci(m.assign(diff=m.accuracy_x - m.accuracy_y, g="x"), value="diff", group="g")
        want = want[want.domain == "average"].iloc[0]
        got = c[(c.model == "mcunet-5fps") & (c.evidence == label)].iloc[0]
        assert got["mean"] == pytest.approx(want["mean"], abs=1e-9)
        assert got["ci95"] == pytest.approx(want["ci95"], abs=1e-9)
        assert got["n"] == len(m) == 15
        assert got["verdict"] == claims.verdict(want["mean"], want["ci95"], got["paper"])


def test_missing_models_arms_and_ablations_say_not_run_without_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    _write_rows(tmp_path, {("TinyTrain", "meta"): 66, ("FullTrain", "imagenet"): 60})
    inp = summary.load("smoke")
    text = "\n".join(summary.missing(inp))
    assert "mbv2-w0.35: adaptation not run" in text and "notebook 03" in text and "notebook 04" in text
    tabs = summary.tables(inp)
    assert tabs["table2"] is None and tabs["ablation_channels"] is None and tabs["ablation_meta_training"] is None
    c = tabs["claims"].set_index(["model", "evidence"])
    assert c.loc[("mcunet-5fps", CONFIG), "verdict"] != "not run"
    assert c.loc[("mcunet-5fps", "TinyTrain − FullTrain (meta)"), "verdict"] == "not run"
    assert (tabs["claims"][tabs["claims"].model == "mbv2-w0.35"].verdict == "not run").all()
    assert set(tabs["claims"].verdict) <= set(claims.VERDICTS)
    assert tabs["table1"].paper_accuracy.notna().any()        # the paper's numbers ship with the package
    t = tabs["time"].set_index("method")
    assert t.loc["FullTrain", "vs_fulltrain_time"] == 1
    assert t.loc["TinyTrain", "vs_fulltrain_time"] == pytest.approx(t.loc["TinyTrain", "task_s"] / t.loc["FullTrain", "task_s"])
    assert not (tmp_path / "results" / "smoke" / "adapt" / "mbv2-w0.35").exists()   # reading creates nothing


def test_paper_numbers_stand_beside_ours_and_channel_budgets_match_by_rank(tmp_results):
    _write_ablations(tmp_results)
    inp = summary.load("smoke")
    t1 = tables.table1(inp).query("model == 'mcunet-5fps'").set_index(["method", "domain"])
    assert t1.loc[("FullTrain", "cjk"), "paper_each"] == "75.3 / 66.4"        # aircraft / cub
    assert t1.loc[("FullTrain", "cjk"), "paper_accuracy"] == pytest.approx((75.3 + 66.4) / 2)
    assert t1.loc[("TinyTrain", "average"), "paper_accuracy"] == 69.3
    ch = tables.ablation_channels(inp).set_index(["criterion", "memory_kib"])
    assert ch.loc[("fisher", 50), "paper_budget_kB"] == 303 and ch.loc[("l2", 150), "paper_budget_kB"] == 355
    assert ch.loc[("l2", 150), "paper_accuracy"] == 69.7
    c = claims.claims(inp).query("model == 'mcunet-5fps'").set_index("evidence")
    assert c.loc["fisher − l2 @ 50 KiB (meta)", "paper"] == pytest.approx(68.1 - 66.95)
    assert c.loc["l2 − random @ 150 KiB (meta)", "paper"] == pytest.approx(69.7 - 69.0)
    assert c.loc[CONFIG, "paper"] == pytest.approx(69.3 - 66.9)
    assert c.loc["TinyTrain − static (meta)", "verdict"] == claims.verdict(8.0, 1.5) == "holds"


def test_every_target_domain_maps_to_the_papers_table1_columns():
    targets = [d for d, (role, _) in BUILTIN.items() if role == "target"]
    assert set(targets) <= set(inputs.PAPER_DOMAINS)
    assert [d for d in targets if not inputs.PAPER_DOMAINS[d]] == ["fashion"]   # real photos: no counterpart
    t1 = inputs.paper("table1")
    assert {n for names in inputs.PAPER_DOMAINS.values() for n in names} <= set(t1.domain)


def test_committed_default_claim_recomputes_from_the_committed_per_task_rows():
    path = ROOT / "results" / "default" / "report" / "claims.csv"
    folder = ROOT / "results" / "default" / "adapt" / "mcunet-5fps"
    if not path.is_file() or not folder.is_dir():
        pytest.skip("no committed results/default/report/claims.csv (run notebook 05 with profile default)")
    got = read_table(path)
    got = got[(got.model == "mcunet-5fps") & (got.evidence == CONFIG)].iloc[0]
    rows = taskrows.rows_in(taskrows.row_files(folder))
    m = rows[(rows.method == "TinyTrain") & (rows.checkpoint == "meta")].merge(
        rows[(rows.method == "FullTrain") & (rows.checkpoint == "imagenet")], on=["domain", "episode"])
    want = stratified_mean_ci(m.assign(diff=m.accuracy_x - m.accuracy_y, g="x"), value="diff", group="g")
    want = want[want.domain == "average"].iloc[0]
    assert abs(got["mean"] - want["mean"]) < 1e-6 and abs(got["ci95"] - want["ci95"]) < 1e-6
    assert got["n"] == len(m) and got["verdict"] == claims.verdict(want["mean"], want["ci95"], got["paper"])


def test_the_committed_default_claims_say_smaller_than_the_papers_where_the_ci_excludes_it():
    path = ROOT / "results" / "default" / "report" / "claims.csv"
    if not path.is_file():
        pytest.skip("no committed results/default/report/claims.csv (run notebook 05 with profile default)")
    c = read_table(path)
    acc = c[c.source != "table2_costs.csv"]
    assert list(acc.verdict) == [claims.verdict(m, ci, p) for m, ci, p in zip(acc["mean"], acc.ci95, acc.paper)]
    ran = acc[acc.verdict != "not run"]
    assert np.allclose(ran.mde80, [claims.power(ci, n, df) for ci, n, df in zip(ran.ci95, ran.n, ran.df)])
    below = (ran["mean"] - ran.ci95 <= 0) & (ran["mean"] + ran.ci95 >= 0) & (ran["mean"] + ran.ci95 < ran.paper)
    assert (ran.verdict == "smaller than the paper's").sum() == below.sum() > 0


def test_readme_block_contains_the_claims_and_no_stale_marker(tmp_results):
    readme = tmp_results / "README.md"
    readme.write_text(f"intro\n\n{findings.START}\nstale sentence\n{findings.END}\n\nafter\n")
    assert summary.update_readme("smoke") is True
    text = readme.read_text()
    assert text.count(findings.START) == 1 and text.count(findings.END) == 1 and "stale sentence" not in text
    assert text.startswith("intro") and text.rstrip().endswith("after")
    block = summary.readme_block("smoke")
    assert block in text and block == summary.readme_block("smoke")
    assert "| (a) | accuracy, the paper's configuration | mcunet-5fps |" in block
    assert "(e) dynamic > static" in block and "Not run on mbv2-w0.35" in block   # listed, not dropped
    assert "mcunet-5fps: None (imagenet)" in block                               # Table 1 averages
    assert summary.update_readme("smoke") is False


def test_written_tables_have_sidecars_and_figures_stay_small(tmp_results):
    inp = summary.load("smoke")
    tabs = summary.tables(inp)
    stale = tmp_results / "results" / "smoke" / "report" / "ablation_channels.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    paths = summary.write(inp, tabs)
    assert {p.stem for p in paths} == {k for k, t in tabs.items() if t is not None}
    assert all(p.with_suffix(".json").is_file() for p in paths) and not stale.exists()
    back = read_table(tmp_results / "results" / "smoke" / "report" / "claims.csv")
    assert np.allclose(back["mean"], tabs["claims"]["mean"], equal_nan=True, rtol=0, atol=1e-12)
    figs = summary.figures(inp, tabs["table1"])
    assert len(figs) == 2 and all(0 < f.stat().st_size < 250_000 for f in figs)


def test_claim_d_folds_the_meta_training_seed_sd_into_its_ci(tmp_results):
    """With notebook 03's meta_seeds.csv present, (d) TinyTrain: meta > imagenet has the CI
    t95(df) * sqrt(se^2 + sd_seed^2) of 02's paired difference, its MDE80 follows that CI, and the
    text names the SD; a method without a seed SD keeps 02's CI."""
    before = claims.claims(summary.load("smoke"))
    d = tmp_results / "results" / "smoke" / "ablations"
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([dict(model="mcunet-5fps", method="TinyTrain", seed="all", diff=1.0, seed_sd=2.5, n_seeds=3)]
                 ).to_csv(d / "meta_seeds.csv", index=False)
    after = claims.claims(summary.load("smoke"))
    pick = lambda c, label: c[(c.model == "mcunet-5fps") & (c.evidence == label)].iloc[0]  # noqa: E731
    b, a = pick(before, "TinyTrain: meta − imagenet"), pick(after, "TinyTrain: meta − imagenet")
    df = b.df if not pd.isna(b.df) else b.n - 1
    assert a.ci95 == pytest.approx(stats.t95(df) * math.sqrt((b.ci95 / stats.t95(df)) ** 2 + 2.5 ** 2))
    assert a["mean"] == pytest.approx(b["mean"]) and a.mde80 > b.mde80
    assert "seed SD 2.50 (3 seeds" in a.numbers
    assert pick(after, "None: meta − imagenet").ci95 == pytest.approx(pick(before, "None: meta − imagenet").ci95)
