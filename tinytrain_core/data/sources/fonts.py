"""Drawing characters with installed font files (for `glyphs` and `cjk`).

Fonts are found through the Debian packages that ship them (`dpkg -L`), one face per family
(the regular weight where a family has several), and their character maps are read with
fontTools. A face that maps a character but draws nothing is caught by the blank filter.
"""
from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .common import to_square

FONT_EXT = (".ttf", ".otf", ".ttc")
WEIGHTS = re.compile(r"(bold|black|heavy|light|thin|medium|semibold|extrabold|extralight|"
                     r"demibold|italic|oblique|condensed|narrow|ui|display|mono)", re.I)


def package_fonts(pkg: str) -> list[Path]:
    r = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
    return sorted(Path(p) for p in r.stdout.split() if p.lower().endswith(FONT_EXT)
                  and Path(p).is_file())


def pick_faces(paths: list[Path], allow_styles: bool = False) -> list[Path]:
    """Regular weights only (unless a family has nothing else), one file per family stem."""
    seen, out = set(), []
    for p in sorted(paths, key=lambda p: (bool(WEIGHTS.search(p.stem)), len(p.stem), p.stem)):
        family = WEIGHTS.sub("", re.sub(r"[-_ ]?(regular|book|roman|normal|std|\d+)$", "",
                                        p.stem, flags=re.I)).strip("-_ ").lower()
        if family in seen or (WEIGHTS.search(p.stem) and not allow_styles and family in seen):
            continue
        seen.add(family)
        out.append(p)
    return out


def cmap(path: Path) -> set[int]:
    from fontTools.ttLib import TTFont
    try:
        f = TTFont(str(path), lazy=True, fontNumber=0)
        return set(f.getBestCmap() or {})
    except Exception:  # noqa: BLE001 - an unreadable font contributes nothing
        return set()


@lru_cache(maxsize=64)
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px, index=0)


def draw_char(path: str, ch: str, px: int = 112) -> Image.Image:
    font = _font(path, px)
    canvas = Image.new("L", (2 * px, 2 * px), 255)
    ImageDraw.Draw(canvas).text((px // 2, px // 2), ch, 0, font=font)
    return canvas


def _render_job(job):
    cls, path, ch = job
    try:
        return cls, path, np.asarray(to_square(draw_char(path, ch), fit="content", margin=0.1))
    except Exception:  # noqa: BLE001 - a glyph FreeType cannot draw is dropped
        return cls, path, None
