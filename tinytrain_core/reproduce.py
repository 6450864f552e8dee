"""`make reproduce`: one run of every numbered notebook, resumable, then a comparison with the
committed reference.

    python -m tinytrain_core.reproduce --profile default [--fresh]
    python -m tinytrain_core.reproduce --profile default --compare-only
    python -m tinytrain_core.reproduce --refresh-committed     # developers: the committed notebooks

A run recomputes every table it reports. Its state lives in `results/<profile>/run.json`
(id, code hash, status, per-notebook wall times):

- no run.json, or a finished one -> a *fresh* run: the committed tables are kept aside as the
  reference (`results/<profile>/reference/`, from git HEAD when this is a checkout, else from
  disk), everything generated before (tables, per-task rows, checkpoints, figures) moves to
  `results/<profile>/previous-run/`, so nothing of it can be resumed or silently reused, and
  nothing is lost either;
- status "running" (a run that was interrupted) -> the run *resumes*: notebooks it finished are
  skipped while the files they wrote are still there unchanged (path and sha256 recorded in
  run.json; otherwise that notebook and every later one run again), the unfinished one picks
  up its own rows and checkpoints. A run resumes only under the code it started with (the hash
  of tinytrain_core/ and notebooks/); otherwise it refuses and names `--fresh` (`make reproduce
  FRESH=1`).

One run per checkout and profile at a time: `results/<profile>/.reproduce.lock` (`lock.py`) is
held for the whole run; a second one is refused at once, naming the running one. The notebooks
run with `TINYTRAIN_REPRODUCE_RUN` set, under which notebook 02/03 never let ImageNet weights
stand in for a meta checkpoint that notebook 01 trains (`adapt.Backbones`).

At the end every CSV table of the reference is compared with the recomputed one: equal, or
which columns differ, by how much, and whether each difference lies within the row's 95% CI
(columns named `ci95`/`*_ci95`), printed and written to `results/<profile>/comparison.csv`.
Wall-time columns (`*_s`, and `select_share`, a ratio of two of them) are reported apart: they
are measurements of this machine, not results.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import comparison
from .committed import clean_file, refresh_committed
from .kernelspec import KERNEL
from .lock import Busy, held
from .paths import RUN_ENV, PROFILES, project_root, notebooks

LOCK = ".reproduce.lock"
STAY = ("reference", "previous-run", LOCK)            # never moved aside at a fresh start
KEEP = STAY + ("notebooks",)                          # not results of the run: not compared, not verified


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_hash(root: Path) -> str:
    """What a resumed run must share with the run it continues: the package and notebooks."""
    h = hashlib.sha256()
    for f in sorted((root / "tinytrain_core").rglob("*.py")) + notebooks(root):
        h.update(str(f.relative_to(root)).encode())
        if f.suffix == ".ipynb":   # the cells' code and text, not their outputs
            h.update(json.dumps([c["source"] for c in json.loads(f.read_text()).get("cells", [])]).encode())
        else:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cpu_kernels() -> dict:
    from .runtime import cpu_kernels   # imports torch: only when a run starts
    return cpu_kernels()


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return r.stdout if r.returncode == 0 else None


class Run:
    """The state of one `make reproduce` run of a profile."""

    def __init__(self, profile: str, root: Path | None = None):
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r} unknown; choose one of {', '.join(PROFILES)}")
        self.profile, self.root = profile, Path(root or project_root())
        self.results = self.root / "results" / profile
        self.figures = self.root / "figures" / profile
        self.state_path = self.results / "run.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}

    def lock(self):
        """One `make reproduce` per checkout and profile: two would append the same tasks to the
        same files (duplicate rows, no run ever completes). The second is refused at once."""
        p = self.profile
        return held(self.results / LOCK, f"make reproduce PROFILE={p}",
                    fix=f"wait for that run to finish (or stop it: kill its pid), then `make reproduce "
                        f"PROFILE={p}` resumes it")

    def save(self) -> None:
        self.results.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1) + "\n")
        tmp.replace(self.state_path)

    # ------------------------------------------------------------ start / resume

    def start(self, fresh: bool = False) -> str:
        """Begin a fresh run or resume the interrupted one; returns 'fresh' or 'resumed'."""
        code = code_hash(self.root)
        if self.state.get("status") == "running" and not fresh:
            if self.state.get("code_hash") != code:
                raise SystemExit(
                    f"run {self.state['id']} of profile {self.profile} was interrupted, and the code "
                    "changed since it started (rows resumed across code changes are not one run): "
                    f"start over with `make reproduce PROFILE={self.profile} FRESH=1`")
            self._redo_changed()
            done = [s for s, v in self.state["stages"].items() if v.get("status") == "done"]
            print(f"resuming run {self.state['id']} (started {self.state['started']}); finished "
                  f"notebooks kept: {', '.join(done) or 'none'}. `FRESH=1` starts over.")
            return "resumed"
        head = _git(self.root, "rev-parse", "HEAD")
        # the code's state, taken before the committed tables move aside (that is no code change)
        dirty = _git(self.root, "status", "--porcelain", "--untracked-files=no", "--",
                     "tinytrain_core", "notebooks", "Makefile", "pyproject.toml")
        self._keep_reference()
        self._move_aside()
        self.state = {"id": uuid.uuid4().hex[:8], "profile": self.profile, "status": "running",
                      "started": _now(), "code_hash": code,
                      "git_commit": head.strip() if head else None,
                      "git_dirty": bool(dirty.strip()) if dirty is not None else None,
                      "cpu_kernels": _cpu_kernels(),
                      "stages": {}}
        self.save()
        print(f"fresh run {self.state['id']} of profile {self.profile}: every table is recomputed")
        return "fresh"

    def _keep_reference(self) -> None:
        """The committed tables, as they are in git HEAD (or on disk when this is no checkout)."""
        ref = self.results / "reference"
        shutil.rmtree(ref, ignore_errors=True)
        rel = f"results/{self.profile}/"
        listed = _git(self.root, "ls-files", "-z", "--", rel)
        if listed is not None:
            for path in filter(None, listed.split("\0")):
                blob = subprocess.run(["git", "-C", str(self.root), "show", f"HEAD:{path}"],
                                      capture_output=True)
                if blob.returncode == 0:
                    out = ref / path[len(rel):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(blob.stdout)
        elif self.results.is_dir():
            for f in self.results.rglob("*"):
                rel_f = f.relative_to(self.results)
                if f.is_file() and rel_f.parts[0] not in KEEP + ("checkpoints", "run.json"):
                    (ref / rel_f).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, ref / rel_f)
        n = sum(1 for _ in ref.rglob("*.csv")) if ref.is_dir() else 0
        print(f"reference: {n} committed tables kept in {ref.relative_to(self.root)}")

    def _move_aside(self) -> None:
        """Everything generated before moves to previous-run/ (replacing an older one)."""
        prev = self.results / "previous-run"
        shutil.rmtree(prev, ignore_errors=True)
        moved = []
        for top, sub in ((self.results, "results"), (self.figures, "figures")):
            if not top.is_dir():
                continue
            for p in sorted(top.iterdir()):    # the last run's executed notebooks too
                if top is self.results and p.name in STAY:
                    continue
                dest = prev / sub / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                p.rename(dest)
                moved.append(f"{sub}/{p.name}")
        if moved:
            print(f"moved aside (not reused): {len(moved)} entries -> "
                  f"{prev.relative_to(self.root)}/")

    # ------------------------------------------------------------ what a finished notebook left

    def _spans(self, stem: str) -> list[tuple[int, int]]:
        """[start, end] in ns of each attempt of `stem`; one that never ended (killed) ends where
        the next attempt of any notebook began. Notebooks run one at a time, so the file
        times in these spans are exactly what `stem` wrote."""
        starts = sorted(a[0] for st in self.state["stages"].values() for a in st.get("attempts", []))
        return [(a, b if b is not None else min((s for s in starts if s > a), default=time.time_ns()))
                for a, b in self.state["stages"][stem].get("attempts", [])]

    def _written(self, spans: list[tuple[int, int]]) -> dict:
        """{path: sha256} of the run's files (results/ and figures/ of the profile, bookkeeping
        aside) last modified within one of `spans`."""
        out = {}
        for top in (self.results, self.figures):
            for f in sorted(top.rglob("*")) if top.is_dir() else []:
                rel = f.relative_to(top)
                if top is self.results and (rel.parts[0] in KEEP or str(rel) in ("run.json", "run.tmp",
                                                                                  "comparison.csv")):
                    continue
                if f.is_file() and any(a <= f.stat().st_mtime_ns <= b for a, b in spans):
                    out[str(f.relative_to(self.root))] = _sha256(f)
        return out

    def _record_outputs(self, stem: str) -> None:
        """Record what `stem` wrote; a file it rewrote is its own, no more an earlier one's."""
        outputs = self._written(self._spans(stem))
        for other, st in self.state["stages"].items():
            if other != stem and "outputs" in st:
                st["outputs"] = {p: h for p, h in st["outputs"].items() if p not in outputs}
        self.state["stages"][stem]["outputs"] = outputs

    def _first_changed(self) -> tuple[str, list[str]] | None:
        """The first finished notebook whose recorded outputs are missing or changed, and which."""
        for nb in notebooks(self.root):
            st = self.state["stages"].get(nb.stem, {})
            if st.get("status") == "done":
                bad = [p for p, h in st.get("outputs", {}).items()
                       if not (self.root / p).is_file() or _sha256(self.root / p) != h]
                if bad:
                    return nb.stem, bad
        return None

    def _redo_changed(self) -> None:
        """A finished notebook is skipped on resume only while what it wrote is still there and
        unchanged: the notebooks after it read those files (a deleted meta checkpoint would
        otherwise end as ImageNet weights under the meta name). It and every later one rerun."""
        found = self._first_changed()
        if not found:
            return
        stem, bad = found
        names = [nb.stem for nb in notebooks(self.root)]
        redo = names[names.index(stem):]
        for s in redo:
            if s in self.state["stages"]:
                self.state["stages"][s]["status"] = "redo"
        self.save()
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        print(f"{stem} finished earlier in this run, but {len(bad)} of the files it wrote are missing or "
              f"changed since ({shown}): running {', '.join(redo)} again")

    # ------------------------------------------------------------ stages

    def run_notebooks(self, progress: bool = True) -> None:
        """Every notebook not done yet, with RUN_ENV set for their kernels to inherit (adapt then
        refuses ImageNet weights in place of a meta checkpoint notebook 01 trains)."""
        before = os.environ.get(RUN_ENV)
        os.environ[RUN_ENV] = self.state["id"]
        try:
            self._run_notebooks(progress)
        finally:
            if before is None:
                os.environ.pop(RUN_ENV, None)
            else:
                os.environ[RUN_ENV] = before

    def _run_notebooks(self, progress: bool) -> None:
        import papermill as pm   # heavy (jupyter client); only the runs need it
        out_dir = self.results / "notebooks"
        out_dir.mkdir(parents=True, exist_ok=True)
        for nb in notebooks(self.root):
            stage = self.state["stages"].get(nb.stem, {})
            if stage.get("status") == "done":
                print(f"== {nb.name}: done earlier in this run ({stage['seconds']:.0f} s), skipped")
                continue
            print(f"== {nb.name} (profile {self.profile})", flush=True)
            attempts = stage.get("attempts", []) + [[time.time_ns(), None]]   # earlier attempts' files count
            self.state["stages"][nb.stem] = {"status": "running", "started": _now(), "attempts": attempts}
            self.save()
            t0 = time.time()
            try:
                pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters={"profile": self.profile},
                                    kernel_name=KERNEL, cwd=str(self.root / "notebooks"),
                                    progress_bar=progress)
            except Exception as e:  # noqa: BLE001 - report, keep the run resumable
                self.state["stages"][nb.stem].update(status="failed", seconds=time.time() - t0)
                attempts[-1][1] = time.time_ns()
                self.save()
                raise SystemExit(f"{nb.name} failed after {time.time() - t0:.0f} s: "
                                 f"{type(e).__name__}: {str(e)[-2000:]}\nsee "
                                 f"{(out_dir / nb.name).relative_to(self.root)}; fix it and rerun "
                                 "`make reproduce` to resume this run") from None
            if (out_dir / nb.name).is_file():      # as committed: no progress bars, the profile kept
                clean_file(out_dir / nb.name, keep_parameters=True)
            self.state["stages"][nb.stem].update(status="done", seconds=round(time.time() - t0, 1))
            attempts[-1][1] = time.time_ns()
            self._record_outputs(nb.stem)
            self.save()
            print(f"   {nb.name}: {time.time() - t0:.0f} s", flush=True)

    def finish(self) -> None:
        self.state.update(status="complete", finished=_now(),
                          notebook_seconds=round(sum(s.get("seconds", 0)
                                                     for s in self.state["stages"].values()), 1))
        self.save()


def compare(profile: str, root: Path | None = None, quiet: bool = False) -> pd.DataFrame:
    """Every CSV of the committed reference kept by the last fresh run against the recomputed one
    (`comparison.compare`), its own bookkeeping (notebooks, the set-aside previous run) aside."""
    return comparison.compare(profile, Path(root or project_root()), KEEP + ("previous-run",), quiet)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinytrain_core.reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default", choices=PROFILES)
    ap.add_argument("--fresh", action="store_true", help="discard an interrupted run and start over")
    ap.add_argument("--compare-only", action="store_true", help="only compare with the reference")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--check-lock", action="store_true",
                    help="only refuse (exit 1) when a run of this profile holds the lock: `make reproduce` "
                         "asks before `make data`, so that a second run touches nothing")
    ap.add_argument("--refresh-committed", action="store_true",
                    help="re-execute the committed notebooks with their smoke parameters, outputs cleaned")
    a = ap.parse_args(argv)
    try:
        if a.refresh_committed:      # writes results/smoke/ as a smoke run does
            with Run("smoke").lock():
                refresh_committed()
            return 0
        if a.compare_only:
            compare(a.profile)
            return 0
        run = Run(a.profile)
        with run.lock():
            return 0 if a.check_lock else _reproduce(run, a.fresh, progress=not a.no_progress)
    except Busy as e:
        raise SystemExit(str(e)) from None


def _reproduce(run: Run, fresh: bool, progress: bool) -> int:
    t0 = time.time()
    run.start(fresh=fresh)
    run.run_notebooks(progress=progress)
    run.finish()
    stages = run.state["stages"]
    print("\nnotebook wall times: " + ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in stages.items())
          + f" (this call {time.time() - t0:.0f} s)")
    compare(run.profile, run.root)
    return 0

if __name__ == "__main__":
    sys.exit(main())
