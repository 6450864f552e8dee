"""From files to tensors: decoding (with an in-process cache), normalisation, augmentation and
`torch.utils.data` datasets.

Input convention of the backbones (TINYTRAIN.md section 3.1): RGB, 128x128, `(pixel - 128) / 128`.
Augmentations are torchvision.transforms.v2 pipelines applied on [0, 1] images; to make them
deterministic given a `torch.Generator` they run under a forked global RNG seeded from it.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from .domains import IMAGE_SIZE, load_domain
from .episodes import Episode, EpisodeConfig, sample_episodes


def read_rgb(path: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """HxWx3 uint8. Grey and palette images become RGB, transparency is composited on white,
    other sizes are resized (bilinear, aspect kept by padding with white)."""
    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        im = im.convert("RGB")
        if im.size != (size, size):
            scale = size / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.BILINEAR)
            canvas = Image.new("RGB", (size, size), (255, 255, 255))
            canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
            im = canvas
        return np.asarray(im, dtype=np.uint8)


@lru_cache(maxsize=16384)  # ~48 kB per image: at most ~800 MB
def _cached(path: str) -> torch.Tensor:
    return torch.from_numpy(read_rgb(path).copy()).permute(2, 0, 1).contiguous()


def load_image(path: str) -> torch.Tensor:
    """3xHxW float32 in the backbones' convention `(pixel - 128) / 128`."""
    return (_cached(str(path)).float() - 128.0) / 128.0


def load_batch(paths) -> torch.Tensor:
    return torch.stack([load_image(p) for p in paths]) if len(paths) else \
        torch.zeros(0, 3, IMAGE_SIZE, IMAGE_SIZE)


def episode_tensors(ep: Episode):
    """(xs, ys, xq, yq): float32 N x 3 x 128 x 128 support/query images, int64 labels in
    [0, ep.n_way)."""
    xs = load_batch([p for p, _ in ep.support])
    xq = load_batch([p for p, _ in ep.query])
    ys = torch.tensor([y for _, y in ep.support], dtype=torch.int64)
    yq = torch.tensor([y for _, y in ep.query], dtype=torch.int64)
    return xs, ys, xq, yq


# ---------------------------------------------------------------- augmentation

def _pipeline(kind: str, size: int = IMAGE_SIZE):
    if kind == "meta":  # P>M>F meta-training: random-resized-crop, colour jitter, flip
        return v2.Compose([
            v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
            v2.ColorJitter(0.4, 0.4, 0.4, 0.1),
            v2.RandomHorizontalFlip(),
        ])
    if kind == "finetune":  # P>M>F pseudo-queries: colour + translation with p=0.9, plus flips
        return v2.Compose([
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.9),
            v2.RandomApply([v2.RandomAffine(degrees=0, translate=(0.125, 0.125), fill=1.0)], p=0.9),
            v2.RandomHorizontalFlip(),
        ])
    if kind == "none":
        return v2.Identity()
    raise ValueError(f"unknown augmentation {kind!r}; choose 'meta', 'finetune' or 'none'")


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Augment a normalised N x 3 x H x W batch, each image with its own random parameters.
    Deterministic given `generator`'s state (which it advances by one draw)."""
    pipe = _pipeline(kind, x.shape[-1])
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unit = (x.float() * 128.0 + 128.0) / 255.0
        out = torch.stack([pipe(img) for img in unit.clamp(0, 1)])
    return (out * 255.0 - 128.0) / 128.0


# ---------------------------------------------------------------- datasets

class SplitDataset(Dataset):
    """(image, class index) over every image of a domain split, for supervised pre-training.
    `augment` is 'meta', 'finetune' or 'none' (applied per item with torch's global RNG, which
    DataLoader seeds per worker)."""

    def __init__(self, domain, split: str = "train", profile: str = "default",
                 augment: str = "none"):
        self.domain = load_domain(domain, profile) if isinstance(domain, str) else domain
        self.classes = self.domain.classes(split)
        self.items = [(str(p), i) for i, c in enumerate(self.classes)
                      for p in self.domain.images(c, split)]
        self.pipe = _pipeline(augment)
        self.augment = augment

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        x = load_image(path)
        if self.augment != "none":
            x = (self.pipe(((x * 128 + 128) / 255).clamp(0, 1)) * 255 - 128) / 128
        return x, y


def base_loader(profile: str = "default", split: str = "train", batch_size: int = 64,
                augment: str = "meta", shuffle: bool = True, seed: int = 0,
                num_workers: int = 0, domain: str | None = None) -> DataLoader:
    """DataLoader over the base domain's split (or `domain`'s) yielding (x, y) batches."""
    from .domains import base_domain
    ds = SplitDataset(domain or base_domain(profile), split, profile, augment)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g,
                      num_workers=num_workers, drop_last=shuffle)


class EpisodeDataset(Dataset):
    """Item i = episode_tensors of episode i of (domain, split, cfg, seed): for meta-training
    with a DataLoader (batch_size=None)."""

    def __init__(self, domain, split: str, n: int, cfg: EpisodeConfig, seed: int = 0,
                 profile: str = "default"):
        self.episodes = sample_episodes(domain, split, n, cfg, seed, profile)

    def __len__(self):
        return len(self.episodes)

    def __getitem__(self, i):
        return episode_tensors(self.episodes[i])


def check_image(path) -> str | None:
    """None if Pillow can fully decode `path`, else the reason (used when importing folders)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
        return None
    except Exception as e:  # noqa: BLE001 - any decode failure means skip the file
        return f"{type(e).__name__}: {e}"
