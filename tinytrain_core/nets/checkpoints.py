"""The one door to backbone weights, and checkpoints that load without executing code.

    create(model, pretrained=True)             the released ImageNet weights (`weights.py`)
    load_backbone(model, checkpoint, profile)  by name: "imagenet", "meta" (notebook 01), or the
                                               no-ImageNet path "scratch", "scratch-meta"
    checkpoint_path(model, name, profile)      results/<profile>/checkpoints/<model>-<name>.pt

A checkpoint is a `.pt` file holding only tensors and plain containers, read back with
`torch.load(weights_only=True)` (PyTorch's restricted unpickler), plus a JSON sidecar with the
config, seed and data-manifest hash that made it. A rerun compares the sidecar to decide reuse.

The sidecar also records the sha256 of the `.pt` it describes (`pt_sha256`): the two files are
renamed into place one after the other, so a run killed between the renames leaves new weights
under the old sidecar. The hash makes that visible: `matches` then answers no (the checkpoint is
remade) and `load` refuses the pair instead of handing out weights under the wrong description.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import torch

from . import models, weights
from ..paths import checkpoints_dir, shown

CHECKPOINTS = ("imagenet", "meta")                 # what 02_adapt and later notebooks choose between
SCRATCH_CHECKPOINTS = ("scratch", "scratch-meta")  # init="scratch": no ImageNet weights needed
SEED_PREFIX = "meta-seed"   # "meta-seed<s>": 01's meta-training again with seed s (experiment/meta_seeds.py)
HASH_FIELD = "pt_sha256"


class BadCheckpoint(RuntimeError):
    pass


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (the content identity of a checkpoint)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def history_path(path: str | Path) -> Path:
    """The training history (JSON rows) kept beside the checkpoint it made."""
    path = Path(path)
    return path.with_name(path.stem + "-history.json")


def _swap(tmp: Path, final: Path) -> None:
    """Rename a finished temporary file into place (a separate step so tests can interrupt it)."""
    tmp.replace(final)


def _plain(meta: dict) -> dict:
    """`meta` as it reads back from JSON (tuples become lists, odd types strings)."""
    return json.loads(json.dumps(meta, sort_keys=True, default=str))


def save(path: str | Path, state_dict: dict, meta: dict) -> Path:
    """Write the `.pt` and its sidecar: both to temporary files first, then the `.pt` renamed
    into place, then the sidecar (which names the `.pt`'s sha256, so a kill between the two
    renames leaves a pair that `matches` and `load` recognise as inconsistent)."""
    if HASH_FIELD in meta:
        raise ValueError(f"{HASH_FIELD!r} is reserved for the checkpoint's own hash")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_pt, tmp_side = path.with_suffix(".tmp"), path.with_suffix(".json.tmp")
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp_pt)
    side = {**meta, HASH_FIELD: file_sha256(tmp_pt)}
    tmp_side.write_text(json.dumps(side, indent=1, sort_keys=True, default=str))
    _swap(tmp_pt, path)
    _swap(tmp_side, sidecar_path(path))
    return path


def _read_sidecar(path: Path) -> dict | None:
    """The sidecar's content, or None when it is missing or not valid JSON."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError:
        return None


def _hash_problem(path: Path, side: dict, digest: str) -> str | None:
    """Why the sidecar does not vouch for these bytes of `path`, or None when it does."""
    recorded = side.get(HASH_FIELD)
    if recorded is None:
        return (f"its sidecar {sidecar_path(path).name} records no sha256 of the weights (written "
                "before checkpoints carried one), so it cannot vouch for them")
    if recorded != digest:
        return (f"its sha256 {digest[:12]}… differs from the {recorded[:12]}… recorded in "
                f"{sidecar_path(path).name} (a save interrupted between its two renames)")
    return None


def load(path: str | Path) -> tuple[dict, dict]:
    """(state_dict, meta). Anything but tensors in the file, a damaged file, or weights that
    differ from what their sidecar records, is refused."""
    path = Path(path)
    if not path.is_file():
        raise BadCheckpoint(f"checkpoint {shown(path)} does not exist; run notebooks/01_pretrain.ipynb "
                            "(make reproduce) to create it")
    raw = path.read_bytes()
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise BadCheckpoint(f"{shown(path)} is not a valid tensor-only checkpoint ({e}); delete it and "
                            "rerun the notebook that writes it") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadCheckpoint(f"{shown(path)} does not hold a plain state dict of tensors")
    side = _read_sidecar(path) or {}
    # a sidecar from before hashes were recorded cannot be checked; its weights load as they are
    problem = _hash_problem(path, side, hashlib.sha256(raw).hexdigest()) if HASH_FIELD in side else None
    if problem:
        raise BadCheckpoint(f"{shown(path)} is not the checkpoint its sidecar describes: {problem}; delete "
                            "both files and rerun notebooks/01_pretrain.ipynb to remake it")
    side.pop(HASH_FIELD, None)
    return state, side


def matches(path: str | Path, meta: dict) -> bool:
    """True when a checkpoint exists, was made with exactly this config, and its weights are the
    ones its sidecar records (by sha256). A pair that fails the hash check is reported."""
    path = Path(path)
    side = _read_sidecar(path)
    if not path.is_file() or side is None:
        return False
    if {k: v for k, v in side.items() if k != HASH_FIELD} != _plain(meta):
        return False
    problem = _hash_problem(path, side, file_sha256(path))
    if problem:
        print(f"{shown(path)} is not reused: {problem}; it is made again")
        return False
    return True


# ---------------------------------------------------------------- backbones by checkpoint name

def create(name: str, pretrained: bool = True, feature_mix: bool = False,
           num_classes: int = 1000, mix_seed: int = 0) -> models.TinyNet:
    """Build a backbone by name.

    pretrained=True loads the released ImageNet weights (dequantised, BatchNorm folded) from
    `data/weights/` or `$TINYTRAIN_WEIGHTS_DIR`; a missing file raises `WeightsMissing` naming
    `make weights`. With feature_mix=True the mix conv and the classifier stay randomly
    initialised (no released weights exist for them), from `mix_seed` and without touching the
    global random state: TinyTrain's scheme on that variant depends on those weights, so its
    cost rows must not change from run to run.
    """
    mixed = feature_mix and models.FEATURE_MIX[name]
    if not (pretrained and mixed):
        net = models.create(name, feature_mix=feature_mix, num_classes=num_classes)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed)
            net = models.create(name, feature_mix=feature_mix, num_classes=num_classes)
    if pretrained:
        weights.load_imagenet(net, load_classifier=not mixed and num_classes == 1000)
    return net


def meta_seed_name(seed: int) -> str:
    return f"{SEED_PREFIX}{int(seed)}"


def is_meta_seed(name: str) -> bool:
    return isinstance(name, str) and name.startswith(SEED_PREFIX) and name[len(SEED_PREFIX):].isdigit()


def is_checkpoint(name: str) -> bool:
    """A name `load_backbone` knows: CHECKPOINTS, SCRATCH_CHECKPOINTS or a meta-training seed's."""
    return name in CHECKPOINTS + SCRATCH_CHECKPOINTS or is_meta_seed(name)


def order(name: str) -> tuple:
    """Sort key: CHECKPOINTS in their order, then the rest by name."""
    return (CHECKPOINTS.index(name), "") if name in CHECKPOINTS else (len(CHECKPOINTS), name)


def checkpoint_names(init: str) -> tuple[str, str]:
    """(start, meta-trained) checkpoint names of an init ("imagenet" or "scratch")."""
    return CHECKPOINTS if init == "imagenet" else SCRATCH_CHECKPOINTS


def checkpoint_path(model: str, name: str, profile: str) -> Path:
    return checkpoints_dir(profile) / f"{model}-{name}.pt"


def backbone_state(net: models.TinyNet, head=None) -> dict:
    """What a checkpoint holds: the backbone's tensors under `backbone.`, plus the ProtoNet head's
    scale and bias when given. The classifier is never part of it."""
    state = {f"backbone.{k}": v for k, v in net.backbone.state_dict().items()}
    if head is not None:
        state.update({"proto_head.scale": head.scale.detach(), "proto_head.bias": head.bias.detach()})
    return state


def load_backbone(model: str, checkpoint: str = "imagenet", profile: str = "default") -> models.TinyNet:
    """A TinyNet whose backbone holds the `checkpoint` weights: "imagenet" (the released
    weights) or "meta" (meta-trained by notebooks/01_pretrain.ipynb); "scratch" and
    "scratch-meta" are the no-ImageNet path; "meta-seed<s>" the same meta-training with seed s
    (notebook 03). The classifier is not part of a checkpoint."""
    models.check_name(model)
    if not is_checkpoint(checkpoint):
        raise ValueError(f"unknown checkpoint {checkpoint!r}; valid checkpoints: "
                         f"{', '.join(CHECKPOINTS + SCRATCH_CHECKPOINTS)}, {SEED_PREFIX}<seed>")
    if checkpoint == "imagenet":
        return create(model, pretrained=True)
    path = checkpoint_path(model, checkpoint, profile)
    scratch = ", init='scratch'" if checkpoint.startswith("scratch") else ""
    if not path.is_file():
        raise FileNotFoundError(
            f"no {checkpoint!r} checkpoint for {model} in profile {profile!r} ({shown(path)}); create it "
            f"by running notebooks/{'03_ablations' if is_meta_seed(checkpoint) else '01_pretrain'}.ipynb "
            f"with profile={profile!r}{scratch} "
            f"(or `make reproduce PROFILE={profile}`)")
    state, _ = load(path)
    net = models.create(model)
    net.backbone.load_state_dict({k[len("backbone."):]: v for k, v in state.items()
                                  if k.startswith("backbone.")})
    return net
