"""Target `glyphs` (stands in for Omniglot): letters of a dozen scripts, each letter set in
the many faces of Debian's font packages (Noto plus per-script families: Devanagari 12 faces,
Thai 10, Arabic, Tamil, Bengali, Latin/Greek/Cyrillic text faces). Class = one letter of
one script; images = that letter in different faces ("hands").
"""
from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from PIL import Image

from ..domains import BUILTIN
from ..install import SOURCES, apt_version
from ..profiles import build_caps
from .common import DomainWriter, parallel
from .fonts import _render_job, cmap, package_fonts, pick_faces

SCRIPTS = {"latin": [(0x41, 0x5A), (0x61, 0x7A)], "greek": [(0x391, 0x3A9), (0x3B1, 0x3C9)],
           "cyrillic": [(0x410, 0x44F)], "armenian": [(0x531, 0x556), (0x561, 0x586)],
           "hebrew": [(0x5D0, 0x5EA)], "arabic": [(0x621, 0x64A)],
           "devanagari": [(0x904, 0x939)], "bengali": [(0x985, 0x9B9)],
           "tamil": [(0xB85, 0xBB9)], "thai": [(0xE01, 0xE2E)], "georgian": [(0x10D0, 0x10FA)],
           "ethiopic": [(0x1200, 0x1247)]}
MIN_IMAGES = 6


def build(profile: str) -> dict:
    _, max_images = build_caps(profile, "glyphs")
    faces = pick_faces([f for pkg in SOURCES["apt"]["glyphs"] for f in package_fonts(pkg)])
    maps = {f: cmap(f) for f in faces}
    jobs, labels = [], {}
    for script, ranges in SCRIPTS.items():
        for lo, hi in ranges:
            for cp in range(lo, hi + 1):
                if not unicodedata.category(chr(cp)).startswith("L"):
                    continue
                have = sorted((f for f in faces if cp in maps[f]),
                              key=lambda f: hashlib.md5(f"{cp}{f.name}".encode()).hexdigest())
                if len(have) >= MIN_IMAGES + 1:
                    cls = f"{script}-u{cp:04x}"
                    labels[cls] = chr(cp)
                    jobs += [(cls, str(f), chr(cp)) for f in have[:int((max_images or 99) * 1.5)]]
    print(f"[glyphs] {len(faces)} faces; {len(labels)} letters in >= {MIN_IMAGES + 1} faces")
    w = DomainWriter("glyphs")
    for cls, _, arr in parallel(_render_job, jobs, "glyphs", chunksize=32):
        if arr is not None:
            w.add(cls, Image.fromarray(arr))
    pkgs = [p for p in SOURCES["apt"]["glyphs"] if apt_version(p)]
    src = [{"name": f"apt:{p}", "version": apt_version(p), "licence": "OFL / GPL+font exception / other free"}
           for p in pkgs]
    role, stands = BUILTIN["glyphs"]
    return w.finish(role, stands, src, MIN_IMAGES, seed=0, max_images=max_images,
                    description=f"letters of {len(SCRIPTS)} scripts in {len(faces)} faces",
                    labels=labels, faces=sorted({Path(f).name for _, f, _ in jobs}))
