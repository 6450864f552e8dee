"""Sharded sweeps (`shards.py`): the same run cut into idempotent shards gives the same rows on
Ray as on the local runner and as `adapt.run`; a finished shard computes nothing again, a cut
one only what it lacks; merging never takes rows made under another key; a domain without
validation classes takes the pooled LR."""
import pandas as pd
import pytest

from tinytrain_core.experiment import adapt, shards, taskrows, tasks
from tinytrain_core.data import fixture_ready
from tinytrain_core.paths import project_root

pytestmark = pytest.mark.filterwarnings("ignore:no 'meta' checkpoint:UserWarning")
COLS = ["split", "domain", "episode", "method", "checkpoint", "lr", "accuracy", "backward_kib", "scheme"]


def _rows(cfg):
    rows = pd.concat([adapt.rows_of_run(cfg, "val"), adapt.rows_of_run(cfg, "test")])
    return rows[COLS].sort_values(COLS[:6]).reset_index(drop=True)


def test_ray_shards_equal_the_local_runner_and_adapt_run(tmp_path, monkeypatch):
    """Real backbone (ImageNet weights), real fixture images, a real local Ray instance on the
    CPU: Ray 2.60 has no local mode, so its workers are separate processes that see the results
    folder through the TINYTRAIN_* variables `shards` hands them."""
    root = project_root()
    if not fixture_ready(root / "data" / "fixture"):
        pytest.skip("fixture domains missing: run `make fixture`")
    from tinytrain_core.nets.weights import WeightsMissing, find
    try:
        find("mcunet-5fps")
    except WeightsMissing:
        pytest.skip("ImageNet weights missing: run `make weights`")
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    base = dict(profile="smoke", methods=["None", "FullTrain", "TinyTrain"], checkpoints=("imagenet",),
                episodes=2, val_episodes=1, steps=2, lrs=(0.0, 1e-3), workers=1)
    runs = {}
    for variant, engine in (("processes", "processes"), ("local", "local"), ("ray", "ray")):
        cfg = adapt.AdaptConfig(**base, variant=variant, engine=engine)
        if engine == "ray":
            shards.run(cfg, "ray", size=1, num_cpus=2, progress=False)
        else:
            adapt.run(cfg, progress=False)
        runs[variant] = _rows(cfg)
    assert len(runs["processes"]) == 2 * (2 * 2 + 3 * 2)      # domains x (val: 2 arms x 2 LRs + test: 3 arms x 2)
    assert runs["local"].equals(runs["processes"])
    assert runs["ray"].equals(runs["processes"])
    cfg = adapt.AdaptConfig(**base, variant="ray").resolved()
    assert len(list(shards.shard_dir(cfg, "fixture_a").glob("*.csv"))) == 2 + 3 * 2   # one file per shard


class Recorder:
    """Stands in for adapt_task (as in test_resume.py): records what it was asked to compute."""

    def __init__(self):
        self.calls = []

    def __call__(self, method, net, state, tensors, cfg, lr, task_seed, chosen=None):
        self.calls.append((task_seed, method.name, lr))
        return dict(accuracy=50.0 + 1000 * lr + task_seed % 7, backward_macs=0, backward_kib=0.0, select_s=0.0,
                    train_s=0.0, n_layers=0, scheme="")


@pytest.fixture
def recorder(adapt_on_fixture, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(tasks, "adapt_task", rec)
    monkeypatch.setattr(tasks, "task_scheme", lambda *a: (None, {}))
    return rec


def _cfg(**kw):
    base = dict(profile="smoke", domains=["fixture_a", "fixture_b"], methods=["None", "TinyTrain"], episodes=3,
                val_episodes=1, lrs=(1e-4, 1e-3), meta_fallback=True, checkpoints={}, engine="local")
    return adapt.AdaptConfig(**{**base, **kw})


def test_the_plan_covers_every_task_once(recorder):
    cfg = _cfg().resolved()
    test = shards.plan(cfg, "test", size=2)
    covered = [(s.domain, s.method, s.checkpoint, e) for s in test for e in range(s.start, s.stop)]
    assert sorted(covered) == sorted((d, m, c, e) for d in cfg.domains for m, c in cfg.arms() for e in range(3))
    assert {s.method for s in shards.plan(cfg, "val", size=2)} == {"TinyTrain"}    # None trains nothing


def test_a_finished_shard_computes_nothing_and_a_cut_one_only_what_it_lacks(recorder):
    cfg = _cfg()
    first = adapt.run(cfg, progress=False)
    n = len(recorder.calls)
    assert n == 2 * (1 * 2 + 2 * 3) and len(first) == 12
    adapt.run(cfg, progress=False)
    assert len(recorder.calls) == n                          # idempotent: nothing recomputed
    shard = next(s for s in shards.plan(cfg, "test") if s.method == "TinyTrain" and s.domain == "fixture_a")
    path = shard.path(cfg.resolved())
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))                     # the last task lost (a kill)
    shards.run_shard(cfg, shard, adapt.choose_lrs(adapt.rows_of_run(cfg, "val"), cfg.resolved()))
    assert len(recorder.calls) == n + 1
    again = adapt.run(cfg, progress=False)
    assert again.sort_values(["domain", "episode", "method"]).reset_index(drop=True).equals(
        first.sort_values(["domain", "episode", "method"]).reset_index(drop=True))


def test_merging_never_takes_rows_made_under_another_key(recorder):
    adapt.run(_cfg(), progress=False)
    other = _cfg(seed=1).resolved()                          # another key for every arm
    for d in other.domains:
        assert shards.merge(other, d) == 0
    assert adapt.rows_of_run(other).empty
    assert all(len(taskrows.raw_rows(f)) for f in shards.shard_dir(other, "fixture_a").glob("*.csv"))   # kept


def test_a_domain_without_validation_classes_takes_the_pooled_lr():
    cfg = adapt.AdaptConfig(profile="smoke", domains=["a", "b", "signs"], lrs=(1e-4, 1e-3), lr_scope="domain")
    val = pd.DataFrame([dict(method="TinyTrain", checkpoint="meta", domain=d, lr=lr, accuracy=acc)
                        for d, lr, acc in [("a", 1e-4, 60), ("a", 1e-3, 50), ("b", 1e-4, 40), ("b", 1e-3, 70)]])
    chosen = adapt.choose_lrs(val, cfg)
    assert chosen[("a", "TinyTrain", "meta")] == 1e-4 and chosen[("b", "TinyTrain", "meta")] == 1e-3
    assert chosen[("signs", "TinyTrain", "meta")] == 1e-3        # pooled: (50 + 70) / 2 > (60 + 40) / 2


def test_an_unknown_engine_is_refused_before_any_work(recorder):
    with pytest.raises(ValueError, match="engine must be one of processes, local, ray"):
        adapt.AdaptConfig(profile="smoke", engine="spark").resolved()
    with pytest.raises(ValueError, match="batch_tasks"):
        adapt.AdaptConfig(profile="smoke", batch_tasks=0).resolved()
