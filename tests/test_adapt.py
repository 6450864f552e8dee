"""adapt: the summary's statistics, resume without redoing tasks, and rows of a changed config
set aside and recomputed (more on resume in test_resume.py).
Runs on the fixture with the per-task work replaced by a recorder (the real task is tested in
test_finetune.py and by the notebook's smoke run)."""
import pandas as pd
import pytest

from tinytrain_core.experiment import adapt, taskrows, tasks
from tinytrain_core.experiment import analysis
from tinytrain_core.stats import mean_ci95, paired_diff_ci95


def _rows():
    acc = {"FullTrain": [50, 60, 70, 80], "TinyTrain": [55, 61, 79, 82], "None": [40, 41, 42, 43]}
    return pd.DataFrame([dict(domain="d", episode=e, method=m, checkpoint="meta", lr=1e-3, accuracy=a, backward_macs=1e6,
                              backward_kib=10.0, select_s=1.0 if m == "TinyTrain" else 0.0, train_s=9.0,
                              scheme="40:72/576;41:576/576")
                         for m, v in acc.items() for e, a in enumerate(v)])


def test_summary_statistics():
    rows = _rows()
    t = analysis.summarize(rows).set_index(["domain", "method"])
    m, ci = mean_ci95([55, 61, 79, 82])
    d, dci = paired_diff_ci95([55, 61, 79, 82], [50, 60, 70, 80])
    assert t.loc[("d", "TinyTrain"), "accuracy"] == pytest.approx(m)
    assert t.loc[("d", "TinyTrain"), "ci95"] == pytest.approx(ci)
    assert t.loc[("d", "TinyTrain"), "task_s"] == pytest.approx(10.0)
    assert t.loc[("average", "None"), "accuracy"] == pytest.approx(41.5)
    p = analysis.paired(rows).set_index(["comparison", "domain"])
    assert p.loc[("TinyTrain − FullTrain (meta)", "d"), "mean"] == pytest.approx(d)
    assert p.loc[("TinyTrain − FullTrain (meta)", "d"), "ci95"] == pytest.approx(dci)
    lc = analysis.layer_choices(rows)
    assert lc.set_index("conv").loc[40, "fraction"] == pytest.approx(72 / 576)
    assert lc.set_index("conv").loc[41, "picked"] == 1.0


@pytest.fixture
def sandbox(adapt_on_fixture, monkeypatch):
    calls = []

    def fake_task(method, net, state, tensors, cfg, lr, task_seed, chosen=None):
        calls.append((task_seed, method.name))
        return dict(accuracy=50.0, backward_macs=0, backward_kib=0.0, select_s=0.0, train_s=0.0, n_layers=0,
                    scheme="")
    monkeypatch.setattr(tasks, "adapt_task", fake_task)
    monkeypatch.setattr(tasks, "task_scheme", lambda *a: (None, {}))
    return adapt_on_fixture, calls


def test_resume_skips_finished_tasks(sandbox):
    tmp, calls = sandbox
    cfg = adapt.AdaptConfig(profile="smoke", domains=["fixture_a"], methods=["None", "LastLayer"], episodes=1,
                            lrs=(1e-3,), checkpoints=("imagenet",))
    adapt.run(cfg, progress=False)
    assert len(calls) == 2
    cfg.episodes = 2
    rows = adapt.run(cfg, progress=False)
    assert len(calls) == 4 and {s for s, _ in calls[2:]} == {1}   # only episode 1 ran
    assert len(rows) == 4
    assert set(rows.method) == {"None", "LastLayer"}          # "None" must not be read as missing
    assert (tmp / "results" / "smoke" / "adapt" / "mcunet-5fps" / "fixture_a.json").is_file()
    adapt.run(cfg, progress=False)
    assert len(calls) == 4                                     # nothing left to do
    cfg.steps = 7                                              # a changed config: rows set aside, redone
    rows = adapt.run(cfg, progress=False)
    assert len(calls) == 8 and len(rows) == 4
    (archive,) = (tmp / "results" / "smoke" / "adapt" / "mcunet-5fps").glob("fixture_a.stale-*.csv")
    assert len(taskrows.load_rows("smoke", "mcunet-5fps")) == 4   # the archive is not read as rows


def test_methods_share_one_interface():
    import torch

    from tinytrain_core import methods
    from tinytrain_core.nets import models
    from tinytrain_core.training.schemes import full_train, last_layer
    from tinytrain_core.training.costs import scheme_costs
    net = models.create("mcunet-5fps", pretrained=False).backbone
    shapes = net.conv_shapes()
    ctx = methods.Context("mcunet-5fps")
    x, y = torch.randn(6, 3, 32, 32), torch.arange(6) % 3
    got = {n: methods.get(n).timed_scheme(net, x, y, ctx) for n in methods.names()}
    assert got["None"][0].earliest is None and not methods.get("None").trains
    assert got["FullTrain"][0].weights == full_train(shapes).weights
    assert got["LastLayer"][0] == last_layer(shapes)
    assert got["SparseUpdate"][0].name.startswith("SparseUpdate-")
    c = scheme_costs(shapes, got["TinyTrain"][0])
    assert 0 < c.memory_kib <= ctx.memory_kib and 0 < c.backward_macs <= ctx.compute_macs
    assert all(s >= 0 for _, s in got.values())
    assert methods.get("TinyTrain").default_checkpoint == "meta"
    with pytest.raises(ValueError, match="known methods"):
        methods.get("Magic")


def test_a_rows_scheme_string_carries_exactly_the_trained_channels():
    from tinytrain_core.training import budgets
    from tinytrain_core.nets import models
    from tinytrain_core.training.schemes import UpdateScheme
    shapes = models.create("mcunet-5fps", pretrained=False).backbone.conv_shapes()
    s = UpdateScheme("t", {31: tuple(range(240)), 34: (0, 5, 17, 383), 40: (3,)}, frozenset({31, 34, 40}))
    text = adapt.scheme_summary(s, shapes)
    assert text.startswith("31:240/240;34:4/384@") and "@" not in text.split(";")[0]
    assert analysis.scheme_items(text) == budgets.scheme_items(s)
    assert analysis.scheme_items("") == frozenset() and analysis.scheme_items(float("nan")) == frozenset()


def _real_fixture(monkeypatch):
    """The font fixture and the real ImageNet weights (no stand-ins), or a skip naming the fix."""
    from tinytrain_core.data.fixture import fixture_ready
    from tinytrain_core.paths import project_root
    from tinytrain_core.nets.weights import WeightsMissing, find
    root = project_root()
    if not fixture_ready(root / "data" / "fixture"):
        pytest.skip("fixture domains missing: run `make fixture`")
    try:
        monkeypatch.setenv("TINYTRAIN_WEIGHTS_DIR", str(find("mcunet-5fps").parent))
    except WeightsMissing:
        pytest.skip("ImageNet weights missing: run `make weights`")
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root / "data"))


def test_two_worker_processes_write_the_rows_one_process_writes(tmp_path, monkeypatch):
    """Real tasks (no stand-ins: workers are fresh interpreters) on the fixture, once in this
    process and once shared out over two spawned workers: the same rows, to the last digit."""
    _real_fixture(monkeypatch)
    got = {}
    for workers in (1, 2):
        monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path / f"w{workers}"))
        cfg = adapt.AdaptConfig(profile="smoke", methods=["None", "TinyTrain"], episodes=1, val_episodes=1,
                                checkpoints=("imagenet",), lrs=(0.0, 1e-2), workers=workers)
        adapt.run(cfg, progress=False)
        got[workers] = taskrows.load_rows("smoke", "mcunet-5fps", split=None)
    cols = ["split", "domain", "episode", "method", "checkpoint", "lr", "accuracy", "scheme", "backward_kib"]
    a, b = (got[w].sort_values(cols[:6]).reset_index(drop=True) for w in (1, 2))
    assert len(a) == 2 * (2 + 2) and a.domain.nunique() == 2      # per domain: 2 validation + 2 test rows
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_sparse_update_gains_are_kept_under_their_key_and_remeasured_when_a_setting_changes(tmp_path, monkeypatch):
    """SparseUpdate's contribution analysis is computed once per checkpoint and reused while its
    inputs are unchanged; other settings make a new one. Only SparseUpdate's rows depend on it."""
    _real_fixture(monkeypatch)
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    fast = dict(tasks=1, steps=1, lr=1e-2, candidates="pointwise")
    cfg = adapt.AdaptConfig(profile="smoke", methods=["SparseUpdate"], checkpoints=("imagenet",), sparse_search=fast)
    first = adapt.sparse_gains(cfg, "imagenet")
    path = adapt.gains_path(cfg.resolved(), "imagenet")
    stamp = path.stat().st_mtime_ns
    again = adapt.sparse_gains(cfg, "imagenet")
    assert path.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first, again)
    assert set(first.kind) == {"bias", "weight"} and (first[first.kind == "weight"].conv >= 21).all()
    other = adapt.AdaptConfig(**{**cfg.__dict__, "sparse_search": {**fast, "steps": 2}})
    adapt.sparse_gains(other, "imagenet")
    assert path.stat().st_mtime_ns != stamp
    r1, r2 = cfg.resolved(), other.resolved()
    assert r1.key("SparseUpdate", "imagenet") != r2.key("SparseUpdate", "imagenet")
    assert r1.key("TinyTrain", "imagenet") == r2.key("TinyTrain", "imagenet")


def test_a_methods_power_gives_it_its_own_test_and_validation_episodes_and_leaves_the_others_alone(sandbox):
    """`power` (the plan's bigger sample for the claim arms): TinyTrain runs 3 test and 2
    validation episodes per domain, LastLayer the run's 1 and 1; rows_of_run returns each arm's own
    count, and the row keys of LastLayer are those of a run without `power`."""
    tmp, calls = sandbox
    base = dict(profile="smoke", domains=["fixture_a"], methods=["LastLayer", "TinyTrain"], episodes=1,
                val_episodes=1, lrs=(1e-4, 1e-3), checkpoints=("imagenet",), lr_scope="domain")
    cfg = adapt.AdaptConfig(**base, power={"TinyTrain": dict(episodes=3, val_episodes=2)})
    test = adapt.run(cfg, progress=False)
    val = adapt.rows_of_run(cfg, "val")
    assert test.groupby("method").episode.nunique().to_dict() == {"LastLayer": 1, "TinyTrain": 3}
    assert val.groupby("method").episode.nunique().to_dict() == {"LastLayer": 1, "TinyTrain": 2}
    plain = adapt.AdaptConfig(**base).resolved()
    r = cfg.resolved()
    assert r.key("LastLayer", "imagenet") == plain.key("LastLayer", "imagenet")
    assert r.key("TinyTrain", "imagenet") != plain.key("TinyTrain", "imagenet")   # its val_episodes differ


def test_the_lr_scope_of_a_method_with_power_is_its_own():
    """choose_lrs: per domain for a method whose `power` says "domain", pooled for the others."""
    cfg = adapt.AdaptConfig(profile="smoke", domains=["a", "b"], methods=["LastLayer", "TinyTrain"],
                            lrs=(0.0, 1e-3), lr_scope="pooled", power={"TinyTrain": dict(lr_scope="domain")})
    cfg.domains, cfg.lrs = ["a", "b"], (0.0, 1e-3)
    acc = {("a", 0.0): 50, ("a", 1e-3): 60, ("b", 0.0): 50, ("b", 1e-3): 45}   # a wants training, b not
    val = pd.DataFrame([dict(method=m, checkpoint="meta", domain=d, lr=lr, accuracy=a)
                        for m in ("LastLayer", "TinyTrain") for (d, lr), a in acc.items()])
    got = adapt.choose_lrs(val, cfg)
    assert got[("a", "TinyTrain", "meta")] == 1e-3 and got[("b", "TinyTrain", "meta")] == 0.0
    assert got[("a", "LastLayer", "meta")] == got[("b", "LastLayer", "meta")] == 1e-3   # pooled 55 > 50


def test_a_power_entry_with_an_unknown_setting_or_method_is_refused_naming_it(adapt_on_fixture):
    with pytest.raises(ValueError, match="episode"):
        adapt.AdaptConfig(profile="smoke", domains=["fixture_a"], power={"TinyTrain": dict(episode=3)}).resolved()
    with pytest.raises((ValueError, KeyError), match="Tinytrain"):
        adapt.AdaptConfig(profile="smoke", domains=["fixture_a"], power={"Tinytrain": dict(episodes=3)}).resolved()


def test_the_predicted_ci_before_a_run_is_the_formulas_for_the_planned_tasks_and_the_references_sd():
    """analysis.predicted_power: sd from the reference rows (root mean square of per-domain sds of
    the paired differences), CI = stats.stratified_ci_for(sd, planned tasks, domains); the planned
    tasks of a comparison are the fewer episodes of its two arms."""
    import numpy as np
    from tinytrain_core.stats import stratified_ci_for
    diffs = {"a": [1.0, 3.0, 2.0, 6.0], "b": [0.0, -2.0, 4.0, 1.0]}
    rows = pd.DataFrame([dict(domain=d, episode=e, method=m, checkpoint="meta", accuracy=50 + (x if m == "TinyTrain" else 0))
                         for d, xs in diffs.items() for e, x in enumerate(xs) for m in ("TinyTrain", "FullTrain")])
    cfg = adapt.AdaptConfig(profile="smoke", domains=["a", "b"], methods=["FullTrain", "TinyTrain", "LastLayer"],
                            checkpoints=("meta",), episodes=3, power={"TinyTrain": dict(episodes=8), "FullTrain": dict(episodes=6)})
    planned = analysis.planned_tasks(cfg)
    assert planned[analysis.HEADLINE] == (12, 2)                  # min(8, 6) episodes x 2 domains
    got = analysis.predicted_power(rows, planned).set_index("comparison").loc[analysis.HEADLINE]
    sd = float(np.sqrt(np.mean([np.var(v, ddof=1) for v in diffs.values()])))
    assert got.sd_reference == pytest.approx(sd)
    assert got.ci95_predicted == pytest.approx(stratified_ci_for(sd, 12, 2))


def test_a_run_with_no_trainable_arm_skips_validation_instead_of_failing(sandbox):
    """Several LRs but only None (which trains nothing): no validation jobs, the test rows run."""
    tmp, calls = sandbox
    cfg = adapt.AdaptConfig(profile="smoke", domains=["fixture_a"], methods=["None"], episodes=1,
                            lrs=(1e-4, 1e-3), checkpoints=("imagenet",))
    rows = adapt.run(cfg, progress=False)
    assert len(rows) == 1 and not len(adapt.rows_of_run(cfg, "val"))
