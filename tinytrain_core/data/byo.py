"""Bring your own domain: any folder with one subfolder of images per class becomes a domain.

    python -m tinytrain_core.data domain --src path/to/folder --name mydomain
    # or: from tinytrain_core.data import import_folder; import_folder("path", "mydomain")

Images of any size and any format Pillow reads are converted to the common on-disk format
(128 px RGB PNG, aspect kept by padding with white) under `data/domains/<name>/`, with a
generated manifest and class split, after which every notebook can use the domain by name.
Corrupt or truncated files are reported by path and skipped; classes left empty are skipped
with a warning; classes with fewer than `min_images` images are dropped and reported.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageFile
from tqdm import tqdm

from .domains import BUILTIN, FIXTURE, safe_name


def import_folder(src, name: str, role: str = "target", stands_in_for: str = "user domain",
                  min_images: int = 2, seed: int = 0, fractions=None, parent=None) -> dict:
    """Convert `src/<class>/<image>` into the domain `name`; returns the manifest.
    role='target': 20% of classes val, the rest test; role='base': 64/16/20 train/val/test."""
    from .sources.common import DomainWriter
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder of class subfolders")
    if safe_name(name) != name or name in BUILTIN or name in FIXTURE:
        raise ValueError(f"domain name {name!r} must be lowercase [a-z0-9_.-] and not a built-in name")
    class_dirs = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{src} has no class subfolders")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    w = DomainWriter(name, parent)
    bad, empty, labels = [], [], {}
    try:
        for d in tqdm(class_dirs, desc=f"import {name}", unit="class"):
            cls = safe_name(d.name)
            labels[cls] = d.name
            files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
            added = 0
            for f in files:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        with Image.open(f) as im:
                            im.load()
                            added += w.add(cls, im.copy(), fit="pad", dedup=False,
                                           drop_blank=False)
                except Exception as e:  # noqa: BLE001 - any unreadable file is skipped, by path
                    bad.append(f)
                    print(f"skipping unreadable image {f}: {type(e).__name__}: {e}")
            if added == 0:
                empty.append(d)
                warnings.warn(f"class folder {d} has no readable images; skipped", stacklevel=2)
        small = [c for c, n in w.count.items() if 0 < n < min_images]
        if small:
            print(f"dropping {len(small)} classes with fewer than {min_images} images: {small[:10]}")
        m = w.finish(role, stands_in_for, [{"name": f"local folder {src.resolve()}",
                                            "version": "n/a", "licence": "user-supplied"}],
                     min_images=min_images, seed=seed, fractions=fractions,
                     description=f"imported from {src}", labels=labels)
    except BaseException:
        w.abort()
        raise
    m["skipped_files"] = [str(p) for p in bad]
    m["skipped_classes"] = [str(p) for p in empty]
    print(f"domain {name!r}: {sum(len(v) for v in m['splits'].values())} classes "
          f"({', '.join(f'{k} {len(v)}' for k, v in m['splits'].items())}), {m['images']} images; "
          f"{len(bad)} unreadable files and {len(empty)} empty class folders skipped")
    return m
