"""A recomputed run against the committed reference, table by table: rows matched on their key
columns, numbers compared within the reference's CI, this machine's timings set aside. What
`make reproduce` prints at its end and `make compare` prints again."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .results import read_table

TIMING = re.compile(r"(_s|_seconds|wall_time|_time|_share)$")   # measurements of this machine

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


def compare(profile: str, root: Path, skip: tuple = (), quiet: bool = False) -> pd.DataFrame:
    """Every CSV of results/<profile>/reference/ against the recomputed one beside it; tables
    under the folders `skip` are not results; printed and written to comparison.csv."""
    results = root / "results" / profile
    ref_dir = results / "reference"
    rows = []
    ref_files = sorted(ref_dir.rglob("*.csv")) if ref_dir.is_dir() else []
    for f in ref_files:
        rel = f.relative_to(ref_dir)
        new = results / rel
        if not new.is_file():
            rows.append(dict(table=str(rel), status="not recomputed"))
            continue
        rows.append(dict(table=str(rel), **compare_table(read_table(f), read_table(new))))
    seen = {str(f.relative_to(ref_dir)) for f in ref_files}
    for f in sorted(results.rglob("*.csv")):
        rel = f.relative_to(results)
        if rel.parts[0] not in skip and str(rel) not in seen and rel.name != "comparison.csv":
            rows.append(dict(table=str(rel), status="new (no reference)"))
    table = pd.DataFrame(rows)
    if len(table):
        table.to_csv(results / "comparison.csv", index=False)
    if not quiet:
        if not len(table):
            print(f"no committed reference tables for profile {profile}: nothing to compare")
        else:
            print(f"\ncomparison with the committed reference ({ref_dir.relative_to(root)}):")
            with pd.option_context("display.max_rows", 500, "display.width", 200,
                                   "display.max_colwidth", 70):
                print(table.fillna("").to_string(index=False))
            print(f"written to {(results / 'comparison.csv').relative_to(root)}")
    return table
