"""adapt.run resumes only rows made from the same config, checkpoint content and domain build.
Stale rows are set aside in an archive (never reused, never lost, never blocking other methods),
a failed run leaves nothing that blocks the next, and a CSV cut short by a kill is repaired.
Runs on the fixture with the per-task work replaced by a recorder, as in test_adapt.py."""
import csv
import json

import pandas as pd
import pytest

from tinytrain_core.experiment import adapt, taskrows, tasks
from tinytrain_core.experiment import analysis

pytestmark = pytest.mark.filterwarnings("ignore:no 'meta' checkpoint:UserWarning")   # meta_fallback's notice
DOMAIN = "fixture_a"


class Recorder:
    """Stands in for adapt_task: records (episode seed, method, lr) and fails the way a real task
    does on an impossible memory budget or an unknown channel rule."""

    def __init__(self):
        self.calls = []

    def __call__(self, method, net, state, tensors, cfg, lr, task_seed, chosen=None):
        if method.name == "TinyTrain" and cfg.memory_kib < 1:
            raise ValueError("no conv fits the memory budget")
        if cfg.channels not in ("fisher", "l2", "random"):
            raise ValueError(f"unknown channels {cfg.channels!r}")
        self.calls.append((task_seed, method.name, lr))
        return dict(accuracy=50.0 + 1000 * lr, backward_macs=0, backward_kib=0.0, select_s=0.0,
                    train_s=0.0, n_layers=0, scheme="")

    def ran(self, method=None):
        return [c for c in self.calls if method is None or c[1] == method]


@pytest.fixture
def sandbox(adapt_on_fixture, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(tasks, "adapt_task", rec)
    monkeypatch.setattr(tasks, "task_scheme", lambda *a: (None, {}))
    return rec


def _cfg(**kw):
    base = dict(profile="smoke", domains=[DOMAIN], methods=["None", "TinyTrain"], episodes=2, lrs=(1e-3,),
                meta_fallback=True, checkpoints={})      # {}: each method from its default checkpoint
    return adapt.AdaptConfig(**{**base, **kw})


def _dir():
    return taskrows.out_dir("smoke", "mcunet-5fps")


def _csv():
    return _dir() / f"{DOMAIN}.csv"


def _archives():
    return sorted(_dir().glob(f"{DOMAIN}.stale-*.csv"))


def _meta_checkpoint(content: bytes):
    """Put bytes where the meta checkpoint lives (loading is stubbed out: only its hash matters)."""
    from tinytrain_core.nets.checkpoints import checkpoint_path
    path = checkpoint_path("mcunet-5fps", "meta", "smoke")
    path.write_bytes(content)
    return path


def _keys_in_csv():
    with _csv().open(newline="") as fh:
        return {r["key"] for r in csv.DictReader(fh)}


# ---------------------------------------------------------------- 1. failed runs block nothing

@pytest.mark.parametrize("failure", ["memory budget", "channels typo", "missing meta checkpoint"])
def test_a_failed_run_leaves_nothing_that_blocks_the_next(sandbox, failure):
    bad = {"memory budget": dict(memory_kib=0.5), "channels typo": dict(channels="fishr"),
           "missing meta checkpoint": dict(meta_fallback=False)}[failure]
    with pytest.raises((ValueError, FileNotFoundError)):
        adapt.run(_cfg(**bad), progress=False)
    if _csv().with_suffix(".json").is_file():            # a sidecar only beside rows it describes
        assert len(taskrows.read_rows(_csv())) > 0
    rows = adapt.run(_cfg(), progress=False)             # the intended config now just runs
    assert sorted(zip(rows.episode, rows.method)) == [(0, "None"), (0, "TinyTrain"), (1, "None"), (1, "TinyTrain")]


def test_a_failed_first_task_leaves_no_empty_csv_behind(sandbox):
    with pytest.raises(ValueError):
        adapt.run(_cfg(channels="fishr"), progress=False)
    assert not _csv().exists() and not _csv().with_suffix(".json").exists()


def test_another_checkpoint_is_another_arm_and_leaves_the_others_alone(sandbox, capsys):
    adapt.run(_cfg(), progress=False)
    assert len(sandbox.ran()) == 4
    rows = adapt.run(_cfg(checkpoints={"TinyTrain": "imagenet"}), progress=False)
    assert len(sandbox.ran("None")) == 2                 # None's rows were resumed
    assert len(sandbox.ran("TinyTrain")) == 4            # TinyTrain from imagenet: a new arm, computed
    assert len(rows) == 4 and set(rows[rows.method == "TinyTrain"].checkpoint) == {"imagenet"}
    assert not _archives()                               # TinyTrain from meta: kept, not this run's arm
    kept = taskrows.read_rows(_csv())
    assert len(kept[(kept.method == "TinyTrain") & (kept.checkpoint == "meta")]) == 2
    rows = adapt.run(_cfg(channels="l2"), progress=False)   # a changed config: that arm's rows set aside
    (archive,) = _archives()
    assert "set aside 2 row(s) of TinyTrain from meta" in capsys.readouterr().out


# ---------------------------------------------------------------- 2./3. rows keyed by content

def test_a_retrained_checkpoint_sets_its_rows_aside_and_recomputes_them(sandbox, capsys):
    _meta_checkpoint(b"first meta-training")
    cfg = _cfg(meta_fallback=False, lrs=(1e-3, 1e-2))
    first = adapt.run(cfg, progress=False)
    assert set(first[first.method == "TinyTrain"].checkpoint) == {"meta"}
    assert len(sandbox.ran("TinyTrain")) == 2 + 2        # 2 validation tasks (one per lr), 2 test tasks
    adapt.run(cfg, progress=False)
    assert len(sandbox.ran("TinyTrain")) == 4            # same content: resumed, nothing redone
    _meta_checkpoint(b"notebook 01 ran again")
    rows = adapt.run(cfg, progress=False)
    assert len(sandbox.ran("TinyTrain")) == 8 and len(sandbox.ran("None")) == 2
    assert len(rows) == 4
    out = capsys.readouterr().out
    assert "set aside 4 row(s) of TinyTrain from meta" in out and "checkpoint 'meta' is now" in out
    (archive,) = _archives()
    old = taskrows.read_rows(archive)
    assert sorted(old.split) == ["test", "test", "val", "val"] and archive.with_suffix(".json").is_file()
    val = taskrows.load_rows("smoke", "mcunet-5fps", split="val")
    assert len(val[val.method == "TinyTrain"]) == 2      # the learning rate was chosen again too


def test_meta_fallback_rows_are_recomputed_once_the_meta_checkpoint_exists(sandbox, capsys):
    with pytest.warns(UserWarning, match="meta_fallback"):
        adapt.run(_cfg(), progress=False)
    side = json.loads(_csv().with_suffix(".json").read_text())["keys"].values()
    assert {v["checkpoint_id"].split(":")[0] for v in side if v["method"] == "TinyTrain"} == {"imagenet"}
    _meta_checkpoint(b"trained at last")
    rows = adapt.run(_cfg(), progress=False)
    assert set(rows[rows.method == "TinyTrain"].checkpoint) == {"meta"}
    assert len(sandbox.ran("TinyTrain")) == 4 and len(sandbox.ran("None")) == 2


def test_a_rebuilt_domain_sets_every_method_aside(sandbox, monkeypatch, capsys):
    adapt.run(_cfg(), progress=False)
    monkeypatch.setattr("tinytrain_core.data.domains.domain_hash", lambda d: "rebuilt00000")
    rows = adapt.run(_cfg(), progress=False)
    assert len(sandbox.ran()) == 8 and len(rows) == 4
    assert "the domain was rebuilt" in capsys.readouterr().out
    assert len(taskrows.read_rows(_archives()[0])) == 4


def test_rows_of_methods_outside_the_run_are_kept_untouched(sandbox):
    adapt.run(_cfg(methods=["LastLayer"]), progress=False)
    adapt.run(_cfg(steps=3), progress=False)             # a change that would affect LastLayer too
    rows = taskrows.load_rows("smoke", "mcunet-5fps")
    assert sorted(set(rows.method)) == ["LastLayer", "None", "TinyTrain"] and len(rows) == 6
    assert len(sandbox.ran("LastLayer")) == 2
    assert not _archives()


def test_old_format_rows_are_set_aside_and_recomputed(sandbox, capsys):
    path = _csv()
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=taskrows.COLUMNS)
        w.writeheader()
        for ep in (0, 1):
            w.writerow(dict(domain=DOMAIN, episode=ep, ways=3, shots=6, queries=6, method="None",
                            checkpoint="imagenet", lr=0.0, accuracy=12.5, backward_macs=0, backward_kib=0.0,
                            select_s=0.0, train_s=0.0, n_layers=0, scheme=""))
    path.with_suffix(".json").write_text(json.dumps({"domain": DOMAIN, "method_keys": {"None": "abc"}}))
    rows = adapt.run(_cfg(), progress=False)
    assert len(sandbox.ran()) == 4 and len(rows) == 4 and set(rows.accuracy) == {50.0, 51.0}
    assert "set aside 2 row(s) of None from imagenet (older format: written before rows carried a key" in capsys.readouterr().out
    assert set(taskrows.read_rows(_archives()[0]).accuracy) == {12.5}
    assert "key" in open(path).readline()


def test_load_rows_reads_old_and_new_files_and_skips_archives_and_summaries(sandbox):
    d = _dir()
    (d / "old.csv").write_text(",".join(taskrows.COLUMNS) + "\n"
                               "test,old,0,5,5,25,None,imagenet,0.0,40.0,0,0.0,0.0,0.0,0,\n"
                               "test,old,0,5,5,25,FullTrain,imagenet,0.001,60.0,9,1.5,0.0,2.0,42,0:3/3\n")
    adapt.run(_cfg(methods=["None", "FullTrain"]), progress=False)
    adapt.run(_cfg(methods=["None", "FullTrain"], steps=3), progress=False)   # makes an archive
    analysis.summarize(taskrows.load_rows("smoke", "mcunet-5fps")).to_csv(d / "summary.csv", index=False)
    rows = taskrows.load_rows("smoke", "mcunet-5fps")
    assert list(rows.columns) == taskrows.COLUMNS and len(rows) == 2 + 4
    assert set(rows.method) == {"None", "FullTrain"} and sorted(set(rows.domain)) == [DOMAIN, "old"]
    assert set(analysis.summarize(rows).domain) == {DOMAIN, "old", "average"}


# ---------------------------------------------------------------- 4. files cut short by a kill

def test_an_empty_csv_counts_as_no_rows_and_is_repaired(sandbox):
    _csv().write_text("")
    rows = adapt.run(_cfg(), progress=False)
    assert len(rows) == 4 and len(sandbox.ran()) == 4
    assert open(_csv()).readline().strip() == ",".join(taskrows.FIELDS)


@pytest.mark.parametrize("tear", ["no trailing newline", "missing fields", "unparsable accuracy"])
def test_a_torn_last_line_is_dropped_and_its_task_recomputed(sandbox, capsys, tear):
    adapt.run(_cfg(methods=["None"]), progress=False)
    whole = _csv().read_bytes()
    head, last = whole.rsplit(b"\r\n", 2)[0] + b"\r\n", whole.rsplit(b"\r\n", 2)[1]
    torn = {"no trailing newline": whole[:-8],          # every field there, the key cut short
            "missing fields": head + last[:20] + b"\r\n",
            "unparsable accuracy": head + last.replace(b",50.0,", b",5x.0,") + b"\r\n"}[tear]
    _csv().write_bytes(torn)
    rows = adapt.run(_cfg(methods=["None"]), progress=False)
    assert "torn last line" in capsys.readouterr().out
    assert len(sandbox.ran()) == 3 and sorted(rows.episode) == [0, 1]
    assert _csv().read_bytes() == whole                   # whole again, same bytes


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00binary", b"name,size\nfoo,3\n",
                                     ",".join(taskrows.FIELDS).encode() + b"\r\nfixture_a,zero,1\r\nfixture_a,1\r\n"])
def test_an_unreadable_csv_names_the_file_and_the_fix(sandbox, content):
    _csv().write_bytes(content)
    with pytest.raises(taskrows.BadResults, match=rf"{DOMAIN}\.csv.*Move it aside"):
        adapt.run(_cfg(), progress=False)
    assert _csv().read_bytes() == content                 # nothing is rewritten behind the user's back


def test_the_sidecar_describes_exactly_the_rows_present(sandbox):
    adapt.run(_cfg(methods=["None"]), progress=False)
    adapt.run(_cfg(methods=["TinyTrain"]), progress=False)
    side = json.loads(_csv().with_suffix(".json").read_text())
    assert set(side["keys"]) == _keys_in_csv() and len(side["keys"]) == 2
    assert {v["method"] for v in side["keys"].values()} == {"None", "TinyTrain"}
    assert all(v["checkpoint_id"].startswith("imagenet:") for v in side["keys"].values())


def test_the_lr_is_the_argmax_of_the_validation_rows_per_domain_or_pooled():
    cfg = adapt.AdaptConfig(profile="smoke", lrs=(0.0, 1e-3, 1e-2), lr_scope="domain")
    acc = {("a", 0.0): [50, 50], ("a", 1e-3): [60, 58], ("a", 1e-2): [40, 40],
           ("b", 0.0): [70, 70], ("b", 1e-3): [60, 60], ("b", 1e-2): [71, 69]}   # b: 1e-2 ties 0 -> 0
    val = pd.DataFrame([dict(domain=d, lr=lr, episode=e, method="FullTrain", checkpoint="meta", accuracy=a)
                        for (d, lr), v in acc.items() for e, a in enumerate(v)])
    assert adapt.choose_lrs(val, cfg) == {("a", "FullTrain", "meta"): 1e-3, ("b", "FullTrain", "meta"): 0.0}
    cfg.lr_scope = "pooled"                               # means over domains: 60, 59.5, 55
    assert adapt.choose_lrs(val, cfg) == {("a", "FullTrain", "meta"): 0.0, ("b", "FullTrain", "meta"): 0.0}


def test_a_checkpoint_replaced_while_it_loads_is_refused(tmp_path, monkeypatch):
    from tinytrain_core.nets import models
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    nets = adapt.Backbones(adapt.AdaptConfig(profile="smoke", domains=[DOMAIN]))
    _meta_checkpoint(b"the weights the rows are keyed by")
    assert nets.identity("meta").startswith("meta:")

    def load_while_notebook_01_saves(checkpoint):
        _meta_checkpoint(b"retrained meanwhile")
        return models.create("mcunet-5fps", pretrained=False)
    monkeypatch.setattr(nets, "load", load_while_notebook_01_saves)
    with pytest.raises(RuntimeError, match="changed while this run loaded it"):
        nets.get("meta")


# ---------------------------------------------------------------- issue 22

def test_a_reproduce_run_never_lets_imagenet_weights_stand_in_for_a_meta_checkpoint_01_trains(sandbox, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_REPRODUCE_RUN", "run0001")   # what `make reproduce` gives its notebooks
    with pytest.raises(FileNotFoundError, match=r"(?s)no 'meta' checkpoint.*make reproduce` run run0001: ImageNet "
                                                r"weights may not stand in.*FRESH=1"):
        adapt.run(_cfg(), progress=False)                 # _cfg: meta_fallback=True, as notebooks 02 and 03
    assert not _csv().exists()                            # refused before any row was written


def test_a_model_the_profile_does_not_meta_train_keeps_its_fallback_in_a_reproduce_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    monkeypatch.setenv("TINYTRAIN_REPRODUCE_RUN", "run0001")
    nets = adapt.Backbones(adapt.AdaptConfig(profile="smoke", model="proxyless-w0.3", meta_fallback=True))
    with pytest.warns(UserWarning, match="meta_fallback"):    # smoke meta-trains mcunet-5fps only
        assert nets.identity("meta").startswith("imagenet:")


def _edit_csv(old: bytes, new: bytes, count: int = 1):
    text = _csv().read_bytes()
    assert text.count(old) >= count
    _csv().write_bytes(text.replace(old, new, count))


def test_a_row_edited_by_hand_is_refused_on_resume_naming_the_file_the_row_and_the_fix(sandbox):
    adapt.run(_cfg(methods=["None"]), progress=False)
    before = _csv().read_bytes()
    _edit_csv(b",50.0,", b",99.0,")                       # an accuracy made up
    with pytest.raises(taskrows.BadResults, match=rf"{DOMAIN}\.csv: row 1 \(test episode 0, None from imagenet, "
                                                   r"accuracy 99.0\) is not a row this code wrote.*delete that row "
                                                   r".*make reproduce PROFILE=smoke FRESH=1"):
        adapt.run(_cfg(methods=["None"]), progress=False)
    assert len(sandbox.ran()) == 2
    _csv().write_bytes(before)                             # undone: resumed as before, nothing recomputed
    adapt.run(_cfg(methods=["None"]), progress=False)
    assert len(sandbox.ran()) == 2


def test_deleting_the_edited_row_recomputes_its_task(sandbox):
    adapt.run(_cfg(methods=["None"]), progress=False)
    head, first, second = _csv().read_bytes().split(b"\r\n")[:3]
    _csv().write_bytes(head + b"\r\n" + second.replace(b",50.0,", b",99.0,") + b"\r\n" + first + b"\r\n")
    with pytest.raises(taskrows.BadResults, match="row 1 "):
        adapt.run(_cfg(methods=["None"]), progress=False)
    _csv().write_bytes(head + b"\r\n" + first + b"\r\n")  # the fix the message names
    rows = adapt.run(_cfg(methods=["None"]), progress=False)
    assert len(sandbox.ran()) == 3 and set(rows.accuracy) == {50.0}


def test_rows_from_before_row_hashes_are_accepted_as_legacy_then_hashed_and_checked(sandbox):
    adapt.run(_cfg(methods=["None"]), progress=False)
    taskrows.hashes_path(_csv()).unlink()                 # as the committed rows: no .rowhash
    legacy = _csv().read_bytes()
    adapt.run(_cfg(methods=["None"]), progress=False)     # accepted, nothing recomputed, nothing rewritten
    assert len(sandbox.ran()) == 2 and _csv().read_bytes() == legacy
    assert not taskrows.hashes_path(_csv()).exists()
    adapt.run(_cfg(methods=["None"], episodes=3), progress=False)   # the file is written: its rows are hashed
    assert len(sandbox.ran()) == 3 and len(taskrows.hashes_path(_csv()).read_text().split()) == 3
    _edit_csv(b",50.0,", b",98.0,")
    with pytest.raises(taskrows.BadResults, match="not a row this code wrote"):
        adapt.run(_cfg(methods=["None"], episodes=3), progress=False)


def test_the_committed_rows_resume_as_legacy_without_a_byte_changed(tmp_path):
    from tinytrain_core.paths import project_root
    committed = sorted((project_root() / "results" / "default" / "adapt" / "mcunet-5fps").glob("*.csv"))
    committed = [f for f in committed if f in taskrows.row_files(f.parent)]
    if not committed:
        pytest.skip("no committed per-task rows")
    for f in committed:
        copy = tmp_path / f.name
        copy.write_bytes(f.read_bytes())
        done, present = taskrows.resume(copy, {})
        assert copy.read_bytes() == f.read_bytes() and not taskrows.hashes_path(copy).exists()


def test_a_task_appended_twice_is_refused_naming_the_file_and_the_fix(sandbox):
    adapt.run(_cfg(methods=["None"]), progress=False)
    whole = _csv().read_bytes()
    _csv().write_bytes(whole + whole.split(b"\r\n")[1] + b"\r\n")   # what two runs at once appended
    with pytest.raises(taskrows.BadResults, match=rf"{DOMAIN}\.csv: row 3 .* repeats row 1, the same task.*FRESH=1"):
        adapt.run(_cfg(methods=["None"]), progress=False)


def test_a_kill_between_a_rows_hash_and_the_row_leaves_a_file_that_resumes(sandbox):
    adapt.run(_cfg(methods=["None"]), progress=False)
    with taskrows.hashes_path(_csv()).open("a") as fh:
        fh.write("0123456789abcdef\n")                   # the hash of a row never written
    adapt.run(_cfg(methods=["None"]), progress=False)
    assert len(sandbox.ran()) == 2
