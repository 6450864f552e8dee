"""Target `fashion` (real product photos, the domain nearest to ImageNet): Fashion-MNIST from
Debian's dataset-fashion-mnist, 10 classes of 28 x 28 grey photos, upscaled to 128 px.

With only 10 classes a class split cannot give both val and test enough ways, so this domain
splits *images*: every class appears in val and test with disjoint images (manifest
`split_images`), which is how the paper's protocol would treat a 10-class target.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..domains import BUILTIN
from ..install import source_record
from ..profiles import build_caps
from .common import DomainWriter

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["t-shirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle-boot"]


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.open(path).read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def build(profile: str) -> dict:
    _, per_class = build_caps(profile, "fashion")
    x = read_idx(ROOT / "t10k-images-idx3-ubyte.gz")  # the official test images only
    y = read_idx(ROOT / "t10k-labels-idx1-ubyte.gz")
    w = DomainWriter("fashion")
    rng = np.random.default_rng(0)
    for k, name in enumerate(tqdm(CLASSES, desc="fashion", unit="class")):
        idx = rng.permutation(np.flatnonzero(y == k))[:per_class]
        for i in idx:  # Fashion-MNIST is white-on-black; invert to a photo-like light background
            im = Image.fromarray(255 - x[i]).resize((128, 128), Image.BICUBIC).convert("RGB")
            w.add(name, im, fit="resize", dedup=False)
    role, stands = BUILTIN["fashion"]
    return w.finish(role, stands, [source_record("apt", "dataset-fashion-mnist", "MIT")], 6, seed=0,
                    splits={"train": [], "val": list(CLASSES), "test": list(CLASSES)},
                    split_images="by_order",
                    description="Fashion-MNIST test images; val/test share classes, not images")
