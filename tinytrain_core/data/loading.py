"""From files to tensors: decoding (with an in-process cache), normalisation, augmentation and
`torch.utils.data` datasets.

Input convention of the backbones (TINYTRAIN.md section 3.1): RGB, 128x128, `(pixel - 128) / 128`.
Two augmentations, both deterministic given a `torch.Generator`:
- 'meta' (meta-training): whole-batch tensor ops drawing from the generator (`_meta_batch`);
- 'finetune' (pseudo-queries): P>M>F's DiffAugment(color, translation, p=0.9) as whole-batch
  tensor ops on the network's input tensor (`_finetune_batch`).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..runtime import to_channels_last
from .domains import IMAGE_SIZE, base_domain, load_domain
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


def episode_tensors(ep: Episode, channels_last: bool = False):
    """(xs, ys, xq, yq): float32 N x 3 x 128 x 128 support/query images, int64 labels in
    [0, ep.n_way). `channels_last=True` lays the images out as the training code runs them."""
    xs = load_batch([p for p, _ in ep.support])
    xq = load_batch([p for p, _ in ep.query])
    if channels_last:
        xs, xq = to_channels_last(xs), to_channels_last(xq)
    ys = torch.tensor([y for _, y in ep.support], dtype=torch.int64)
    yq = torch.tensor([y for _, y in ep.query], dtype=torch.int64)
    return xs, ys, xq, yq


# ---------------------------------------------------------------- augmentation

KINDS = ("meta", "finetune", "none")

LUMA = (0.299, 0.587, 0.114)
YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _meta_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """P>M>F's meta-training augmentation as whole-batch tensor ops: random-resized-crop (area
    0.35-1, ratio 3/4-4/3) by one affine grid sample, a flip, then colour jitter 0.4/0.4/0.4/0.1
    in a fixed order (brightness, contrast, saturation, hue as a YIQ rotation). Per-image
    torchvision transforms cost ~3 s per 100-image episode on CPU, 3x a training step; this is
    ~50x faster."""
    n = x.shape[0]

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    area, log_ratio = u(0.35, 1.0), u(math.log(3 / 4), math.log(4 / 3))
    w = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    cx, cy = u(-1, 1) * (1 - w), u(-1, 1) * (1 - h)
    flip = torch.where(u(0, 1) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, cx, h, cy
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    img = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    img = ((img * 128 + 128) / 255).clamp(0, 1)
    bri, con, sat, hue = u(0.6, 1.4), u(0.6, 1.4), u(0.6, 1.4), u(-0.1, 0.1) * 2 * math.pi
    v = lambda t: t.view(n, 1, 1, 1).to(img)  # noqa: E731
    luma = torch.tensor(LUMA).view(1, 3, 1, 1).to(img)
    img = (img * v(bri)).clamp(0, 1)
    mean = (img * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    img = ((img - mean) * v(con) + mean).clamp(0, 1)
    grey = (img * luma).sum(1, keepdim=True)
    img = ((img - grey) * v(sat) + grey).clamp(0, 1)
    yiq = torch.tensor(YIQ)
    cos, sin = torch.cos(hue), torch.sin(hue)
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0], rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = 1, cos, -sin, sin, cos
    m = torch.linalg.inv(yiq) @ rot @ yiq                                   # (n, 3, 3)
    img = torch.einsum("nij,njhw->nihw", m.to(img), img).clamp(0, 1)
    return (img * 255 - 128) / 128


def _finetune_batch(x: torch.Tensor, gen: torch.Generator, p: float = 0.9) -> torch.Tensor:
    """P>M>F's pseudo-queries (`DiffAugment(x, ['color', 'translation'], p=0.9)`, TINYTRAIN.md
    section 5), on the normalised input tensor as P>M>F applies it, without clamping:
    with probability p the whole batch is augmented, else returned as is (the same object, so a
    caller may reuse what it computed for the clean batch). When augmented: the whole batch is
    flipped horizontally with probability 0.5, then per image

        x += U(-0.5, 0.5)                                     brightness
        x = (x - mean_c x) * U(0, 2) + mean_c x               saturation (mean over channels)
        x = (x - mean_chw x) * U(0.5, 1.5) + mean_chw x       contrast
        x = shift(x, dx, dy), dx, dy integers in [-H/8, H/8]  translation, zero fill

    Split in two so that many tasks can be augmented on a GPU with each task's own CPU generator
    (`batched.py`): `finetune_draws` takes every random number, `apply_finetune` the tensor ops."""
    d = finetune_draws(x.shape[0], x.shape[2], x.shape[3], gen, p)
    return x if d is None else apply_finetune(x, d)


def finetune_draws(n: int, h: int, w: int, gen: torch.Generator, p: float = 0.9) -> dict | None:
    """The random numbers of one `_finetune_batch` call on an n x 3 x h x w batch, drawn from
    `gen` in its order (CPU tensors); None: the batch is left unaugmented."""
    if float(torch.rand((), generator=gen)) >= p:
        return None
    flip = float(torch.rand((), generator=gen)) < 0.5

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=gen)
    d = dict(flip=flip, brightness=u(-0.5, 0.5), saturation=u(0.0, 2.0), contrast=u(0.5, 1.5))
    sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    d["dy"] = torch.randint(-sy, sy + 1, (n,), generator=gen)
    d["dx"] = torch.randint(-sx, sx + 1, (n,), generator=gen)
    return d


def apply_finetune(x: torch.Tensor, d: dict) -> torch.Tensor:
    """`_finetune_batch`'s tensor ops with the draws `d`, on `x`'s device."""
    x = x if x.is_floating_point() else x.float()
    if d["flip"]:
        x = x.flip(3)
    x = x + d["brightness"].to(x)
    m = x.mean(1, keepdim=True)
    x = (x - m) * d["saturation"].to(x) + m
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * d["contrast"].to(x) + m
    return translate(x, d["dy"], d["dx"])


def _overlap(shift: int, size: int) -> tuple[int, int]:
    """The output range [lo, hi) of one axis that a shift by `shift` fills from inside the image
    (source = output + shift); empty (lo >= hi) when the shift is the whole axis or more."""
    return max(0, -shift), min(size, size - shift)


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """DiffAugment's translation, zero fill: out[i, :, r, c] = x[i, :, r + dy[i], c + dx[i]]
    where that pixel is inside the image, else 0; channels_last. `dy`, `dx`: integer (n,) CPU
    tensors (`finetune_draws`).

    Why slices: each image's output is one rectangle of its input (the overlap of the image and
    its shifted copy), so it is one strided copy per image into a zeroed batch. The former
    whole-batch gather (pad by one pixel, clamp the source indices into the pad, advanced
    indexing) built index tensors and read every pixel through them: 6-9x slower on one CPU
    thread (15 x 3 x 128 x 128, `make bench` part 4). Both only copy input values or write zeros, so
    the output is bit-identical (`tests/test_translation.py` keeps the gather to compare); no
    random number is drawn here."""
    h, w = x.shape[2:]
    out = torch.zeros_like(x, memory_format=torch.channels_last)
    for i, (sy, sx) in enumerate(zip(dy.tolist(), dx.tolist())):
        (r0, r1), (c0, c1) = _overlap(sy, h), _overlap(sx, w)
        if r0 < r1 and c0 < c1:
            out[i, :, r0:r1, c0:c1] = x[i, :, r0 + sy:r1 + sy, c0 + sx:c1 + sx]
    return out


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Augment a normalised N x 3 x H x W batch, each image with its own random parameters:
    kind 'meta' (meta-training), 'finetune' (pseudo-queries) or 'none'. Deterministic given
    `generator`'s state, which it advances."""
    if kind == "meta":
        return _meta_batch(x, generator)
    if kind == "finetune":
        return _finetune_batch(x, generator)
    if kind == "none":
        return x
    raise ValueError(f"unknown augmentation {kind!r}; choose one of {', '.join(KINDS)}")


# ---------------------------------------------------------------- datasets

class SplitDataset(Dataset):
    """(image, class index) over every image of a domain split, for supervised pre-training.
    `augment` is 'meta', 'finetune' or 'none', drawn per item from torch's global RNG (which
    DataLoader seeds per worker)."""

    def __init__(self, domain, split: str = "train", profile: str = "default",
                 augment: str = "none"):
        if augment not in KINDS:
            raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(KINDS)}")
        self.domain = load_domain(domain, profile) if isinstance(domain, str) else domain
        self.classes = self.domain.classes(split)
        self.items = [(str(p), i) for i, c in enumerate(self.classes)
                      for p in self.domain.images(c, split)]
        self.augment = augment

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        x = load_image(path)
        if self.augment != "none":
            gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
            x = augment_batch(x[None], self.augment, gen)[0]
        return x, y


def base_loader(profile: str = "default", split: str = "train", batch_size: int = 64,
                augment: str = "meta", shuffle: bool = True, seed: int = 0,
                num_workers: int = 0, domain: str | None = None) -> DataLoader:
    """DataLoader over the base domain's split (or `domain`'s) yielding (x, y) batches."""
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

