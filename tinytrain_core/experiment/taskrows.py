"""The per-task results store of `adapt.run`: one CSV per (profile, model, domain), appended
row by row, that survives kills and never serves rows made under another key.

    results/<profile>/adapt/<model>/<domain>.csv    one row per task: FIELDS
    results/<profile>/adapt/<model>/<domain>.json   what each row `key` stands for
    results/<profile>/adapt/<model>/<domain>.rowhash   a content hash of every row written (`row_hash`)
    results/<profile>/adapt/<model>/<domain>.stale-<UTC time>.csv (+ .json)   rows set aside

A row is a test task (split "test": one per episode and arm, an arm being a method run from a
checkpoint) or a validation task (split "val": one per episode, arm and learning rate tried).
A row's `key` hashes what made it (the method's config, the content of the checkpoint its
backbone loaded, the build of the domain; `adapt.row_key`). `resume` brings a CSV to a state a
run can append to: a file cut short by a kill (empty, or a torn last line) is repaired, rows of
the run's methods under another key (or from before rows carried keys) are moved to a
timestamped archive with a message saying why, rows of other methods are left alone. The
sidecar describes exactly the keys present (`infos`: arm -> the description `adapt` makes:
key, config_key, checkpoint, checkpoint_id, domain_hash, ...); it never decides a resume.

Row hashes: a row is resumed only if it is, byte for byte, a row this code wrote: `.rowhash`
holds one hash per row written (appended just before the row), and `resume` refuses a row whose
hash is not there (an accuracy edited by hand), naming the file, the row and the fix. The hashes
live beside the CSV, not in it, so the CSVs and every table computed from them are unchanged.
Legacy policy: a CSV without a `.rowhash` (written before row hashes, e.g. the committed rows)
is accepted as it is; its rows are hashed the next time the file is written, and checked from
then on. A row appearing twice under one key (two runs appending at once) is refused as well.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..paths import results_dir, shown
from ..results import read_json, read_table, sidecar_path, write_json

COLUMNS = ["split", "domain", "episode", "ways", "shots", "queries", "method", "checkpoint", "lr", "accuracy",
           "backward_macs", "backward_kib", "select_s", "train_s", "n_layers", "scheme"]
FIELDS = COLUMNS + ["key"]           # a results CSV; the frames we return leave `key` out
REQUIRED = ("domain", "episode", "method", "accuracy")
VARIANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}")


def arm(row) -> tuple[str, str]:
    """(method, checkpoint) of a row."""
    return row["method"], row["checkpoint"]


def identity(row) -> tuple:
    """What a row is the result of, within its arm's key: (split, episode, method, checkpoint),
    plus the learning rate tried for a validation row."""
    split = row.get("split") or "test"
    lr = float(row["lr"]) if split == "val" else None
    return split, int(row["episode"]), row["method"], row["checkpoint"], lr


def out_dir(profile: str, model: str, variant: str = "") -> Path:
    """adapt/<model>/ (notebook 02), or ablations/<model>/<variant>/ for an ablation arm (03)."""
    if variant and not VARIANT.fullmatch(variant):
        raise ValueError(f"variant {variant!r}: use letters, digits, '.', '_' and '-' only")
    d = results_dir(profile) / ("ablations" if variant else "adapt") / model / variant
    d.mkdir(parents=True, exist_ok=True)
    return d


class BadResults(ValueError):
    """A results CSV that cannot be read; the message names the file and what to do."""


@dataclass
class _Table:
    """A results CSV as read: its header, its complete rows (raw strings by column), and what
    was wrong with it when it needs rewriting (empty, a torn last line)."""
    header: list[str]
    rows: list[dict]
    note: str | None = None


def _bad(path: Path, why: str) -> BadResults:
    return BadResults(f"{shown(path)} cannot be read as adaptation results: {why}. Move it aside (or delete "
                      "it and its .json) and rerun: its tasks are computed again")


def _row(record: list[str], header: list[str]) -> dict | None:
    """The record as {column: text} when it is a complete row, else None."""
    if len(record) != len(header):
        return None
    row = dict(zip(header, record))
    try:
        int(row["episode"])
        float(row["accuracy"])
    except ValueError:
        return None
    return row if row["method"] else None


def _parse(path: Path) -> _Table:
    """Read a results CSV without trusting that its writer finished: an empty file (killed before
    its first row) is no rows, a torn last line (killed mid-write: no newline, missing fields,
    unparsable) is left out; anything else malformed raises BadResults naming the file."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise _bad(path, f"not text ({e})") from None
    if not text.strip():
        return _Table(FIELDS, [], "empty (a run stopped before its first row); starting it afresh")
    try:
        records = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as e:
        raise _bad(path, str(e)) from None
    header, body = records[0], records[1:]
    if not set(REQUIRED) <= set(header):
        if not body and not text.endswith("\n") and ",".join(FIELDS).startswith(text):
            return _Table(FIELDS, [], "a torn header and no rows (a run stopped mid-write); starting afresh")
        raise _bad(path, f"its header {','.join(header)[:80]!r} lacks the columns {', '.join(REQUIRED)}")
    rows, note = [], None
    for i, record in enumerate(body):
        row = _row(record, header)
        if i == len(body) - 1 and (row is None or not text.endswith("\n")):
            note = (f"dropped a torn last line {','.join(record)[:60]!r}… (a run stopped mid-write); "
                    "that task is computed again")
        elif row is None:
            raise _bad(path, f"row {i + 1} ({','.join(record)[:60]!r}…) has missing or unreadable fields")
        else:
            rows.append(row)
    return _Table(header, rows, note)


def hashes_path(csv_path: Path) -> Path:
    """`<domain>.rowhash` beside `<domain>.csv`: one row hash per line."""
    return Path(csv_path).with_suffix(".rowhash")


def row_hash(row: dict) -> str:
    """16 hex digits over the row's FIELDS as the CSV holds them (text; a missing field is "")."""
    return hashlib.sha256("\x1f".join(str(row.get(f) or "") for f in FIELDS).encode()).hexdigest()[:16]


def _line(row: dict) -> tuple[str, str]:
    """(the CSV line of `row`, its hash): the hash is taken of the text read back from that line."""
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=FIELDS).writerow(row)
    line = buf.getvalue()
    return line, row_hash(dict(zip(FIELDS, next(csv.reader(io.StringIO(line))))))


def _profile_of(path: Path) -> str:
    parts = Path(path).parts
    return parts[parts.index("results") + 1] if "results" in parts[:-1] else "<profile>"


def _where(path: Path, i: int, row: dict) -> str:
    lr = f", lr {row.get('lr')}" if (row.get("split") or "test") == "val" else ""
    return (f"row {i + 1} ({row.get('split') or 'test'} episode {row.get('episode')}, {row.get('method')} from "
            f"{row.get('checkpoint')}{lr}, accuracy {row.get('accuracy')})")


def _fix(path: Path) -> str:
    return (f"delete that row from {path} (its task is computed again), or start over with "
            f"`make reproduce PROFILE={_profile_of(path)} FRESH=1`")


def _check_rows(path: Path, rows: list[dict]) -> None:
    """Refuse rows this code did not write as they are (hash unknown: edited by hand) and a task
    present twice under one key (two runs appended at once). No `.rowhash`: legacy, accepted."""
    side = hashes_path(path)
    known = set(side.read_text().split()) if side.is_file() else None
    seen = {}
    for i, r in enumerate(rows):
        if known is not None and row_hash(r) not in known:
            raise BadResults(f"{path}: {_where(path, i, r)} is not a row this code wrote (its content hash is "
                             f"not in {side.name}: edited by hand?), so it cannot be reused; {_fix(path)}")
        task = (r.get("key") or "", identity(r))
        if task in seen:
            raise BadResults(f"{path}: {_where(path, i, r)} repeats row {seen[task] + 1}, the same task "
                             f"under the same key (two runs appended to this file at once?); {_fix(path)}")
        seen[task] = i


def _write_hashes(csv_path: Path, rows: list[dict]) -> None:
    side = hashes_path(csv_path)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text("".join(row_hash(r) + "\n" for r in rows))
    tmp.replace(side)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as the DataFrame callers see: COLUMNS, typed as pandas reads the CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    buf.seek(0)
    # "None" is a method name here, not a missing value
    return read_table(buf)


def read_rows(path) -> pd.DataFrame:
    """The complete rows of a results CSV (old files without a key column included)."""
    return rows_frame(_parse(Path(path)).rows)


def _write_rows(path: Path, rows: list[dict], hashes: bool = True) -> None:
    """Replace `path` with exactly these rows (FIELDS header), via a temporary file; then their
    hashes (after: a kill in between leaves more hashes than rows, never a row without one)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    if hashes:
        _write_hashes(path, rows)


def _described(csv_path: Path) -> dict:
    """{key: description} from the sidecar (empty for a missing or older-format sidecar)."""
    keys = read_json(sidecar_path(csv_path)).get("keys", {})
    return keys if isinstance(keys, dict) else {}


def write_sidecar(csv_path: Path, domain: str, present: set, infos: dict) -> None:
    """Describe exactly the keys of the rows now in the CSV (`present`; "" for rows from before
    keys existed): this run's description of a key, else the one the sidecar already held.
    No rows -> no sidecar."""
    side = sidecar_path(csv_path)
    if not present:
        side.unlink(missing_ok=True)
        return
    old = read_json(side)
    mine, described = {i["key"]: i for i in infos.values()}, _described(csv_path)
    keys = {k: mine.get(k) or described[k] for k in sorted(present - {""}) if k in mine or k in described}
    body = {"domain": domain, "keys": keys}
    if "" in present:        # keyless rows kept (methods outside the run): keep what was said of them
        body["legacy"] = old.get("legacy") if "keys" in old else old
    write_json(side, body)


def _archive_path(csv_path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest, n = csv_path.with_name(f"{csv_path.stem}.stale-{stamp}.csv"), 2
    while dest.exists():
        dest, n = csv_path.with_name(f"{csv_path.stem}.stale-{stamp}-{n}.csv"), n + 1
    return dest


def _is_archive(path: Path) -> bool:
    return ".stale-" in path.name


def _why_stale(old: dict | None, new: dict) -> str:
    """Why rows of `old`'s key do not count under `new` (two sidecar descriptions)."""
    if old is None:
        return "made under another config, checkpoint content or domain build"
    why = []
    if old.get("checkpoint_id") != new["checkpoint_id"]:
        why.append(f"checkpoint {new['checkpoint']!r} is now {new['checkpoint_id']} "
                   f"(was {old.get('checkpoint_id')})")
    if old.get("domain_hash") != new["domain_hash"]:
        why.append("the domain was rebuilt")
    if old.get("config_key") != new["config_key"]:
        why.append("the config changed")
    return ", ".join(why) or "made under another key"


def _set_aside(csv_path: Path, stale: list[dict], infos: dict) -> Path:
    """Move `stale` rows to a timestamped archive beside the CSV (with a copy of the sidecar
    that describes them) and say how many of which method, and why."""
    dest = _archive_path(csv_path)
    _write_rows(dest, stale, hashes=False)
    if sidecar_path(csv_path).is_file():
        shutil.copyfile(sidecar_path(csv_path), dest.with_suffix(".json"))
    described = _described(csv_path)
    reasons = Counter()
    for r in stale:
        key = r.get("key") or ""
        why = ("older format: written before rows carried a key" if not key
               else _why_stale(described.get(key), infos[arm(r)]))
        reasons[(f"{r['method']} from {r['checkpoint']}", why)] += 1
    for (what, why), n in sorted(reasons.items()):
        print(f"{csv_path}: set aside {n} row(s) of {what} ({why}) in {dest.name}; computing them again")
    return dest


def resume(csv_path: Path, infos: dict) -> tuple[set, set]:
    """Bring the CSV to a state this run can append to: repaired if a kill cut it short, rows of
    this run's arms made under another key set aside, old-format files given the key column.
    Returns (the `identity` of each row done under the current keys, the keys of rows kept)."""
    if not csv_path.is_file():
        return set(), set()
    table = _parse(csv_path)
    if table.note:
        print(f"{csv_path}: {table.note}")
    _check_rows(csv_path, table.rows)
    want = {a: i["key"] for a, i in infos.items()}

    def is_stale(r):
        return arm(r) in want and (r.get("key") or "") != want[arm(r)]
    stale = [r for r in table.rows if is_stale(r)]
    keep = [r for r in table.rows if not is_stale(r)]
    if stale:
        _set_aside(csv_path, stale, infos)      # the archive is complete before rows leave the CSV
    if stale or table.note or table.header != FIELDS:
        _write_rows(csv_path, keep)
    done = {identity(r) for r in keep if arm(r) in want}
    return done, {r.get("key") or "" for r in keep}


class RowWriter:
    """Appends rows to a results CSV, each flushed as it is written, its hash first (a kill
    between the two leaves a hash without its row: harmless). The file (with its header) is
    created with its first row, so a run that fails before any row leaves nothing behind."""

    def __init__(self, path: Path):
        self.path, self.fh, self.writer, self.hashes = path, None, None, None

    def write(self, row: dict) -> None:
        if self.fh is None:
            self._open()
        line, digest = _line(row)
        self.hashes.write(digest + "\n")
        self.hashes.flush()
        self.fh.write(line)
        self.fh.flush()

    def _open(self) -> None:
        new = not self.path.is_file()
        if not new and not hashes_path(self.path).is_file():     # legacy rows: hashed from now on
            _write_hashes(self.path, _parse(self.path).rows)
        self.hashes = hashes_path(self.path).open("a", encoding="utf-8")
        self.fh = self.path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.fh, fieldnames=FIELDS)
        if new:
            self.writer.writeheader()

    def close(self) -> None:
        for fh in (self.fh, self.hashes):
            if fh is not None:
                fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_rows(path: Path) -> list[dict]:
    """The rows of a results CSV as its writer wrote them (text fields, `key` included)."""
    return _parse(Path(path)).rows


def load_rows(profile: str, model: str, domains=None, split: str | None = "test", variant: str = "") -> pd.DataFrame:
    """The rows of `split` ("test", "val"; None: both) of every domain's results CSV (or of
    `domains`); archives of set-aside rows and the other tables in the folder are not rows."""
    d = out_dir(profile, model, variant)
    return rows_in([d / f"{x}.csv" for x in domains] if domains else row_files(d), split)


def row_files(folder: Path) -> list[Path]:
    """The per-domain results CSVs of a folder: not archives, not the analysis tables (TABLES)."""
    return [f for f in sorted(Path(folder).glob("*.csv")) if not _is_archive(f) and f.stem not in TABLES]


def rows_in(files, split: str | None = "test") -> pd.DataFrame:
    """The rows of `split` (None: all) of these results CSVs (missing files: none); rows from
    before the split column count as test rows."""
    frames = [read_rows(f) for f in map(Path, files) if f.is_file()]
    rows = pd.concat(frames, ignore_index=True) if frames else rows_frame([])
    return rows if split is None else rows[rows.split.astype(object).fillna("test") == split].reset_index(drop=True)


# notebook 02's analysis tables beside the rows (not rows themselves)
TABLES = ("summary", "paired", "lr_validation", "schemes", "leave_one_out", "budget_sweep", "size_sweep",
          "sparse_search", "power_plan")
