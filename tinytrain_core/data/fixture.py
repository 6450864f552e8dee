"""Tiny domains for tests and smoke runs, drawn in seconds from the fonts matplotlib ships.

A class is one letter; its images are that letter set in different faces (DejaVu Sans/Serif/
Mono and STIX, upright, bold, italic), each with a small random shift, rotation and size, so a
class looks like one concept drawn by several hands -- the Omniglot structure in miniature.
No installs, no network: matplotlib is already a dependency.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..lock import held
from .domains import FIXTURE, IMAGE_SIZE, fixture_dir
from .sources.common import DomainWriter

FACES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
         "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "STIXGeneral.ttf",
         "STIXGeneralItalic.ttf", "STIXGeneralBol.ttf", "DejaVuSerif-BoldItalic.ttf"]

LATIN = "ABCDEFGHJKLMNPQRSTUVWXYZabdefghijkmnqrtuy23456789"
GREEK = "ΓΔΘΛΞΠΣΦΨΩαβγδεζηθλμξπσφψω"
CYRILLIC = "БГДЖЗИЙЛПФЦЧШЩЪЫЬЭЮЯбвгджзилпфцчшщъыэюя"

# name -> (alphabet, images per class); fixture_b has one short class to exercise the sampler.
SPEC = {"fixture_base": (LATIN, 12), "fixture_a": (GREEK, 10), "fixture_b": (CYRILLIC, 10)}


def _font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _draw(ch: str, face: str, rng: np.random.Generator, size: int) -> Image.Image:
    font = ImageFont.truetype(str(_font_dir() / face), int(size * rng.uniform(0.5, 0.7)))
    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = d.textbbox((0, 0), ch, font=font)
    dx, dy = rng.integers(-size // 10, size // 10 + 1, 2)
    d.text(((size - (x1 - x0)) / 2 - x0 + dx, (size - (y1 - y0)) / 2 - y0 + dy), ch, 0, font=font)
    im = im.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR, fillcolor=255)
    return im.convert("RGB")


def build_fixture(root: Path | None = None, size: int = IMAGE_SIZE, seed: int = 0) -> list[str]:
    """Write the fixture domains under `data/fixture/` (or `root`); returns their names. Under the
    data build lock (`make data` and `make fixture` at once collided on the same temporary
    folders); after waiting for another builder the fixture it built is kept, not redrawn under
    a run that may already read it."""
    root = Path(root) if root is not None else fixture_dir()
    with held(root.parent / ".build.lock", "building the fixture", wait=True) as lock:
        if lock.waited_for is not None and fixture_ready(root):
            return list(SPEC)
        return _draw_fixture(root, size, seed)


def _draw_fixture(root: Path, size: int, seed: int) -> list[str]:
    sources = [{"name": "pypi:matplotlib (bundled DejaVu and STIX fonts)", "version": matplotlib.__version__,
                "licence": "Bitstream Vera / STIX (free font licences)"}]
    for name, (alphabet, n_img) in SPEC.items():
        role, stands = FIXTURE[name]
        rng = np.random.default_rng([seed, len(name)])
        w = DomainWriter(name, root)
        for k, ch in enumerate(alphabet):
            cls = f"u{ord(ch):04x}"
            n = n_img - 4 if (name == "fixture_b" and k == 0) else n_img
            for j in range(n):
                w.add(cls, _draw(ch, FACES[j % len(FACES)], rng, size), fit="pad", dedup=False)
        w.finish(role, stands, sources, min_images=2, seed=seed,
                 description=f"smoke fixture: {len(alphabet)} letters x {n_img} font renders",
                 labels={f"u{ord(c):04x}": c for c in alphabet})
    return list(SPEC)


def fixture_ready(root: Path | None = None) -> bool:
    root = Path(root) if root is not None else fixture_dir()
    return all((root / n / "manifest.json").is_file() for n in SPEC)
