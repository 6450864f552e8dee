"""MiniImageNet (the paper's base domain) as a domain: `convert_miniimagenet`.

MiniImageNet: either layout in LAYOUTS (the csv one wins if both are present); splits are the
layout's. Names in the csv files must stay inside images/ (no absolute paths, '..' or links
out), else nothing is written; a row naming a missing image is skipped and reported. A csv
file must be UTF-8 and every row must have a label (else refused, naming file and line). As in
byo, symbolic links are refused in both layouts (split and class folders, images; images/ and
the csv files themselves may be links), and one file listed twice is imported once, under its
first class, with a warning (manifest: duplicate_files).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from PIL import ImageFile
from tqdm import tqdm

from .byo import (LINKS_REFUSED, _entries, _read, check_source, class_folders, class_ids, not_a_link,
                  repeated_files, report_repeats)
from .convert import _domain_parent, _finish
from .domains import MINI_COLLECTION, REAL_BASE, SPLITS
from .sources.common import DomainWriter

LAYOUTS = ("MiniImageNet must be in one of two layouts: (a) Ravi & Larochelle's: src/images/*.jpg "
           "with src/train.csv, src/val.csv and src/test.csv, each with the header "
           "'filename,label'; or (b) class folders: src/train/<wnid>/*.jpg, src/val/<wnid>/*.jpg "
           "and src/test/<wnid>/*.jpg")


def _inside(images: Path, filename: str, where: str) -> Path:
    """`images/filename`, refusing names that could leave `images` (absolute, '..', links) and
    any symbolic link on the way (the rule of the folder layout and of byo, `not_a_link`)."""
    p = Path(filename)
    if not filename or p.is_absolute() or "\\" in filename or ".." in p.parts:
        raise ValueError(f"{where}: file name {filename!r} is not a plain name inside images/; "
                         "refused (nothing written)")
    full = images / p
    if full.exists() and images.resolve() not in full.resolve().parents:
        raise ValueError(f"{where}: {filename!r} resolves outside images/; refused (nothing written)")
    if full.exists() and full.resolve() != images.resolve() / p:
        raise ValueError(f"{where}: {full} is or passes through a symbolic link: {LINKS_REFUSED}")
    return full


def _csv_text(f: Path) -> str:
    """The text of csv file `f`; a file that is not UTF-8 is refused naming its line and byte
    (Python's own error names neither the file nor the line)."""
    raw = f.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{f} line {line}: byte {raw[e.start]:#04x} (file offset {e.start}) is not "
                         "UTF-8; save the file as UTF-8 (its names are plain ASCII in the original "
                         "MiniImageNet) and convert again") from None


def _read_csv(src: Path, split: str) -> list[tuple[Path, str]]:
    f = src / f"{split}.csv"
    rows = list(csv.reader(io.StringIO(_csv_text(f), newline="")))
    if not rows or [h.strip() for h in rows[0]] != ["filename", "label"]:
        raise ValueError(f"{f}: the header must be 'filename,label'. {LAYOUTS}")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not row[1].strip():
            raise ValueError(f"{f} line {i}: expected 'filename,label', got {row!r}")
        out.append((_inside(src / "images", row[0].strip(), f"{f} line {i}"), row[1].strip()))
    return out


def _layout(src: Path) -> tuple[str, dict[str, list[tuple[Path, str]]]]:
    """('csv' | 'folders', {split: [(image path, wnid)]}); ValueError naming both layouts."""
    if (src / "images").is_dir() and all((src / f"{s}.csv").is_file() for s in SPLITS):
        return "csv", {s: _read_csv(src, s) for s in SPLITS}
    if all((src / s).is_dir() for s in SPLITS):
        items = {}
        for s in SPLITS:   # links refused (split and class folders, images), as in byo
            items[s] = [(f, d.name) for d in class_folders(not_a_link(src / s)) for f in _entries(d)[0]]
        return "folders", items
    raise ValueError(f"{src} is not a MiniImageNet folder. {LAYOUTS}")


def convert_miniimagenet(src, name: str = REAL_BASE, force: bool = False, parent=None) -> dict:
    """Convert MiniImageNet (either layout, see LAYOUTS) into the base domain `name`; splits are
    the layout's (64/16/20 classes in Ravi & Larochelle's). A csv row naming a missing or
    unreadable image is skipped and listed in the manifest's `skipped_files`."""
    parent = _domain_parent(name, parent, force)
    root = Path(src).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{src} is not a folder. {LAYOUTS}")
    root = check_source(root, parent / name)
    layout, items = _layout(root)
    split_of: dict[str, str] = {}
    for s in SPLITS:
        for _, wnid in items[s]:
            if split_of.setdefault(wnid, s) != s:
                raise ValueError(f"class {wnid!r} is in both {split_of[wnid]} and {s}; the splits "
                                 "must not share classes")
    ids = class_ids(sorted(split_of))
    later, repeats = repeated_files([path for s in SPLITS for path, _ in items[s]])
    report_repeats(repeats)
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    w = DomainWriter(name, parent)
    bad, position = [], -1
    try:
        for s in SPLITS:
            for path, wnid in tqdm(items[s], desc=f"convert miniimagenet {s}", unit="img", mininterval=2):
                position += 1
                if position in later:
                    continue
                try:
                    im = _read(path)
                except Exception as e:  # noqa: BLE001 - a missing or unreadable image is skipped
                    bad.append(str(path))
                    if len(bad) <= 20:
                        print(f"skipping {path}: {type(e).__name__}: {e}")
                    continue
                w.add(ids[wnid], im, fit="resize", dedup=False, drop_blank=False)
        splits = {s: sorted({ids[wn] for _, wn in items[s]}) for s in SPLITS}
        return _finish(w, name, "base", "MiniImageNet (meta-training)", splits,
                       {"name": f"MiniImageNet ({layout} layout) from {root.resolve()}",
                        "version": "n/a", "licence": "ImageNet terms of access"},
                       labels={ids[wn]: wn for wn in split_of},
                       description=f"MiniImageNet converted from {root}", collection=MINI_COLLECTION,
                       layout=layout, skipped_files=bad, **({"duplicate_files": repeats} if repeats else {}))
    except BaseException:
        w.abort()
        raise
