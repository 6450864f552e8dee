"""Bring your own domain: any folder with one subfolder of images per class becomes a domain.

    python -m tinytrain_core.data domain --src path/to/folder --name mydomain [--force]
    # or: from tinytrain_core.data import import_folder; import_folder("path", "mydomain")

Images of any size and any format Pillow reads (16-bit greyscale included) are converted to the
common on-disk format (128 px RGB PNG, aspect kept by padding with white) under
`data/domains/<name>/`, with a generated manifest and class split, after which every notebook
can use the domain by name.

What is refused (ValueError / FileNotFoundError / FileExistsError, nothing written): a domain
name that is not a plain lowercase folder name, a source that is not a folder or overlaps the
domain's own folder, an existing domain unless `force=True`, a folder with no readable image,
a domain with fewer test classes than an episode has ways (`EpisodeConfig.min_ways`), and a
symbolic link among the class folders or inside one (`not_a_link`: a class folder linked to
/etc would import every file there; the source folder itself may be a link).

One file under two names (a hard link; in convert.py's csv layout also a row listed twice) is
imported once, under the first class that lists it, with a warning, and recorded in the
manifest's `duplicate_files`: imported twice, one image could be both support and query.
Separate files with equal content are kept (they are separate images to the sampler).

What is skipped and reported (and recorded in manifest.json under `skipped_files`,
`skipped_classes`, `nested_folders`): corrupt or truncated files, class folders left empty,
and folders nested inside a class folder; only the images directly inside a class folder are
imported, so a hierarchy (alphabet/character) is never silently merged into one class. Classes
with fewer than `min_images` images are dropped and reported.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile
from tqdm import tqdm

from .domains import BUILTIN, FIXTURE, domains_dir, split_classes
from .episodes import EpisodeConfig

ROLES = ("target", "base")
MIN_WAYS = EpisodeConfig().min_ways
NAME_RULE = ("use 1-64 characters from lowercase a-z, 0-9, '_', '-' and '.', starting and ending "
             "with a letter or digit, without '..' (the name becomes a folder name and a make "
             "argument, so quotes, slashes, spaces and shell characters are refused)")
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?")
_WIDE_GREY = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


# ---------------------------------------------------------------- validating the request

def check_domain_name(name: str) -> str:
    """`name` if it is a safe, free domain name; it becomes a folder and a make argument, so
    anything beyond a plain lowercase slug is refused rather than cleaned up."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"domain name {name!r} is not allowed: {NAME_RULE}")
    if name in BUILTIN or name in FIXTURE:
        raise ValueError(f"domain name {name!r} is taken by a built-in domain; choose another name")
    return name


def check_source(src, dest: Path) -> Path:
    """The class-folder root `src` as a Path. Refuses control characters (they would corrupt
    the printed report and the manifest) and a source overlapping the domain folder `dest`
    (the import would read its own output, or replacing the domain would delete the source)."""
    if any(unicodedata.category(ch) == "Cc" for ch in str(src)):
        raise ValueError(f"source path {str(src)!r} contains control characters; rename it")
    path = Path(src).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{src} is not a folder of class subfolders")
    real, out = path.resolve(), dest.resolve()
    if real == out or out in real.parents or real in out.parents:
        raise ValueError(f"source {src} overlaps the domain folder {dest}; import from a folder "
                         "outside the data directory")
    return path


def _split_rule(role: str, fractions) -> str:
    """How `split_classes` divides a domain's classes, in words, for error messages."""
    train, val = fractions or ((0.64, 0.16) if role == "base" else (0.0, 0.2))
    head = f"{train:.0%} of its classes in train, " if train else ""
    return f"{head}{val:.0%} (at least 5) in val and the rest in test"


def _classes_needed(role: str, fractions, limit: int = 500) -> int | None:
    """The fewest classes whose split leaves MIN_WAYS test classes (None: not within `limit`)."""
    for n in range(MIN_WAYS, limit + 1):
        if len(split_classes([f"c{i}" for i in range(n)], role, 0, fractions)["test"]) >= MIN_WAYS:
            return n
    return None


def check_splits(name: str, splits: dict, role: str, fractions, min_images: int) -> None:
    """Refuse a split with fewer test classes than an episode has ways: such a domain would be
    listed as a target and break adaptation and evaluation later, far from the cause."""
    have = len(splits["test"])
    if have >= MIN_WAYS:
        return
    need = _classes_needed(role, fractions)
    needs = (f"it needs at least {need} classes" if need else
             f"these fractions never leave {MIN_WAYS} test classes; it needs other fractions")
    sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    raise ValueError(
        f"domain {name!r} not written: it would have {have} test classes, but episodes need at "
        f"least {MIN_WAYS} (EpisodeConfig.min_ways). A {role} domain puts {_split_rule(role, fractions)}, "
        f"so {needs} with >= {min_images} readable images each; found "
        f"{sum(len(v) for v in splits.values())} ({sizes}). Add class folders.")


# ---------------------------------------------------------------- class ids

def _ascii_slug(folder: str) -> tuple[str, bool]:
    """Lowercase ASCII slug of a folder name (accents dropped: 'Café' -> 'cafe'), and whether
    it kept every letter (False when a script without ASCII letters was dropped)."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", folder) if not unicodedata.combining(ch))
    slug = re.sub(r"[^a-z0-9_]+", "-", plain.encode("ascii", "ignore").decode().lower())
    return slug.strip("-_")[:48].strip("-_"), plain.isascii()


def _short_hash(folder: str) -> str:
    return hashlib.sha1(unicodedata.normalize("NFC", folder).encode()).hexdigest()[:8]


def class_ids(folders: list[str]) -> dict[str, str]:
    """Folder name -> class id: a readable ASCII slug, unique within the domain and safe as a
    folder name on any file system (no dots, so never 'manifest.json'). A slug that drops
    letters ('猫', 'кошка 2') or that two folders share ('Cat', 'cat') gets a short hash of the
    folder name appended ('class-<hash>' when nothing ASCII is left), so no class merges."""
    slugs = {f: _ascii_slug(f) for f in folders}
    shared = Counter(slug for slug, _ in slugs.values())
    ids = {f: slug if slug and whole and shared[slug] == 1 else f"{slug or 'class'}-{_short_hash(f)}"
           for f, (slug, whole) in slugs.items()}
    used = Counter(ids.values())
    clash = sorted(f for f in folders if used[ids[f]] > 1)
    if clash:
        raise ValueError(f"class folders {clash} map to the same class id; rename one of them")
    return ids


# ---------------------------------------------------------------- reading images

def to_8bit(im: Image.Image) -> Image.Image:
    """8-bit greyscale from 16/32-bit greyscale, scaling 0..65535 to 0..255; Pillow's own
    conversion clips at 255 and turns a 16-bit image white. Other modes are returned as is."""
    if im.mode not in _WIDE_GREY:
        return im
    a = np.asarray(im).astype(np.float64)
    return Image.fromarray(np.round(np.clip(a, 0, 65535) / 257.0).astype(np.uint8), "L")


def _read(path: Path) -> Image.Image:
    """The fully decoded image at `path`, detached from its file; raises if unreadable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            im.load()
            return to_8bit(im).copy()


LINKS_REFUSED = ("symbolic links are refused among class folders and images (a linked class "
                 "folder imports whatever it points at, and an image linked twice could be both "
                 "support and query); nothing written. Replace the link by a copy of what it points "
                 "at (cp -rL) or remove it")


def not_a_link(path: Path) -> Path:
    """`path`, unless it is a symbolic link (ValueError naming it, its target and the fix)."""
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link (to {os.readlink(path)}): {LINKS_REFUSED}")
    return path


def class_folders(root: Path) -> list[Path]:
    """The visible subfolders of `root`, sorted; a link among its visible entries is refused."""
    visible = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    return [p for p in visible if not_a_link(p).is_dir()]


def _entries(class_dir: Path) -> tuple[list[Path], list[Path]]:
    """Visible files and visible subfolders directly inside a class folder; a link among them
    is refused (`not_a_link`)."""
    visible = sorted(p for p in class_dir.iterdir() if not p.name.startswith("."))
    for p in visible:
        not_a_link(p)
    return [p for p in visible if p.is_file()], [p for p in visible if p.is_dir()]


def _identity(path: Path):
    """What makes two paths one image: the same file (device, inode). A path that cannot be
    stat'ed is its own identity (it is reported as missing or unreadable when read)."""
    try:
        st = path.stat()
    except OSError:
        return str(path)
    return st.st_dev, st.st_ino


def repeated_files(paths: list[Path]) -> tuple[set[int], list[dict]]:
    """Positions in `paths` of files listed before under any name (a hard link, a repeated csv
    row), and a {"file", "same_as"} record of each: only the first copy is imported, so one
    image can never be both support and query."""
    first, later, records = {}, set(), []
    for i, p in enumerate(paths):
        j = first.setdefault(_identity(p), i)
        if j != i:
            later.add(i)
            records.append({"file": str(p), "same_as": str(paths[j])})
    return later, records


def report_repeats(records: list[dict]) -> None:
    if not records:
        return
    shown = "; ".join(f"{r['file']} (= {r['same_as']})" for r in records[:5])
    more = f" and {len(records) - 5} more" if len(records) > 5 else ""
    warnings.warn(f"{len(records)} images repeat a file listed before (a hard link or a name listed "
                  "twice); each file is imported once, under the first class listing it, so that no "
                  f"image can be both support and query (see the manifest's duplicate_files): {shown}{more}",
                  stacklevel=3)


def _report_nested(nested: list[Path]) -> None:
    if not nested:
        return
    shown = ", ".join(str(p) for p in nested[:10]) + (f" and {len(nested) - 10} more" if len(nested) > 10 else "")
    warnings.warn(f"{len(nested)} folders nested inside class folders are not imported (only images "
                  f"directly inside a class folder are; move them up, or make each a class folder "
                  f"of its own): {shown}", stacklevel=3)


# ---------------------------------------------------------------- the import

def import_folder(src, name: str, role: str = "target", stands_in_for: str = "user domain",
                  min_images: int = 2, seed: int = 0, fractions=None, parent=None,
                  force: bool = False) -> dict:
    """Convert `src/<class>/<image>` into the domain `name`; returns the saved manifest.
    role='target': 20% of classes val (at least 5), the rest test; role='base': 64/16/20
    train/val/test. Every split must leave at least MIN_WAYS test classes. An existing domain is
    replaced only with `force=True`. The original folder names are the manifest's `labels`."""
    from .sources.common import DomainWriter
    parent = Path(parent) if parent is not None else domains_dir()
    check_domain_name(name)
    src = check_source(src, parent / name)
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
    if min_images < 2:
        raise ValueError(f"min_images={min_images}: an episode needs at least 2 images per class "
                         "(one support, one query)")
    if (parent / name).exists() and not force:
        raise FileExistsError(f"domain {name!r} already exists at {parent / name}; pass --force "
                              "(import_folder(..., force=True)) to replace it")
    class_dirs = class_folders(src)
    if not class_dirs:
        raise ValueError(f"{src} has no class subfolders")
    listing = {d: _entries(d) for d in class_dirs}     # links refused before anything is written
    everything = [f for d in class_dirs for f in listing[d][0]]
    later, repeats = repeated_files(everything)
    repeated = {everything[i] for i in later}
    report_repeats(repeats)
    ids = class_ids([d.name for d in class_dirs])
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    w = DomainWriter(name, parent)
    bad, empty, nested = [], [], []
    try:
        for d in tqdm(class_dirs, desc=f"import {name}", unit="class"):
            files, subdirs = listing[d]
            nested += subdirs
            added = 0
            for f in (f for f in files if f not in repeated):
                try:
                    added += w.add(ids[d.name], _read(f), fit="pad", dedup=False, drop_blank=False)
                except Exception as e:  # noqa: BLE001 - any unreadable file is skipped, by path
                    bad.append(f)
                    print(f"skipping unreadable image {f}: {type(e).__name__}: {e}")
            if added == 0:
                empty.append(d)
                warnings.warn(f"class folder {d} has no readable images; skipped", stacklevel=2)
        _report_nested(nested)
        if not w.count:
            raise ValueError(f"{src} has no readable images ({len(bad)} unreadable files, "
                             f"{len(class_dirs)} class folders); domain {name!r} not written")
        small = [c for c, n in w.count.items() if 0 < n < min_images]
        if small:
            print(f"dropping {len(small)} classes with fewer than {min_images} images: {small[:10]}")
        splits = split_classes([c for c, n in w.count.items() if n >= min_images], role, seed, fractions)
        check_splits(name, splits, role, fractions, min_images)
        kept = {c for v in splits.values() for c in v}
        labels = {ids[d.name]: d.name for d in class_dirs if ids[d.name] in kept}
        m = w.finish(role, stands_in_for, [{"name": f"local folder {src.resolve()}",
                                            "version": "n/a", "licence": "user-supplied"}],
                     min_images=min_images, seed=seed, splits=splits,
                     description=f"imported from {src}", labels=labels,
                     skipped_files=[str(p) for p in bad], skipped_classes=[str(p) for p in empty],
                     nested_folders=[str(p) for p in nested],
                     **({"duplicate_files": repeats} if repeats else {}))   # valid imports: manifest as before
    except BaseException:
        w.abort()
        raise
    print(f"domain {name!r}: {sum(len(v) for v in m['splits'].values())} classes "
          f"({', '.join(f'{k} {len(v)}' for k, v in m['splits'].items())}), {m['images']} images; "
          f"{len(bad)} unreadable files, {len(empty)} empty class folders and {len(nested)} nested "
          "folders skipped")
    return m
