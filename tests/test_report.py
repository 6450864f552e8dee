"""Notebook 05's report (`tinytrain_core/report/`): the verdict rule, the claims table against
an independent recomputation from per-task rows (synthetic, and the committed default run),
missing inputs, the paper's numbers beside ours, figures and the README block."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tinytrain_core.report import claims, findings, inputs, summary, tables
from tinytrain_core.results import read_table
from tinytrain_core.experiment import taskrows
from tinytrain_core.data.domains import BUILTIN
from tinytrain_core.paths import project_root
from tinytrain_core.stats import stratified_mean_ci

ROOT = project_root()
DOMAINS = ("signs", "glyphs", "cjk")
CONFIG = "TinyTrain (meta) − FullTrain (imagenet): the paper's configuration"


def _write_rows(root, arms, model="mcunet-5fps", episodes=5, seed=0):
    """Per-task test rows of `arms` {(method, checkpoint): mean accuracy} in results/smoke/adapt."""
    rng = np.random.default_rng(seed)
    folder = root / "results" / "smoke" / "adapt" / model
    folder.mkdir(parents=True)
    for i, d in enumerate(DOMAINS):
        rows = [dict(split="test", domain=d, episode=e, ways=5, shots=1, queries=5, method=m, checkpoint=c, lr=1e-3,
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


def test_verdict_rule_holds_does_not_hold_or_is_inconclusive():
    assert claims.verdict(2.0, 1.0) == "holds"
    assert claims.verdict(-2.0, 1.0) == "does not hold"
    assert claims.verdict(0.5, 1.0) == "inconclusive"
    assert claims.verdict(1.0, 1.0) == "inconclusive"        # a CI touching 0 does not exclude it
    assert claims.verdict(-0.5, 1.0) == "inconclusive"       # "≥" claims too: no "holds (not worse)"
    assert claims.verdict(3.0, math.nan) == "inconclusive"   # no CI, no verdict
    assert claims.verdict(math.nan, math.nan) == "not run"


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
        assert got["verdict"] == claims.verdict(want["mean"], want["ci95"])


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
    assert set(tabs["claims"].verdict) <= {"holds", "does not hold", "inconclusive", "not run"}
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
    assert got["n"] == len(m) and got["verdict"] == claims.verdict(want["mean"], want["ci95"])


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
