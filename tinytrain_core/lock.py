"""One process at a time on shared files: an exclusive lock file that says who holds it.

    with held(path, "make reproduce PROFILE=smoke", fix="wait for it, or stop it"):   # refuses
    with held(path, "make data", wait=True):                                           # queues

Why `fcntl.flock`: the kernel drops the lock the moment its holder dies (a kill -9 included),
so no crash can leave a lock held. The holder's pid, host, start time and command are written
into the file only so that a refused or waiting process can say who is in the way. A record left
by a process that died without releasing (a kill) is stale: the next holder takes over with a
log line naming it. Releasing empties the file; it is never deleted (deleting a lock file while
another process waits on it would let two processes hold "the" lock at once).

Within one process the lock is re-entrant (a build that calls another locked build of the same
file would otherwise wait on itself).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


class Busy(RuntimeError):
    """Another live process holds the lock; the message names it (pid, start time) and the fix."""


@dataclass
class Held:
    path: Path
    waited_for: dict | None = None     # the record of the holder we queued behind, if any


_HELD: dict[str, Held] = {}


def _record(purpose: str) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join([Path(sys.executable).name, *sys.argv])}


def _read(fh) -> dict:
    fh.seek(0)
    try:
        rec = json.loads(fh.read() or "{}")
    except json.JSONDecodeError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    return True


def describe(rec: dict) -> str:
    """'pid 123 on host h (make reproduce ..., started ..., command `...`)' for messages."""
    if not rec.get("pid"):
        return "another process (it has not written its name yet)"
    where = "" if rec.get("host") == socket.gethostname() else f" on host {rec.get('host')}"
    return (f"pid {rec['pid']}{where} ({rec.get('purpose', '?')}, started {rec.get('started', '?')}, "
            f"command `{rec.get('command', '?')}`)")


def _orphaned(rec: dict, path: Path) -> str:
    """The holder recorded is dead, yet the lock is held: a process it started inherited it."""
    if rec.get("pid") and rec.get("host") == socket.gethostname() and not _alive(rec["pid"]):
        return f" (that pid is gone, but a process it started still holds the lock: `fuser {path}` names it)"
    return ""


def _try(fh) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _note_stale(path: Path, rec: dict) -> None:
    """A record we found under a lock we could take: its writer died without releasing."""
    if rec.get("pid") and rec.get("pid") != os.getpid():
        gone = "is gone" if not _alive(rec["pid"]) else "no longer holds it"
        print(f"{path}: taking over a stale lock of {describe(rec)}: that process {gone}", flush=True)


@contextlib.contextmanager
def held(path, purpose: str, fix: str = "wait for it to finish", wait: bool = False):
    """Hold the exclusive lock `path` while the block runs. Busy: raise `Busy` naming the holder
    and `fix`, or with `wait` queue behind it (saying so) and yield a `Held` whose `waited_for`
    is the holder's record (a caller may then find its work already done)."""
    path = Path(path)
    key = str(path.resolve())
    if key in _HELD:                              # re-entrant within this process
        yield _HELD[key]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+")
    try:
        lock = Held(path)
        if not _try(fh):
            holder = _read(fh)
            if not wait:
                raise Busy(f"{purpose}: refused, {path} is held by {describe(holder)}{_orphaned(holder, path)}; "
                           f"{fix}")
            print(f"{purpose}: waiting for {describe(holder)} to finish ({path})", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
            lock.waited_for = holder
        else:
            _note_stale(path, _read(fh))
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(_record(purpose)) + "\n")
        fh.flush()
        _HELD[key] = lock
        try:
            yield lock
        finally:
            del _HELD[key]
            fh.seek(0)
            fh.truncate()                          # released cleanly: no record left to go stale
            fh.flush()
    finally:
        fh.close()                                 # closing drops the flock
