"""Target `cjk` (fine-grained, stands in for Aircraft/CUB): CJK ideographs, each drawn by ~17
faces of Debian's CJK font packages: sans, serif (Ming/Mincho), kai, handwriting (Seto, Klee,
Kiloji) and brush (Aoyagi, Kouzan). Thousands of similar-looking classes; style varies more
within a class than many classes differ from each other.

Blank renders (faces that map a character but draw nothing: Aoyagi-Kouzan-T for ~65% of
characters) and identical renders (two packages shipping the same design) are dropped.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..domains import BUILTIN
from ..install import SOURCES, apt_version
from ..profiles import build_caps
from .common import DomainWriter, parallel
from .fonts import _render_job, cmap, package_fonts

from PIL import Image

FACES = ["NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc", "ukai.ttc", "uming.ttc",
         "TW-Kai-98_1.ttf", "LXGWWenKai-Regular.ttf", "wqy-zenhei.ttc", "ipam.ttf",
         "HanaMinA.ttf", "setofont.ttf", "KleeOne-Regular.ttf", "kiloji.ttf",
         "AoyagiKouzanT.ttf", "aoyagi-soseki.ttf", "kouzan-mouhitsu.ttf",
         "KouzanBrushFontSousyo.ttf", "kouzan-mouhitsu-gyosho.ttf"]
MIN_IMAGES = 8


def build(profile: str) -> dict:
    max_classes, max_images = build_caps(profile, "cjk")
    files = {p.name: p for pkg in SOURCES["apt"]["cjk"] for p in package_fonts(pkg)}
    faces = [files[f] for f in FACES if f in files]
    if len(faces) < MIN_IMAGES:
        raise FileNotFoundError(f"only {len(faces)} CJK faces installed; need >= {MIN_IMAGES}")
    maps = {f: cmap(f) for f in faces}
    cover = {cp: [f for f in faces if cp in maps[f]] for cp in range(0x4E00, 0xA000)}
    best = max(len(v) for v in cover.values())
    pool = sorted(cp for cp, v in cover.items() if len(v) >= min(best, len(faces) - 2))
    pool.sort(key=lambda cp: hashlib.md5(str(cp).encode()).hexdigest())
    chosen = sorted(pool[:max_classes] if max_classes else pool)
    print(f"[cjk] {len(faces)} faces; {len(pool)} ideographs mapped by >= {min(best, len(faces) - 2)} "
          f"faces; rendering {len(chosen)}")
    jobs = [(f"u{cp:04x}", str(f), chr(cp)) for cp in chosen for f in cover[cp]]
    w = DomainWriter("cjk")
    for cls, _, arr in parallel(_render_job, jobs, "cjk", chunksize=32):
        if arr is not None:
            w.add(cls, Image.fromarray(arr))
    pkgs = [p for p in SOURCES["apt"]["cjk"] if apt_version(p)]
    src = [{"name": f"apt:{p}", "version": apt_version(p),
            "licence": "OFL / Arphic / IPA / GPL+font exception"} for p in pkgs]
    role, stands = BUILTIN["cjk"]
    return w.finish(role, stands, src, MIN_IMAGES, seed=0, max_images=max_images,
                    description=f"{len(faces)} faces: sans, serif, kai, handwriting, brush",
                    labels={f"u{cp:04x}": chr(cp) for cp in chosen},
                    faces=[Path(f).name for f in faces])
