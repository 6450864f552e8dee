"""One process at a time (tinytrain_core/lock.py): a second holder is refused at once (or queues,
where asked) with the first one's pid and start time; a record left by a dead process is taken
over with a log line; concurrent fixture builds no longer collide on their temporary folders."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinytrain_core import lock

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, **env) -> subprocess.Popen:
    """A child interpreter running `code` on this checkout's package."""
    full = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full)


@pytest.fixture
def holder(tmp_path):
    """A child process holding `tmp_path/x.lock` until told to go (a line on its stdin)."""
    code = ("import sys; from tinytrain_core.lock import held\n"
            f"with held({str(tmp_path / 'x.lock')!r}, 'make reproduce PROFILE=smoke'):\n"
            "    print('held', flush=True); sys.stdin.readline()\n")
    full = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=full)
    assert child.stdout.readline().strip() == "held"
    yield child
    if child.poll() is None:
        child.stdin.write("go\n")
        child.stdin.flush()
        child.wait(timeout=30)


def test_a_second_holder_is_refused_at_once_naming_the_first_one_and_the_fix(tmp_path, holder):
    with pytest.raises(lock.Busy) as e:
        with lock.held(tmp_path / "x.lock", "make reproduce PROFILE=smoke", fix="wait for it"):
            pytest.fail("two holders at once")
    msg = str(e.value)
    assert f"pid {holder.pid}" in msg and "started 20" in msg and "x.lock" in msg and msg.endswith("wait for it")


def test_a_waiting_holder_queues_behind_the_first_and_knows_whom_it_waited_for(tmp_path, holder, capsys):
    holder.stdin.write("go\n")        # the first one finishes while we wait
    holder.stdin.flush()
    with lock.held(tmp_path / "x.lock", "make data", wait=True) as got:
        assert got.waited_for is None or got.waited_for["pid"] == holder.pid
    holder.wait(timeout=30)


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_log_line(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import json
    import socket
    (tmp_path / "x.lock").write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(),
                                                 "started": "2024-01-01T00:00:00+00:00", "command": "make"}))
    with lock.held(tmp_path / "x.lock", "make reproduce PROFILE=smoke"):
        pass
    out = capsys.readouterr().out
    assert f"taking over a stale lock of pid {dead}" in out and "is gone" in out
    assert (tmp_path / "x.lock").read_text() == ""          # released cleanly: nothing left to go stale


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    with lock.held(tmp_path / "x.lock", "make data") as outer:
        with lock.held(tmp_path / "x.lock", "building the fixture") as inner:
            assert inner is outer


def test_fixture_builds_started_together_all_succeed(tmp_path):
    """Two `make fixture` at once crashed with FileExistsError on data/fixture/.fixture_base.tmp."""
    children = [_python("import sys; from tinytrain_core.data.__main__ import main; sys.exit(main(['fixture']))",
                        TINYTRAIN_DATA_DIR=str(tmp_path / "data")) for _ in range(3)]
    results = [(c.wait(timeout=300), c.stderr.read()) for c in children]
    assert [rc for rc, _ in results] == [0, 0, 0], "\n".join(err[-800:] for _, err in results)
    from tinytrain_core.data import fixture_ready
    assert fixture_ready(tmp_path / "data" / "fixture")
