"""Result tables: a CSV and a JSON sidecar beside it, each replaced atomically; one reader.

    write_table(df, "results/default/x.csv", config=..., seed=0, manifest_hash=...)
    -> results/default/x.csv and results/default/x.json (the provenance keywords, as given)

`read_table` is the one way to read a table back: "None" is a method's name (Table 1's
no-adaptation baseline), which pandas' default reader turns into NaN; only an empty cell is
missing.

Sidecars hold no timestamps, so a rerun on the same config and data writes identical files.
The per-task adaptation rows are not written here: they are appended row by row (`taskrows.py`).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .paths import shown


def write_json(path: str | Path, obj) -> Path:
    """Write `obj` as indented JSON via a temporary file and a rename: a kill never leaves half a
    file. Values JSON cannot hold (paths, numpy scalars) are written as their str()."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> dict:
    """A small JSON object we wrote ourselves, or {} when it is missing or unreadable (a cache
    or a sidecar: losing it costs recomputation, never correctness)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        got = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        print(f"{shown(path)} is not valid JSON (an interrupted write?); ignoring it")
        return {}
    return got if isinstance(got, dict) else {}


def sidecar_path(csv_path: str | Path) -> Path:
    return Path(csv_path).with_suffix(".json")


def write_table(df: pd.DataFrame, path: str | Path, *, float_format: str | None = None,
                **provenance) -> Path:
    """Write `df` to `path` (no index; `float_format` as pandas takes it) and `provenance` (config,
    seed, data manifest hash, notes) to the `.json` beside it. The CSV is complete before the
    sidecar is written, so a sidecar always describes a whole table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False, float_format=float_format)
    tmp.replace(path)
    write_json(sidecar_path(path), provenance)
    return path


READ = dict(keep_default_na=False, na_values=[""])   # "None" is a method name, not a missing value


def read_table(path, **kw) -> pd.DataFrame:
    """A CSV table as written by `write_table` (or the paper's): only empty cells are missing."""
    return pd.read_csv(path, **READ, **kw)
