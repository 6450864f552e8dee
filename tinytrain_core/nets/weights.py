"""The released int8 ImageNet weights: fetch, verify, load safely, dequantise.

Files are `torch.save` zips of plain dicts of numpy arrays (mit-han-lab/tiny-training,
MIT licence). We never hand them to `pickle.load` or an unrestricted `torch.load`: a
restricted unpickler allows exactly numpy's array-reconstruction globals (plus
`_codecs.encode`, which protocol-2 pickles use for raw bytes) and refuses anything else,
so a crafted file cannot run code.

Float recipe (BatchNorm already folded): w = weight * w_scales[:,None,None,None],
b = bias * x_scale * w_scales.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .models import TinyNet, check_name
from ..paths import weights_dir

COMMIT = "7bf8e05bbeebda76cbf2ea2dd596dedee7e3f343"
URL = ("https://raw.githubusercontent.com/mit-han-lab/tiny-training/"
       f"{COMMIT}/algorithm/assets/mcu_models/{{name}}.pkl")
SHA256 = {
    "mcunet-5fps": "4de2e06ed39041fc3609de806461a9e1d1f82f186927474bd9e9b0de756a0f00",
    "mbv2-w0.35": "310d2871c50a89af9f11928e28418729984c2e402cf68560a19b6cbb75854163",
    "proxyless-w0.3": "0da06d029506a36e5a5d0822493cdae11f37ba78662f9aca25ba5b3c958cf8e1",
}
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class WeightsMissing(FileNotFoundError):
    pass


class UnsafeWeights(pickle.UnpicklingError):
    pass


class DamagedWeights(UnsafeWeights):
    """A weight file that is truncated, corrupt, or not the pinned release it is named after.
    (An UnsafeWeights: it is refused for the same reason, it is not what we can vouch for.)"""


FIX = ("delete it and run `make weights` (or, if TINYTRAIN_WEIGHTS_DIR is set, check that it "
       "points at an intact copy of the released files)")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeWeights(f"refusing to load global {module}.{name}: weight files may only "
                                "contain numpy arrays")
        if module == "numpy.core.multiarray":  # numpy 2 moved it
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise UnsafeWeights("refusing torch storages: expected a plain dict of numpy arrays")


def safe_load(path: str | Path) -> dict:
    """Read a weight file (torch.save zip or plain pickle) without executing code from it."""
    path = Path(path)
    raw = _pickle_bytes(path, path.read_bytes())
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    except UnsafeWeights:
        raise
    except Exception as e:  # truncated or not a pickle at all
        raise DamagedWeights(f"{path}: cannot read as a weight file, it is damaged ({e}); {FIX}") from e


def _pickle_bytes(path: Path, raw: bytes) -> bytes:
    """The pickle inside a torch.save zip (or `raw` itself when it is a plain pickle). A zip
    that is cut short or fails its CRC is reported with the path and the fix, not as a bare
    zipfile error."""
    if raw[:4] == b"PK\x03\x04" and not zipfile.is_zipfile(io.BytesIO(raw)):
        raise DamagedWeights(f"{path}: truncated zip (no end-of-archive record), the file is "
                             f"damaged; {FIX}")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        return raw
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = [n for n in z.namelist() if n.endswith("data.pkl")]
            if not names:
                raise UnsafeWeights(f"{path}: zip without data.pkl, not a weight file")
            return z.read(names[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise DamagedWeights(f"{path}: the zip is damaged ({e}); {FIX}") from e


def verify(name: str, path: Path) -> Path:
    """`path` when its sha256 is that of the pinned release `name`; else DamagedWeights."""
    got = sha256(path)
    if got != SHA256[name]:
        raise DamagedWeights(f"{path} fails its sha256 check: {got[:16]}… instead of the "
                             f"{SHA256[name][:16]}… of the {name} release (damaged, or another "
                             f"version); {FIX}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find(name: str) -> Path:
    """Path of a verified-by-name weight file: data/weights/ first, then $TINYTRAIN_WEIGHTS_DIR."""
    check_name(name)
    candidates = [weights_dir() / f"{name}.pkl"]
    if os.environ.get("TINYTRAIN_WEIGHTS_DIR"):
        candidates.append(Path(os.environ["TINYTRAIN_WEIGHTS_DIR"]) / f"{name}.pkl")
    for c in candidates:
        if c.is_file():
            return c
    raise WeightsMissing(f"ImageNet weights for {name} not found in "
                         f"{' or '.join(map(str, candidates))}; run `make weights` "
                         "(or set TINYTRAIN_WEIGHTS_DIR to a folder holding them)")


def fetch(dest: Path | None = None, source_dir: str | None = None) -> list[Path]:
    """Place all three files in data/weights/, copying from `source_dir` (or
    $TINYTRAIN_WEIGHTS_DIR) when given, else downloading from the pinned upstream commit.
    Every file is checked against its sha256; a mismatch stops with what to do."""
    dest = Path(dest or weights_dir())
    dest.mkdir(parents=True, exist_ok=True)
    source_dir = source_dir or os.environ.get("TINYTRAIN_WEIGHTS_DIR")
    placed = []
    for name, digest in SHA256.items():
        target = dest / f"{name}.pkl"
        if target.is_file() and sha256(target) == digest:
            placed.append(target)
            continue
        tmp = target.with_suffix(".part")
        if source_dir:
            src = Path(source_dir) / f"{name}.pkl"
            if not src.is_file():
                raise WeightsMissing(f"{src} does not exist; point TINYTRAIN_WEIGHTS_DIR at the "
                                     "folder with the three .pkl files, or unset it to download")
            shutil.copyfile(src, tmp)
        else:
            url = URL.format(name=name)
            print(f"downloading {url}")
            try:
                urllib.request.urlretrieve(url, tmp)
            except OSError as e:
                raise WeightsMissing(f"could not download {url} ({e}); on an offline machine set "
                                     "TINYTRAIN_WEIGHTS_DIR to a folder holding the files") from e
        got = sha256(tmp)
        if got != digest:
            tmp.unlink()
            raise ValueError(f"{name}.pkl has sha256 {got}, expected {digest}: the file is corrupt "
                             "or a different version; delete it and fetch again from the pinned "
                             f"commit {COMMIT}")
        tmp.replace(target)
        placed.append(target)
        print(f"ok  {target}  sha256 verified")
    return placed


def _dequantise(conv: dict) -> tuple[torch.Tensor, torch.Tensor]:
    p = conv["params"]
    w_scales = np.asarray(p["w_scales"], dtype=np.float64)
    w = np.asarray(p["weight"], dtype=np.float64) * w_scales.reshape(-1, 1, 1, 1)
    b = np.asarray(p["bias"], dtype=np.float64) * float(p["x_scale"]) * w_scales
    return torch.tensor(w, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)


def _file_convs(d: dict) -> list[dict]:
    convs = [d["first_conv"]]
    for b in d["blocks"]:
        convs += [b[k] for k in ("pointwise1", "depthwise", "pointwise2") if b[k] is not None]
    return convs


def load_imagenet(net: TinyNet, load_classifier: bool = True, path: Path | None = None) -> TinyNet:
    """Copy the dequantised ImageNet weights into `net` (the nomix part; a feature-mix conv
    keeps its initialisation). Shapes are checked layer by layer. A file found by name must
    be the pinned release (sha256); an explicit `path` is only read safely."""
    if path is None:
        path = find(net.name)
        if net.name in SHA256:
            verify(net.name, path)
    d = safe_load(path)
    units = [u for u in net.backbone.convs() if u is not net.backbone.feature_mix]
    file_convs = _file_convs(d)
    if len(file_convs) != len(units):
        raise ValueError(f"{path}: {len(file_convs)} convs in the file, {len(units)} in {net.name}")
    with torch.no_grad():
        for unit, conv in zip(units, file_convs):
            w, b = _dequantise(conv)
            if w.shape != unit.conv.weight.shape:
                raise ValueError(f"{path}: {unit.shape.name} has shape {tuple(w.shape)} in the file, "
                                 f"{tuple(unit.conv.weight.shape)} in the spec")
            unit.conv.weight.copy_(w)
            unit.conv.bias.copy_(b)
        if load_classifier:
            w, b = _dequantise(d["classifier"])
            net.classifier.weight.copy_(w.flatten(1))
            net.classifier.bias.copy_(b)
    return net


def main() -> None:
    """`python -m tinytrain_core.nets.weights` (what `make weights` runs)."""
    try:
        fetch()
    except (WeightsMissing, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
