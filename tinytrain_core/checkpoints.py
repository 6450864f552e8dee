"""Checkpoints that load without executing code.

A checkpoint is a `.pt` file holding only tensors and plain containers, read back with
`torch.load(weights_only=True)` (PyTorch's restricted unpickler), plus a JSON sidecar with the
config, seed and data-manifest hash that made it. A rerun compares the sidecar to decide reuse.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch


class BadCheckpoint(RuntimeError):
    pass


def save(path: str | Path, state_dict: dict, meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)
    tmp.replace(path)  # an interrupted save never leaves a half-written checkpoint behind
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    return path


def load(path: str | Path) -> tuple[dict, dict]:
    """(state_dict, meta). Anything but tensors in the file, or a damaged file, is refused."""
    path = Path(path)
    if not path.is_file():
        raise BadCheckpoint(f"checkpoint {path} does not exist; run notebooks/01_pretrain.ipynb "
                            "(make reproduce) to create it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise BadCheckpoint(f"{path} is not a valid tensor-only checkpoint ({e}); delete it and "
                            "rerun the notebook that writes it") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadCheckpoint(f"{path} does not hold a plain state dict of tensors")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return state, meta


def matches(path: str | Path, meta: dict) -> bool:
    """True when a checkpoint exists and was made with exactly this config."""
    path = Path(path)
    side = path.with_suffix(".json")
    if not (path.is_file() and side.is_file()):
        return False
    try:
        old = json.loads(side.read_text())
    except json.JSONDecodeError:
        return False
    return json.loads(json.dumps(meta, sort_keys=True, default=str)) == old
