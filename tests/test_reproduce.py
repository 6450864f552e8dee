"""`make reproduce`: a fresh run recomputes everything (the committed tables are kept aside as the
reference, never resumed), an interrupted run resumes only its own work under its own code, and
the comparison tells equal from different, within or outside the CI. Runs in a temporary git
checkout with a stand-in papermill, in seconds."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess

import pandas as pd
import papermill
import pytest

from tinytrain_core import committed, comparison, reproduce as R


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture()
def checkout(tmp_path):
    """A tiny project: two notebooks, a package file, committed default tables."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "tinytrain_core").mkdir()
    (root / "tinytrain_core" / "x.py").write_text("A = 1\n")
    for nb in ("00_data.ipynb", "01_pretrain.ipynb"):
        (root / "notebooks" / nb).write_text("{}")
    res = root / "results" / "default"
    (res / "adapt").mkdir(parents=True)
    pd.DataFrame({"domain": ["a", "b"], "accuracy": [50.0, 60.0], "ci95": [2.0, 2.0],
                  "train_s": [1.0, 2.0]}).to_csv(res / "table.csv", index=False)
    pd.DataFrame({"episode": [0], "method": ["None"], "accuracy": [40.0]}).to_csv(
        res / "adapt" / "a.csv", index=False)
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ref")
    return root


def _fake_papermill(monkeypatch, calls, fail_on=None, accuracy=(50.0, 61.0)):
    def execute(inp, out, parameters, kernel_name, cwd, progress_bar):
        name = inp.rsplit("/", 1)[-1]
        calls.append(name)
        if name == fail_on:
            raise RuntimeError("kernel died")
        res = R.Run(parameters["profile"], root=cwd.rsplit("/notebooks", 1)[0]).results
        pd.DataFrame({"domain": ["a", "b"], "accuracy": list(accuracy), "ci95": [2.0, 2.0],
                      "train_s": [9.0, 9.0]}).to_csv(res / "table.csv", index=False)
    monkeypatch.setattr(papermill, "execute_notebook", execute)


def test_fresh_run_recomputes_everything_and_keeps_the_committed_reference(checkout):
    res = checkout / "results" / "default"
    (res / "checkpoints").mkdir()
    (res / "checkpoints" / "m-meta.pt").write_text("old weights")
    run = R.Run("default", checkout)
    assert run.start() == "fresh"
    assert not (res / "table.csv").exists() and not (res / "adapt").exists()     # nothing to resume
    assert not (res / "checkpoints").exists()                                     # nothing reused
    assert (res / "previous-run" / "results" / "checkpoints" / "m-meta.pt").is_file()  # nothing lost
    assert (res / "reference" / "table.csv").is_file() and (res / "reference" / "adapt" / "a.csv").is_file()
    assert json.loads((res / "run.json").read_text())["status"] == "running"


def test_interrupted_run_resumes_its_own_finished_notebooks(checkout, monkeypatch):
    calls = []
    _fake_papermill(monkeypatch, calls, fail_on="01_pretrain.ipynb")
    run = R.Run("default", checkout)
    run.start()
    with pytest.raises(SystemExit, match="(?s)01_pretrain.ipynb failed.*resume"):
        run.run_notebooks(progress=False)
    _fake_papermill(monkeypatch, calls)
    again = R.Run("default", checkout)
    assert again.start() == "resumed"
    again.run_notebooks(progress=False)
    again.finish()
    assert calls == ["00_data.ipynb", "01_pretrain.ipynb", "01_pretrain.ipynb"]
    state = json.loads((checkout / "results" / "default" / "run.json").read_text())
    assert state["status"] == "complete" and set(state["stages"]) == {"00_data", "01_pretrain"}


def test_a_run_does_not_resume_across_a_code_change(checkout, monkeypatch):
    run = R.Run("default", checkout)
    run.start()
    (checkout / "tinytrain_core" / "x.py").write_text("A = 2\n")
    with pytest.raises(SystemExit, match="code changed.*FRESH=1"):
        R.Run("default", checkout).start()
    assert R.Run("default", checkout).start(fresh=True) == "fresh"


def test_a_finished_run_is_never_resumed(checkout, monkeypatch):
    calls = []
    _fake_papermill(monkeypatch, calls)
    run = R.Run("default", checkout)
    run.start()
    run.run_notebooks(progress=False)
    run.finish()
    assert R.Run("default", checkout).start() == "fresh"


def test_comparison_tells_equal_within_ci_outside_ci_and_missing(checkout, monkeypatch):
    _fake_papermill(monkeypatch, [], accuracy=(50.0, 61.0))    # b moves by 1.0 (CI 2.0)
    run = R.Run("default", checkout)
    run.start()
    run.run_notebooks(progress=False)
    table = R.compare("default", checkout, quiet=True).set_index("table")
    row = table.loc["table.csv"]
    assert row.status == "differs" and row.within_ci == 1 and row.outside_ci == 0
    assert row.differing == "accuracy (max 1)" and row.timing_only == "train_s"
    assert table.loc["adapt/a.csv"].status == "not recomputed"
    same = comparison.compare_table(pd.DataFrame({"m": ["x"], "acc": [1.0]}), pd.DataFrame({"m": ["x"], "acc": [1.0]}))
    assert same["status"] == "equal"
    far = comparison.compare_table(pd.DataFrame({"m": ["x"], "acc": [1.0], "ci95": [0.5]}),
                          pd.DataFrame({"m": ["x"], "acc": [3.0], "ci95": [0.5]}))
    assert far["outside_ci"] == 1 and far["within_ci"] == 0


def test_unknown_profile_is_refused_with_the_choices(checkout):
    with pytest.raises(ValueError, match="smoke, default, paper"):
        R.Run("defualt", checkout)


def test_committed_notebooks_lose_progress_bars_and_papermill_bookkeeping_only():
    nb = {"metadata": {"papermill": {"x": 1}, "kernelspec": {"name": "tinytrain"}}, "cells": [
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "profile = 'smoke'",
         "outputs": []},
        {"cell_type": "code", "metadata": {"papermill": {}, "execution": {}, "tags": ["parameters"]},
         "source": "x = 1", "outputs": [
             {"output_type": "stream", "name": "stderr", "text": "lr 40%|####  | 2/5 [00:01<00:01, 2.0it/s]"},
             {"output_type": "stream", "name": "stderr", "text": "UserWarning: something real\n"},
             {"output_type": "stream", "name": "stdout", "text": "100%| done, 3 it/s]\n"}]}]}
    out = committed.clean_outputs(nb)
    assert out["metadata"] == {"kernelspec": {"name": "tinytrain"}}
    assert len(out["cells"]) == 1 and out["cells"][0]["metadata"] == {"tags": ["parameters"]}
    assert [o["text"] for o in out["cells"][0]["outputs"]] == ["UserWarning: something real\n",
                                                               "100%| done, 3 it/s]\n"]


def test_committed_notebooks_lose_empty_stderr_outputs_but_keep_real_ones():
    outs = [{"output_type": "stream", "name": "stderr", "text": "\n"},
            {"output_type": "stream", "name": "stderr", "text": ["\n", "  \n"]},
            {"output_type": "stream", "name": "stderr", "text": ""},
            {"output_type": "stream", "name": "stderr", "text": "\nUserWarning: kept\n"},
            {"output_type": "stream", "name": "stdout", "text": "\n"}]
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "source": "x", "outputs": outs}]}
    kept = committed.clean_outputs(nb)["cells"][0]["outputs"]
    assert [(o["name"], o["text"]) for o in kept] == [("stderr", "\nUserWarning: kept\n"), ("stdout", "\n")]


def test_rows_are_matched_on_their_identity_and_text_results_are_compared():
    ref = pd.DataFrame({"domain": ["a", "a"], "episode": [0, 1], "method": ["None", "None"],
                        "scheme": ["31:8/8", "31:8/8"], "accuracy": [50.0, 60.0]})
    new = ref.assign(scheme=["31:8/8", "32:8/8"])
    r = comparison.compare_table(ref, new)
    assert r["unmatched_rows"] == 0 and r["status"] == "differs" and r["differing"] == "scheme (1 rows)"


def test_code_hash_ignores_notebook_outputs_but_not_sources(checkout):
    nb = checkout / "notebooks" / "00_data.ipynb"
    nb.write_text(json.dumps({"cells": [{"source": ["x = 1"], "outputs": []}]}))
    h = R.code_hash(checkout)
    nb.write_text(json.dumps({"cells": [{"source": ["x = 1"], "outputs": [{"text": "1"}]}]}))
    assert R.code_hash(checkout) == h
    nb.write_text(json.dumps({"cells": [{"source": ["x = 2"], "outputs": []}]}))
    assert R.code_hash(checkout) != h


def test_a_clean_checkout_is_recorded_clean_although_its_tables_move_aside(checkout):
    run = R.Run("default", checkout)
    run.start()
    assert run.state["git_dirty"] is False and run.state["git_commit"]


# ---------------------------------------------------------------- issue 22

def _hold_the_run_lock(root):
    """A child process standing in for a running `make reproduce PROFILE=default` of `root`."""
    import os
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    code = ("import sys; from tinytrain_core import reproduce as R\n"
            f"with R.Run('default', {str(root)!r}).lock():\n"
            "    print('held', flush=True); sys.stdin.readline()\n")
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "held", child.stderr.read()
    return child


@pytest.mark.parametrize("argv", [[], ["--check-lock"], ["--fresh"]])
def test_a_second_reproduce_of_a_profile_is_refused_at_once_naming_the_running_one(checkout, monkeypatch, argv):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(checkout))
    first = _hold_the_run_lock(checkout)
    try:
        calls = []
        _fake_papermill(monkeypatch, calls)
        with pytest.raises(SystemExit) as e:
            R.main(["--profile", "default", *argv])
        msg = str(e.value)
        assert f"pid {first.pid}" in msg and "started 20" in msg and "make reproduce PROFILE=default" in msg
        assert "wait for that run to finish" in msg
        assert calls == [] and (checkout / "results" / "default" / "table.csv").is_file()   # nothing touched
    finally:
        first.stdin.write("go\n")
        first.stdin.flush()
        first.wait(timeout=30)
    R.main(["--profile", "default", "--check-lock"])        # free again


def test_make_reproduce_asks_for_the_lock_before_make_data():
    from pathlib import Path
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    line = next(x for x in makefile.splitlines() if x.startswith("reproduce:"))
    deps = line.split(":", 1)[1].split("##")[0].split()
    assert deps.index("reproduce-free") < deps.index("data")
    assert "--check-lock" in makefile.split("reproduce-free: setup", 1)[1].splitlines()[1]


def _fake_notebooks_writing(monkeypatch, calls, fail_on=None):
    """00 writes a checkpoint and a table, 01 a table; `fail_on` fails (after writing)."""
    def execute(inp, out, parameters, kernel_name, cwd, progress_bar):
        import os
        name = inp.rsplit("/", 1)[-1]
        calls.append((name, os.environ.get("TINYTRAIN_REPRODUCE_RUN")))
        res = R.Run(parameters["profile"], root=cwd.rsplit("/notebooks", 1)[0]).results
        if name.startswith("00"):
            (res / "checkpoints").mkdir(exist_ok=True)
            (res / "checkpoints" / "m-meta.pt").write_text("trained weights")
            (res / "before_after.csv").write_text("a\n1\n")
        else:
            (res / "table.csv").write_text("domain,accuracy\na,50.0\n")
        if name == fail_on:
            raise RuntimeError("kernel died")
    monkeypatch.setattr(papermill, "execute_notebook", execute)


@pytest.mark.parametrize("loss", ["deleted", "changed"])
def test_a_finished_notebook_whose_files_are_gone_runs_again_with_every_later_one(checkout, monkeypatch, capsys,
                                                                                   loss):
    calls = []
    _fake_notebooks_writing(monkeypatch, calls, fail_on="01_pretrain.ipynb")
    run = R.Run("default", checkout)
    run.start()
    with pytest.raises(SystemExit):
        run.run_notebooks(progress=False)
    ckpt = checkout / "results" / "default" / "checkpoints" / "m-meta.pt"
    ckpt.unlink() if loss == "deleted" else ckpt.write_text("other weights")
    _fake_notebooks_writing(monkeypatch, calls)
    again = R.Run("default", checkout)
    assert again.start() == "resumed"
    assert "00_data finished earlier in this run, but 1 of the files it wrote" in capsys.readouterr().out
    again.run_notebooks(progress=False)
    assert [c[0] for c in calls] == ["00_data.ipynb", "01_pretrain.ipynb", "00_data.ipynb", "01_pretrain.ipynb"]
    assert ckpt.read_text() == "trained weights"
    stages = json.loads((checkout / "results" / "default" / "run.json").read_text())["stages"]
    assert "results/default/checkpoints/m-meta.pt" in stages["00_data"]["outputs"]     # its writer owns it
    assert list(stages["01_pretrain"]["outputs"]) == ["results/default/table.csv"]


def test_a_finished_notebook_whose_files_are_intact_is_skipped_on_resume(checkout, monkeypatch):
    calls = []
    _fake_notebooks_writing(monkeypatch, calls, fail_on="01_pretrain.ipynb")
    run = R.Run("default", checkout)
    run.start()
    with pytest.raises(SystemExit):
        run.run_notebooks(progress=False)
    _fake_notebooks_writing(monkeypatch, calls)
    R.Run("default", checkout).start()
    R.Run("default", checkout).run_notebooks(progress=False)
    assert [c[0] for c in calls] == ["00_data.ipynb", "01_pretrain.ipynb", "01_pretrain.ipynb"]
    outputs = json.loads((checkout / "results" / "default" / "run.json").read_text())["stages"]["00_data"]["outputs"]
    assert sorted(outputs) == ["results/default/before_after.csv", "results/default/checkpoints/m-meta.pt"]


def test_the_notebooks_of_a_reproduce_run_know_they_are_one(checkout, monkeypatch):
    import os
    calls = []
    _fake_notebooks_writing(monkeypatch, calls)
    run = R.Run("default", checkout)
    run.start()
    run.run_notebooks(progress=False)
    assert {c[1] for c in calls} == {run.state["id"]}      # adapt: no ImageNet weights under the meta name
    assert "TINYTRAIN_REPRODUCE_RUN" not in os.environ


def test_a_fresh_start_moves_the_last_runs_executed_notebooks_aside(checkout):
    res = checkout / "results" / "default"
    (res / "notebooks").mkdir()
    for nb in ("00_data.ipynb", "04_costs.ipynb"):
        (res / "notebooks" / nb).write_text("{} executed by the last run")
    R.Run("default", checkout).start(fresh=True)
    assert not (res / "notebooks").exists() or not any((res / "notebooks").iterdir())
    assert (res / "previous-run" / "results" / "notebooks" / "04_costs.ipynb").is_file()


def test_a_runs_executed_notebooks_are_written_clean_and_say_their_profile(checkout, monkeypatch):
    """What `make reproduce` leaves in results/<profile>/notebooks/ is committable as is: no
    progress bars or papermill bookkeeping, the injected `profile` cell kept."""
    def execute(inp, out, parameters, kernel_name, cwd, progress_bar):
        Path(out).write_text(json.dumps({"metadata": {"papermill": {}}, "nbformat": 4, "nbformat_minor": 5, "cells": [
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
             "source": f"profile = {parameters['profile']!r}", "outputs": []},
            {"cell_type": "code", "metadata": {"papermill": {}}, "source": "x", "outputs": [
                {"output_type": "stream", "name": "stderr", "text": "40%|####  | 2/5 [00:01<00:01, 2.0it/s]"},
                {"output_type": "stream", "name": "stdout", "text": "42\n"}]}]}))
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    run = R.Run("default", checkout)
    run.start()
    run.run_notebooks(progress=False)
    nb = json.loads((checkout / "results" / "default" / "notebooks" / "01_pretrain.ipynb").read_text())
    assert "papermill" not in nb["metadata"]
    assert nb["cells"][0]["source"] == "profile = 'default'"
    assert [o["text"] for o in nb["cells"][1]["outputs"]] == ["42\n"]
