"""Target `clipart` (stands in for MSCOCO: everyday object categories in varied styles):
category folders of Debian's openclipart-png (public domain) and tuxpaint-stamps-default
(GPL-2; many photo cut-outs). Class = category path (e.g. 'animals-birds'); the same path in
both sources is merged. Letter/number sets and flags (a `signs` domain concept) are left out.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

from PIL import Image

from ..domains import BUILTIN, safe_name
from ..install import source_record
from ..profiles import build_caps
from .common import DomainWriter, parallel, svg_to_image, to_square

ROOTS = {"openclipart": Path("/usr/share/openclipart/png"),
         "tuxpaint": Path("/usr/share/tuxpaint/stamps")}
SKIP = ("alphabets", "flags", "math", "numbers", "letters", "asl")
MIN_IMAGES = 6


def _load(job):
    cls, path = job
    try:
        im = svg_to_image(Path(path).read_bytes(), 256) if path.endswith(".svg") else Image.open(path)
        im.draft("RGB", (256, 256))
        if max(im.size) > 512:
            im.thumbnail((512, 512))
        return cls, path, to_square(im, fit="content")
    except Exception as e:  # noqa: BLE001 - a corrupt file is reported and skipped
        return cls, path, f"{type(e).__name__}: {e}"


def build(profile: str) -> dict:
    _, per_class = build_caps(profile, "clipart")
    files = defaultdict(list)
    for src, root in ROOTS.items():
        if not root.is_dir():
            print(f"[clipart] {root} missing: {src} not installed, continuing without it")
            continue
        for p in root.rglob("*"):
            if p.suffix.lower() in (".png", ".svg") and not p.name.endswith("_mirror.png") \
                    and "shadow" not in p.name:
                rel = p.parent.relative_to(root)
                if rel.parts and not any(s in rel.parts for s in SKIP):
                    files[safe_name("-".join(rel.parts))].append(str(p))
    jobs = []
    for cls in sorted(files):
        if len(files[cls]) >= MIN_IMAGES:
            pick = sorted(files[cls], key=lambda f: hashlib.md5(f.encode()).hexdigest())
            jobs += [(cls, f) for f in pick[:per_class + 2]]
    w = DomainWriter("clipart")
    for cls, path, im in parallel(_load, jobs, "clipart", chunksize=4):
        if isinstance(im, str):
            print(f"skipping unreadable image {path}: {im}")
        elif w.count[cls] < per_class:
            w.add(cls, im)
    role, stands = BUILTIN["clipart"]
    src = [source_record("apt", "openclipart-png", "public domain (CC0)"),
           source_record("apt", "tuxpaint-stamps-default", "GPL-2")]
    return w.finish(role, stands, src, MIN_IMAGES, seed=0,
                    description="clip-art and stamp categories, drawn and photographed")
