"""Shared by every builder: normalise a drawing to a 128 px square, drop blank and duplicate
renders, render in parallel, and write a domain atomically (a half-built domain never shows)."""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..domains import (IMAGE_SIZE, BelowMinima, below_minima, clean_leftovers, domains_dir,
                       split_classes, write_manifest)


def on_white(im: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def to_square(im: Image.Image, size: int = IMAGE_SIZE, fit: str = "content",
              margin: float = 0.08) -> Image.Image:
    """fit='content': crop to the drawing's bounding box (non-white pixels), centre it with a
    margin (drawings of one concept by different hands then have comparable scale);
    fit='pad': keep the whole image, pad to square; fit='resize': stretch (photos, crops)."""
    im = on_white(im)
    if fit == "resize":
        return im.resize((size, size), Image.BILINEAR)
    if fit == "content":
        grey = np.asarray(im.convert("L"))
        ys, xs = np.nonzero(grey < 245)
        if len(xs):
            im = im.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    inner = max(1, int(round(size * (1 - 2 * margin))))
    scale = inner / max(im.size)
    w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    im = im.resize((w, h), Image.LANCZOS if scale < 1 else Image.BICUBIC)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(im, ((size - w) // 2, (size - h) // 2))
    return canvas


def is_blank(im: Image.Image) -> bool:
    """A face that maps a character but draws nothing, an empty icon, a flat crop."""
    a = np.asarray(im.convert("L"), dtype=np.float32)
    return a.std() < 3.0 or (a < 245).mean() < 0.002


def fingerprint(im: Image.Image) -> str:
    """Coarse hash: equal for the same artwork re-exported by another vendor or at another size."""
    small = np.asarray(im.convert("L").resize((16, 16), Image.BOX), dtype=np.uint8) // 32
    return hashlib.md5(small.tobytes()).hexdigest()


def svg_to_image(svg: str | bytes, px: int = 256) -> Image.Image:
    import cairosvg
    data = svg.encode() if isinstance(svg, str) else svg
    png = cairosvg.svg2png(bytestring=data, output_width=px, output_height=px)
    return Image.open(io.BytesIO(png))


def parallel(fn, jobs: list, desc: str, processes: int = 2, chunksize: int = 16):
    """Yield fn(job) for every job (order kept), on `processes` workers with a progress bar."""
    if processes <= 1 or len(jobs) < 64:
        yield from (fn(j) for j in tqdm(jobs, desc=desc, unit="img", mininterval=2))
        return
    with mp.get_context("fork").Pool(processes) as pool:
        yield from tqdm(pool.imap(fn, jobs, chunksize=chunksize), total=len(jobs), desc=desc,
                        unit="img", mininterval=2)


class DomainWriter:
    """Collect images per class into `<parent>/.<name>.tmp/`, then `finish()` drops small
    classes, splits, writes the manifest and swaps the folder into place."""

    def __init__(self, name: str, parent: Path | None = None):
        self.name = name
        self.parent = Path(parent) if parent is not None else domains_dir()
        self.tmp = self.parent / f".{name}.tmp"
        clean_leftovers(self.parent, name)
        self.tmp.mkdir(parents=True)
        self.seen = defaultdict(set)
        self.count = defaultdict(int)
        self.dropped = {"blank": 0, "duplicate": 0}

    def add(self, cls: str, im: Image.Image | None, fit: str = "content",
            dedup: bool = True, drop_blank: bool = True) -> bool:
        if im is None:
            return False
        im = to_square(im, fit=fit) if im.size != (IMAGE_SIZE, IMAGE_SIZE) or im.mode != "RGB" else im
        if drop_blank and is_blank(im):
            self.dropped["blank"] += 1
            return False
        fp = fingerprint(im)
        if dedup and fp in self.seen[cls]:
            self.dropped["duplicate"] += 1
            return False
        self.seen[cls].add(fp)
        d = self.tmp / cls
        d.mkdir(exist_ok=True)
        im.save(d / f"{self.count[cls]:04d}.png", optimize=False, compress_level=1)
        self.count[cls] += 1
        return True

    def finish(self, role: str, stands_in_for: str, sources: list[dict], min_images: int,
               seed: int = 0, description: str = "", max_images: int | None = None,
               splits: dict | None = None, fractions=None, **extra) -> dict:
        keep = sorted(c for c, n in self.count.items() if n >= min_images)
        for c in set(self.count) - set(keep):
            shutil.rmtree(self.tmp / c, ignore_errors=True)
        if max_images:
            for c in keep:
                for p in sorted((self.tmp / c).glob("*.png"))[max_images:]:
                    p.unlink()
        if splits is None:
            splits = split_classes(keep, role, seed, fractions)
        else:
            splits = {k: [c for c in v if c in keep] for k, v in splits.items()}
        build = {"seed": seed, "min_images": min_images, "dropped": self.dropped,
                 "classes_below_min": len(self.count) - len(keep)}
        if extra.get("split_images") == "by_order":  # val/test share classes, split images
            n = {c: min(self.count[c], max_images or 10**9) for c in keep}
            files = {c: [f"{i:04d}.png" for i in range(n[c])] for c in keep}
            extra["split_images"] = {"val": {c: files[c][:n[c] // 5] for c in keep},
                                     "test": {c: files[c][n[c] // 5:] for c in keep}}
        m = write_manifest(self.tmp, self.name, role, stands_in_for, splits, sources,
                           description, build=build, **extra)
        short = below_minima(self.name, m)
        if short:  # never swap an empty or undersized domain into place
            self.abort()
            raise BelowMinima(f"{self.name}: {short}; not written")
        final = self.parent / self.name
        old = self.parent / f".{self.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        self.tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return m

    def abort(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _render_job(job):
    cls, key, svg, fit = job
    try:
        return cls, key, np.asarray(to_square(svg_to_image(svg), fit=fit))
    except Exception:  # noqa: BLE001 - a malformed SVG is dropped, not fatal
        return cls, key, None


def consensus_keep(arrays: list[np.ndarray], min_sim: float) -> list[bool]:
    """Label-noise filter for names that mean different things in different sets (a hyperlink
    'anchor' among ship anchors): drop drawings whose silhouette is unlike the rest of the
    class (leave-one-out cosine to the class mean of 24 px ink maps below `min_sim`)."""
    if len(arrays) < 4:
        return [True] * len(arrays)
    ink = np.stack([1 - np.asarray(Image.fromarray(a).convert("L").resize((24, 24), Image.BOX),
                                   dtype=np.float32).ravel() / 255 for a in arrays])
    ink /= np.linalg.norm(ink, axis=1, keepdims=True) + 1e-6
    total = ink.sum(0)
    keep = []
    for v in ink:
        rest = total - v
        keep.append(float(v @ rest / (np.linalg.norm(rest) + 1e-6)) >= min_sim)
    return keep


def render_svgs(jobs: list[tuple[str, str, str]], writer: DomainWriter, desc: str,
                fit: str = "content", min_sim: float | None = None) -> dict:
    """Render (class, key, svg) jobs on two cores into `writer`, class by class; returns
    {class: [keys kept]}. Jobs must be grouped by class."""
    kept, outliers = defaultdict(list), 0
    buf: list = []

    def flush():
        nonlocal outliers
        if not buf:
            return
        ok = consensus_keep([a for _, _, a in buf], min_sim) if min_sim else [True] * len(buf)
        for (cls, key, a), k in zip(buf, ok):
            if not k:
                outliers += 1
            elif writer.add(cls, Image.fromarray(a)):
                kept[cls].append(key)
        buf.clear()

    for cls, key, arr in parallel(_render_job, [(c, k, s, fit) for c, k, s in jobs], desc):
        if buf and buf[0][0] != cls:
            flush()
        if arr is not None:
            buf.append((cls, key, arr))
    flush()
    writer.dropped["outlier"] = writer.dropped.get("outlier", 0) + outliers
    return kept


def class_names_of(domains: list[str]) -> set[str]:
    """Class names (and display labels) of the named built domains, for collision removal;
    a domain that is not built is an error (the result must not depend on what happens to be
    on disk)."""
    out = set()
    for name in domains:
        m = domains_dir() / name / "manifest.json"
        if not m.is_file():
            raise FileNotFoundError(f"{name} is not built; it must be built first")
        man = json.loads(m.read_text())
        for split in ("val", "test", "train"):
            out.update(man["splits"][split])
        out.update(str(v).lower() for v in man.get("labels", {}).values())
    return out
