"""Domains on disk: one folder per domain, one subfolder of 128 px PNGs per class, a manifest.

Layout (everything under `data_root()`, which git ignores):

    data/domains/<name>/manifest.json       built-in and bring-your-own domains
    data/domains/<name>/<class>/<nnn>.png   128x128 RGB PNG, one concept drawn by one hand
    data/fixture/<name>/...                  the tiny font-glyph domains of the smoke profile
    data/episodes/<profile>/                 cached episode lists (see episodes.py)
    data/raw/                                installed sources (npm packages)

A manifest records the class splits (train/val/test), per-class image counts, the sources with
versions and licences, and what the domain stands in for in the paper's Meta-Dataset protocol.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import project_root

IMAGE_SIZE = 128

# name -> (role, Meta-Dataset source it stands in for). Order = the order of every table.
BUILTIN = {
    "icons": ("base", "MiniImageNet (meta-training)"),
    "signs": ("target", "Traffic Sign"),
    "glyphs": ("target", "Omniglot"),
    "cjk": ("target", "Aircraft / CUB (fine-grained)"),
    "emoji": ("target", "VGG Flower / Fungi (many look-alike classes)"),
    "lineart": ("target", "QuickDraw"),
    "cards": ("target", "Aircraft (few classes, many designs)"),
    "fashion": ("target", "real photos (nearest to ImageNet)"),
    "textures": ("target", "DTD"),
    "clipart": ("target", "MSCOCO"),
}
FIXTURE = {
    "fixture_base": ("base", "MiniImageNet (smoke fixture)"),
    "fixture_a": ("target", "Omniglot (smoke fixture, Greek)"),
    "fixture_b": ("target", "Omniglot (smoke fixture, Cyrillic)"),
}
SPLITS = ("train", "val", "test")
# What a built-in domain must hold to be written at all (the minima; EMBEDDED_DATA.md).
# Fashion-MNIST has only 10 classes: its val/test split images, not classes.
MINIMA = {"icons": dict(classes=600, train=300, images=10),
          "fashion": dict(test=10, val=5, images=6)}
TARGET_MINIMA = dict(test=50, val=5, images=6)
# The paper's real data (convert.py): the nine Meta-Dataset target sources in the order of its
# tables, the converted MiniImageNet base, and the manifest "collection" that marks both.
MD_TARGETS = ("traffic_sign", "omniglot", "aircraft", "vgg_flower", "cu_birds", "dtd", "quickdraw",
              "fungi", "mscoco")
REAL_BASE = "miniimagenet"
MD_COLLECTION, MINI_COLLECTION = "meta-dataset", "miniimagenet"


class BelowMinima(ValueError):
    pass


def below_minima(name: str, manifest: dict) -> str | None:
    """Why a freshly written manifest may not become a domain, or None. Every domain needs a
    class; a built-in one needs its minima (classes per split, images per class)."""
    n = manifest["n_classes"]
    if sum(n.values()) == 0:
        return "0 classes"
    if name not in BUILTIN:
        return None
    want = MINIMA.get(name, TARGET_MINIMA)
    have = dict(n, classes=sum(n.values()), images=manifest["min_images_per_class"])
    short = [f"{k} {have[k]} < {v}" for k, v in want.items() if have[k] < v]
    return ("below its minima: " + ", ".join(short)) if short else None


def data_root() -> Path:
    """`$TINYTRAIN_DATA_DIR` if set, else `<project root>/data`."""
    env = os.environ.get("TINYTRAIN_DATA_DIR")
    if env:
        return Path(env).resolve()
    return project_root() / "data"


def domains_dir() -> Path:
    return data_root() / "domains"


def fixture_dir() -> Path:
    return data_root() / "fixture"


def safe_name(s: str) -> str:
    """A class or domain name usable as a folder name on any file system."""
    s = re.sub(r"[^a-z0-9_.-]+", "-", s.lower()).strip("-.")
    return s or "x"


@dataclass
class Domain:
    """A built domain: `.classes(split)` and `.images(class_name)` read its manifest and folders."""
    name: str
    root: Path
    manifest: dict = field(repr=False)

    @property
    def role(self) -> str:
        return self.manifest["role"]

    @property
    def stands_in_for(self) -> str:
        return self.manifest.get("stands_in_for", "")

    def classes(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        return list(self.manifest["splits"][split])

    def images(self, class_name: str, split: str | None = None) -> list[Path]:
        """Sorted image paths of a class. A few domains (fashion: 10 classes) split images rather
        than classes between val and test; pass `split` to get that split's share."""
        files = self.manifest.get("split_images", {}).get(split or "", {}).get(class_name)
        if files is None:
            files = self.manifest["files"][class_name]
        return [self.root / class_name / f for f in files]

    def n_images(self, class_name: str, split: str | None = None) -> int:
        files = self.manifest.get("split_images", {}).get(split or "", {}).get(class_name)
        return len(files if files is not None else self.manifest["files"][class_name])


def hidden(name: str) -> bool:
    """Whether a folder name is hidden, so never a domain: the writer builds `.NAME.tmp` and
    moves the replaced domain to `.NAME.old`; a kill leaves either behind, manifest and all, and
    listing it would add a half-built or stale copy of NAME to every table."""
    return name.startswith(".")


def _find(name: str) -> Path | None:
    if hidden(name):
        return None
    for parent in (fixture_dir(), domains_dir()):
        if (parent / name / "manifest.json").is_file():
            return parent / name
    return None


@functools.lru_cache(maxsize=512)
def _conversion_of(path: str, mtime_ns: int, size: int) -> tuple[str | None, str | None]:
    try:
        m = json.loads(Path(path).read_text())
        return m.get("collection"), m.get("source")
    except (OSError, ValueError, AttributeError):  # unreadable: listed as a plain domain, as before
        return None, None


def _conversion(name: str) -> tuple[str | None, str | None]:
    """(collection, source) of a domain written by convert.py, else (None, None). Cached on the
    manifest's mtime and size: a converted manifest lists every file and can be megabytes."""
    f = domains_dir() / name / "manifest.json"
    try:
        st = f.stat()
    except OSError:
        return None, None
    return _conversion_of(str(f), st.st_mtime_ns, st.st_size)


def real_domains(names: list[str] | None = None) -> list[str] | None:
    """The paper profile's domains when the real data is converted: `miniimagenet` (written by
    convert_miniimagenet) then every converted Meta-Dataset target in the paper's table order;
    None unless both the base and at least one target exist."""
    if names is None:
        names = _on_disk()
    if REAL_BASE not in names or _conversion(REAL_BASE)[0] != MINI_COLLECTION:
        return None
    order = {s: i for i, s in enumerate(MD_TARGETS)}
    md = sorted((order.get(src, len(order)), n) for n in names
                for coll, src in [_conversion(n)] if coll == MD_COLLECTION)
    return [REAL_BASE] + [n for _, n in md] if md else None


def _on_disk() -> list[str]:
    """Every domain under domains_dir() that is not built-in, sorted; hidden folders (the
    writer's leftovers, see `hidden`) are not domains."""
    if not domains_dir().is_dir():
        return []
    return sorted(p.parent.name for p in domains_dir().glob("*/manifest.json")
                  if p.parent.name not in BUILTIN and not hidden(p.parent.name))


def _known(profile: str) -> list[str]:
    """smoke: the fixture. paper with the real data converted: `real_domains()`. Otherwise the
    embedded set: built-in domains then bring-your-own ones, never the converted real domains
    (they belong to the paper profile only, and a half-converted set is not mixed in)."""
    if profile == "smoke":
        return list(FIXTURE)
    others = _on_disk()
    real = real_domains(others) if profile == "paper" else None
    if real:
        return real
    return list(BUILTIN) + [n for n in others
                            if _conversion(n)[0] not in (MD_COLLECTION, MINI_COLLECTION)]


def load_domain(name: str, profile: str = "default") -> Domain:
    """Open a built domain. Unknown name -> ValueError listing the known ones; known but not
    built -> FileNotFoundError naming the make target that builds it."""
    if isinstance(name, Domain):
        return name
    root = _find(name)
    if root is None:
        known = _known(profile)
        known += [n for n in (*BUILTIN, *FIXTURE) if n not in known]  # paper may list real data only
        if name not in known:
            raise ValueError(f"unknown domain {name!r}; known domains: {', '.join(known)}")
        target = "make fixture" if name in FIXTURE else f"make data (or `python -m tinytrain_core.data build --domain {name}`)"
        raise FileNotFoundError(f"domain {name!r} is not built under {data_root()}; run {target}")
    manifest = json.loads((root / "manifest.json").read_text())
    return Domain(name=name, root=root, manifest=manifest)


def list_domains(profile: str) -> list[str]:
    """Built domains of a profile, base first: smoke -> the fixture domains; default/paper ->
    `icons` then the built targets in table order, then bring-your-own domains. Exception:
    paper, once `make metadataset` has converted MiniImageNet and at least one Meta-Dataset
    target -> `miniimagenet` then the converted `md_*` targets in the paper's table order."""
    return [n for n in _known(profile) if _find(n) is not None]


def base_domain(profile: str) -> str:
    if profile == "smoke":
        return "fixture_base"
    if profile == "paper" and real_domains():
        return REAL_BASE
    return "icons"


def target_domains(profile: str) -> list[str]:
    return [n for n in list_domains(profile) if n != base_domain(profile)]


def manifest_hash(profile: str) -> str:
    """12 hex digits over the manifests of every built domain of a profile (recorded in results
    so a table can be traced to the exact data it was computed on)."""
    h = hashlib.sha256()
    for n in list_domains(profile):
        h.update(n.encode())
        h.update(domain_hash(load_domain(n, profile)).encode())
    return h.hexdigest()[:12]


def domain_hash(domain: Domain) -> str:
    blob = json.dumps({k: v for k, v in domain.manifest.items() if k != "build"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- writing a domain

def split_classes(names: list[str], role: str, seed: int, fractions=None) -> dict[str, list[str]]:
    """Deterministic class split. Base: 64/16/20 (MiniImageNet's proportions). Targets: no
    training classes (the paper never trains on them); 20% val (at least 5) for learning-rate
    selection, the rest test."""
    names = sorted(names)
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    n = len(order)
    if fractions is None:
        fractions = (0.64, 0.16) if role == "base" else (0.0, 0.2)
    n_train = int(round(fractions[0] * n))
    n_val = max(min(5, n - n_train), int(round(fractions[1] * n))) if fractions[1] > 0 else 0
    out = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
           "test": order[n_train + n_val:]}
    return {k: sorted(v) for k, v in out.items()}


def clean_leftovers(parent: Path, name: str) -> None:
    """Clear what an interrupted writer left of domain `name` under `parent`, saying what it
    does (the folders are hidden, so nobody would see them go). A half-built `.NAME.tmp` and a
    replaced `.NAME.old` are removed; but when the kill came between the two renames of the
    swap (NAME gone, `.NAME.old` complete), `.NAME.old` is the last finished domain and is moved
    back into place first, so a rebuild that then fails leaves the domain as it was."""
    final, tmp, old = parent / name, parent / f".{name}.tmp", parent / f".{name}.old"
    if not final.exists() and not old.is_symlink() and (old / "manifest.json").is_file():
        old.rename(final)
        print(f"restored domain {name!r} from {old}, left by an interrupted rebuild")
    for p in (tmp, old):
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            continue
        print(f"removed {p}, left by an interrupted build of domain {name!r}")


def write_manifest(root: Path, name: str, role: str, stands_in_for: str, splits: dict,
                   sources: list[dict], description: str = "", split_images: dict | None = None,
                   labels: dict | None = None, build: dict | None = None, **extra) -> dict:
    """Scan `root`'s class folders and write manifest.json; returns the manifest."""
    files = {}
    for split in SPLITS:
        for c in splits.get(split, []):
            files[c] = sorted(p.name for p in (root / c).iterdir() if p.suffix == ".png")
    counts = {c: len(v) for c, v in files.items()}
    manifest = {
        "name": name, "role": role, "stands_in_for": stands_in_for, "description": description,
        "format": f"class folders of {IMAGE_SIZE}x{IMAGE_SIZE} RGB PNG",
        "splits": {s: list(splits.get(s, [])) for s in SPLITS},
        "n_classes": {s: len(splits.get(s, [])) for s in SPLITS},
        "images": sum(counts.values()),
        "min_images_per_class": min(counts.values()) if counts else 0,
        "sources": sources,
        "licences": sorted({s["licence"] for s in sources}),
        "counts": counts, "files": files,
    }
    if split_images:
        manifest["split_images"] = split_images
    if labels:
        manifest["labels"] = labels
    manifest.update(extra)
    manifest["build"] = build or {}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def summary_row(domain: Domain) -> dict:
    """One row of the per-domain table (`results/<profile>/domains.csv`)."""
    m = domain.manifest
    return {
        "domain": domain.name, "role": domain.role, "stands_in_for": domain.stands_in_for,
        "classes_train": m["n_classes"]["train"], "classes_val": m["n_classes"]["val"],
        "classes_test": m["n_classes"]["test"], "images": m["images"],
        "min_images_per_class": m["min_images_per_class"],
        "sources": "; ".join(f"{s['name']} {s['version']}" for s in m["sources"]),
        "licences": "; ".join(m["licences"]),
    }
