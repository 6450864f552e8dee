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
  skipped, the unfinished one picks up its own rows and checkpoints. A run resumes only under
  the code it started with (the hash of tinytrain_core/ and notebooks/); otherwise it refuses
  and names `--fresh` (`make reproduce FRESH=1`).

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
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import PROFILES, project_root
from .results import read_table

KERNEL = "tinytrain"
KEEP = ("reference", "previous-run", "notebooks")     # never moved aside at a fresh start
TIMING = re.compile(r"(_s|_seconds|wall_time|_time|_share)$")   # measurements of this machine


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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
            for p in sorted(top.iterdir()):
                if top is self.results and p.name in KEEP:
                    continue
                dest = prev / sub / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                p.rename(dest)
                moved.append(f"{sub}/{p.name}")
        if moved:
            print(f"moved aside (not reused): {len(moved)} entries -> "
                  f"{prev.relative_to(self.root)}/")

    # ------------------------------------------------------------ stages

    def run_notebooks(self, progress: bool = True) -> None:
        import papermill as pm   # heavy (jupyter client); only the runs need it
        out_dir = self.results / "notebooks"
        out_dir.mkdir(parents=True, exist_ok=True)
        for nb in notebooks(self.root):
            stage = self.state["stages"].get(nb.stem, {})
            if stage.get("status") == "done":
                print(f"== {nb.name}: done earlier in this run ({stage['seconds']:.0f} s), skipped")
                continue
            print(f"== {nb.name} (profile {self.profile})", flush=True)
            self.state["stages"][nb.stem] = {"status": "running", "started": _now()}
            self.save()
            t0 = time.time()
            try:
                pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters={"profile": self.profile},
                                    kernel_name=KERNEL, cwd=str(self.root / "notebooks"),
                                    progress_bar=progress)
            except Exception as e:  # noqa: BLE001 - report, keep the run resumable
                self.state["stages"][nb.stem].update(status="failed", seconds=time.time() - t0)
                self.save()
                raise SystemExit(f"{nb.name} failed after {time.time() - t0:.0f} s: "
                                 f"{type(e).__name__}: {str(e)[-2000:]}\nsee "
                                 f"{(out_dir / nb.name).relative_to(self.root)}; fix it and rerun "
                                 "`make reproduce` to resume this run") from None
            self.state["stages"][nb.stem].update(status="done", seconds=round(time.time() - t0, 1))
            self.save()
            print(f"   {nb.name}: {time.time() - t0:.0f} s", flush=True)

    def finish(self) -> None:
        self.state.update(status="complete", finished=_now(),
                          notebook_seconds=round(sum(s.get("seconds", 0)
                                                     for s in self.state["stages"].values()), 1))
        self.save()


# ---------------------------------------------------------------- the committed notebooks

PROGRESS = re.compile(r"\d+%\||it/s\]|s/it\]")


def _noise(output: dict) -> bool:
    """A stderr stream a reader gains nothing from: a progress bar, or only whitespace (what is
    left of a bar once it closes: a lone newline, shown as an empty red box)."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    text = "".join(output.get("text", ""))
    return not text.strip() or bool(PROGRESS.search(text))


def clean_outputs(nb: dict) -> dict:
    """A notebook as it is committed: no progress-bar or empty stderr output, no papermill
    bookkeeping."""
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        cell["metadata"].pop("papermill", None)
        cell["metadata"].pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if not _noise(o)]
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    return nb


def refresh_committed(root: Path | None = None) -> None:
    """Re-execute every numbered notebook with its own (smoke) parameters in place, then clean
    its outputs: what a developer runs before committing notebooks (`make notebooks`)."""
    import papermill as pm   # heavy (jupyter client); only the runs need it
    root = Path(root or project_root())
    for nb in notebooks(root):
        t0 = time.time()
        out = Path(tempfile.mkdtemp()) / nb.name
        pm.execute_notebook(str(nb), str(out), kernel_name=KERNEL, cwd=str(root / "notebooks"),
                            progress_bar=False)
        raw = json.loads(out.read_text())
        text = json.dumps(clean_outputs(raw), indent=1, ensure_ascii=False)
        nb.write_text(text + ("\n" if nb.read_text().endswith("\n") else ""))
        shutil.rmtree(out.parent)
        print(f"{nb.name}: executed with its smoke parameters in {time.time() - t0:.0f} s, outputs cleaned")


# ---------------------------------------------------------------- comparison with the reference

# What identifies a row in our tables; other text columns (a scheme, a verdict) are results.
KEY_COLUMNS = ("model", "variant", "comparison", "left_out", "domain", "split", "episode", "method", "checkpoint",
               "lr", "conv", "memory_kib", "compute_macs", "kind", "ratio", "n_bias", "label")


def _keys(df: pd.DataFrame) -> list[str]:
    keys = [c for c in KEY_COLUMNS if c in df.columns]
    return keys or [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]


def compare_table(ref: pd.DataFrame, new: pd.DataFrame) -> dict:
    """Compare two versions of one table: rows matched on the non-numeric (and index-like)
    columns; numeric result columns compared; differences judged against the row's CI."""
    keys = [c for c in _keys(ref) if c in new.columns]
    if keys and not ref.duplicated(keys).any() and not new.duplicated(keys).any():
        both = ref.merge(new, on=keys, how="outer", suffixes=("_ref", "_new"), indicator=True)
    elif len(ref) == len(new):
        both = ref.add_suffix("_ref").join(new.add_suffix("_new"))
        both["_merge"] = "both"
    else:
        return dict(status="rows differ", rows=len(new), rows_ref=len(ref))
    only = int((both["_merge"] != "both").sum())
    both = both[both["_merge"] == "both"]
    nums = [c for c in ref.columns if c in new.columns and c not in keys
            and pd.api.types.is_numeric_dtype(ref[c]) and pd.api.types.is_numeric_dtype(new[c])]
    texts = [c for c in ref.columns if c in new.columns and c not in keys and c not in nums]
    text_changes = {c: int((both[f"{c}_ref"].fillna("").astype(str) != both[f"{c}_new"].fillna("").astype(str)).sum())
                    for c in texts}
    results = [c for c in nums if not TIMING.search(c) and "ci95" not in c]
    diffs, within, outside = {}, 0, 0
    for c in results:
        a, b = both[f"{c}_ref"].to_numpy(float), both[f"{c}_new"].to_numpy(float)
        d = np.abs(a - b)
        d[np.isnan(a) & np.isnan(b)] = 0.0
        if np.nanmax(d, initial=0) > 1e-9 * max(1.0, np.nanmax(np.abs(a), initial=0)):
            diffs[c] = float(np.nanmax(d, initial=0))
            ci = next((f"{p}_ref" for p in (f"{c}_ci95", "ci95", "diff_ci95" if c.startswith("diff") else "")
                       if p and f"{p}_ref" in both), None)
            if ci is not None:
                bad = d > both[ci].to_numpy(float)
                outside += int(np.nansum(bad))
                within += int((d > 0).sum() - np.nansum(bad))
    changed = [c for c in results if c in diffs]
    changed_text = {c: n for c, n in text_changes.items() if n}
    status = "equal" if not changed and not changed_text and not only else "differs"
    return dict(status=status, rows=len(new), rows_ref=len(ref), unmatched_rows=only,
                differing=", ".join([f"{c} (max {diffs[c]:.3g})" for c in changed]
                                    + [f"{c} ({n} rows)" for c, n in changed_text.items()]),
                within_ci=within, outside_ci=outside,
                timing_only=", ".join(c for c in nums if TIMING.search(c)))


def compare(profile: str, root: Path | None = None, quiet: bool = False) -> pd.DataFrame:
    """Every CSV of the reference against the recomputed one; printed and written."""
    run = Run(profile, root)
    ref_dir = run.results / "reference"
    rows = []
    ref_files = sorted(ref_dir.rglob("*.csv")) if ref_dir.is_dir() else []
    for f in ref_files:
        rel = f.relative_to(ref_dir)
        new = run.results / rel
        if not new.is_file():
            rows.append(dict(table=str(rel), status="not recomputed"))
            continue
        rows.append(dict(table=str(rel), **compare_table(read_table(f), read_table(new))))
    seen = {str(f.relative_to(ref_dir)) for f in ref_files}
    for f in sorted(run.results.rglob("*.csv")):
        rel = f.relative_to(run.results)
        if rel.parts[0] not in KEEP + ("previous-run",) and str(rel) not in seen and rel.name != "comparison.csv":
            rows.append(dict(table=str(rel), status="new (no reference)"))
    table = pd.DataFrame(rows)
    if len(table):
        table.to_csv(run.results / "comparison.csv", index=False)
    if not quiet:
        if not len(table):
            print(f"no committed reference tables for profile {profile}: nothing to compare")
        else:
            print(f"\ncomparison with the committed reference ({ref_dir.relative_to(run.root)}):")
            with pd.option_context("display.max_rows", 500, "display.width", 200,
                                   "display.max_colwidth", 70):
                print(table.fillna("").to_string(index=False))
            print(f"written to {(run.results / 'comparison.csv').relative_to(run.root)}")
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinytrain_core.reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default", choices=PROFILES)
    ap.add_argument("--fresh", action="store_true", help="discard an interrupted run and start over")
    ap.add_argument("--compare-only", action="store_true", help="only compare with the reference")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--refresh-committed", action="store_true",
                    help="re-execute the committed notebooks with their smoke parameters, outputs cleaned")
    a = ap.parse_args(argv)
    if a.refresh_committed:
        refresh_committed()
        return 0
    if a.compare_only:
        compare(a.profile)
        return 0
    run = Run(a.profile)
    t0 = time.time()
    run.start(fresh=a.fresh)
    run.run_notebooks(progress=not a.no_progress)
    run.finish()
    stages = run.state["stages"]
    print("\nnotebook wall times: " + ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in stages.items())
          + f" (this call {time.time() - t0:.0f} s)")
    compare(a.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
