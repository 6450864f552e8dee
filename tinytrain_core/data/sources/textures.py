"""Target `textures` (stands in for DTD): the texture patterns of Debian's gimp-data and
gimp-data-extras (stone, wood, water, sky, fabric, ...). Class = one pattern; images = crops
of it at random positions, scales (0.25x-4x) and angles, in grey with random contrast,
brightness and blur (camera-like variation). Patterns tile seamlessly, so crops come from a 3 x 3 tiling and never
show a seam. Why grey: in colour, a pattern's palette alone identifies it (frozen ImageNet
features scored 99.7% 5-way 5-shot), which leaves no room for adaptation; DTD's classes are
defined by texture, not colour, and its photos vary in lighting.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from ..domains import BUILTIN, safe_name
from ..install import source_record
from ..profiles import build_caps
from .common import DomainWriter

ROOT = Path("/usr/share/gimp/2.0/patterns")
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def read_pat(path: Path) -> tuple[str, Image.Image]:
    """GIMP .pat: big-endian header (size, version, width, height, bytes/pixel, 'GPAT', name)."""
    raw = path.read_bytes()
    hsize, _version, w, h, bpp = struct.unpack(">5I", raw[:20])
    if raw[20:24] != b"GPAT" or bpp not in MODES:
        raise ValueError(f"{path} is not a GIMP pattern")
    name = raw[24:hsize].split(b"\0")[0].decode("utf-8", "replace") or path.stem
    im = Image.frombytes(MODES[bpp], (w, h), raw[hsize:hsize + w * h * bpp])
    return name, im.convert("RGB")


def crops(im: Image.Image, n: int, rng: np.random.Generator, size: int = 128) -> list[Image.Image]:
    w, h = im.size
    m = min(w, h)
    kx, ky = int(np.ceil(8 * m / w)) + 3, int(np.ceil(8 * m / h)) + 3  # room for a 2s window
    tiled = Image.new("RGB", (kx * w, ky * h))
    for i in range(kx):
        for j in range(ky):
            tiled.paste(im, (i * w, j * h))
    out = []
    for _ in range(n):
        s = int(min(w, h) * np.exp(rng.uniform(np.log(0.25), np.log(4.0))))
        s = max(12, min(s, 4 * m))
        x, y = rng.integers(0, kx * w - 2 * s), rng.integers(0, ky * h - 2 * s)
        c = tiled.crop((x, y, x + 2 * s, y + 2 * s)).rotate(float(rng.uniform(0, 360)), Image.BILINEAR)
        c = c.crop((s // 2, s // 2, s // 2 + s, s // 2 + s)).resize((size, size), Image.BICUBIC)
        c = c.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5)))).convert("L")
        a = np.asarray(c, dtype=np.float32)
        a = (a - a.mean()) * rng.uniform(0.6, 1.4) + a.mean() + rng.uniform(-40, 40)
        c = Image.fromarray(a.clip(0, 255).astype(np.uint8)).convert("RGB")
        out.append(c)
    return out


def build(profile: str) -> dict:
    _, n_crops = build_caps(profile, "textures")
    files = sorted(ROOT.rglob("*.pat"))
    if not files:
        raise FileNotFoundError(f"no patterns under {ROOT}: install Debian's gimp-data")
    w = DomainWriter("textures")
    rng = np.random.default_rng(0)
    labels = {}
    for f in tqdm(files, desc="textures", unit="pattern"):
        try:
            name, im = read_pat(f)
        except Exception as e:  # noqa: BLE001
            print(f"skipping pattern {f}: {type(e).__name__}: {e}")
            continue
        cls = safe_name(f"{f.parent.name}-{f.stem}" if f.parent != ROOT else f.stem)
        labels[cls] = name
        for c in crops(im, n_crops, rng):
            w.add(cls, c, fit="resize", dedup=False)
    role, stands = BUILTIN["textures"]
    src = [source_record("apt", "gimp-data", "GPL-3+"), source_record("apt", "gimp-data-extras", "GPL-2+")]
    return w.finish(role, stands, src, 6, seed=0, labels=labels,
                    description="random crops (scale 0.5-2x, quarter turns) of tiled GIMP patterns")
