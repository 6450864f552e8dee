"""The backbones of a run: one per checkpoint, and the identity (content hash) of the weights
each checkpoint name stands for, which every row's key carries."""
from __future__ import annotations

import os
from pathlib import Path

from .. import profiles
from ..nets import checkpoints
from ..nets.weights import SHA256
from ..paths import RUN_ENV, warn
from ..runtime import CL, device
from ..training.finetune import initial_state
from .config import AdaptConfig


class Backbones:
    """One backbone per checkpoint, channels_last, with its initial weights kept for resets,
    and the identity (content hash) of the weights each checkpoint name stands for."""

    def __init__(self, cfg: AdaptConfig):
        self.cfg, self.nets, self.fallbacks, self.ids = cfg, {}, set(), {}

    def get(self, checkpoint: str):
        if checkpoint not in self.nets:
            net = self.load(checkpoint).backbone
            self._check_unchanged(checkpoint)
            net = net.to(device()).to(memory_format=CL).eval()
            self.nets[checkpoint] = (net, initial_state(net))
        return self.nets[checkpoint]

    def identity(self, checkpoint: str) -> str:
        """'<name>:<sha256 prefix>' of the weights `checkpoint` loads in this run. ImageNet: the
        pinned release's hash (load_imagenet verifies the file against it); a trained checkpoint:
        its .pt file's hash; a missing meta checkpoint under meta_fallback: ImageNet's. Raises
        the loader's own error (what to run to create it) when the checkpoint is missing."""
        if checkpoint not in self.ids:
            self.ids[checkpoint] = self._identity(checkpoint)
        return self.ids[checkpoint]

    def _identity(self, checkpoint: str) -> str:
        if checkpoint == "imagenet":
            return f"imagenet:{SHA256[self.cfg.model][:16]}"
        if not self._path(checkpoint).is_file():
            try:
                self._load_named(checkpoint)        # raises, saying how to make the checkpoint
            except FileNotFoundError as e:
                self._fall_back(checkpoint, e)
                return self.identity("imagenet")
        return self._hashed(checkpoint)

    def _path(self, checkpoint: str) -> Path:
        return checkpoints.checkpoint_path(self.cfg.model, checkpoint, self.cfg.profile)

    def _hashed(self, checkpoint: str) -> str:
        return f"{checkpoint}:{checkpoints.file_sha256(self._path(checkpoint))[:16]}"

    def _check_unchanged(self, checkpoint: str):
        """Rows are keyed by the identity taken before loading: the file must not have been
        replaced in between (e.g. notebook 01 retraining it while this run starts)."""
        if checkpoint not in self.ids or checkpoint == "imagenet" or checkpoint in self.fallbacks:
            return
        if self._hashed(checkpoint) != self.ids[checkpoint]:
            raise RuntimeError(f"checkpoint {checkpoint!r} of {self.cfg.model} changed while this run "
                               "loaded it (is notebooks/01_pretrain.ipynb running?); rerun when it is done")

    def _fall_back(self, checkpoint: str, why: FileNotFoundError):
        """Use the ImageNet weights for a missing meta checkpoint under meta_fallback (with a
        warning); anything else missing is `why`, raised."""
        if not (self.cfg.meta_fallback and checkpoint == "meta"):
            raise why
        _no_fallback_in_reproduce(self.cfg, why)
        warn(f"{why}\n-> meta_fallback=True: using the ImageNet weights instead", stacklevel=3)
        self.fallbacks.add(checkpoint)

    def _load_named(self, checkpoint: str):
        return checkpoints.load_backbone(self.cfg.model, checkpoint, self.cfg.profile)

    def load(self, checkpoint: str):
        """A fresh TinyNet holding `checkpoint`'s weights (ImageNet's for a meta checkpoint that
        fell back); `get` keeps the one it prepared."""
        if checkpoint in self.fallbacks:
            return self._load_named("imagenet")
        try:
            return self._load_named(checkpoint)
        except FileNotFoundError as e:
            self._fall_back(checkpoint, e)
            return self._load_named("imagenet")


def _no_fallback_in_reproduce(cfg: AdaptConfig, why: FileNotFoundError) -> None:
    """In a `make reproduce` run (`paths.RUN_ENV` set) notebook 01 has trained the meta
    checkpoint of every model the profile meta-trains: one missing there is a lost output, and
    ImageNet weights under the meta name would make every meta row and table wrong in a run that
    ends complete. Refused; models the profile does not meta-train keep the documented fallback."""
    run = os.environ.get(RUN_ENV)
    if run and cfg.model in profiles.settings(cfg.profile, "meta")["models"]:
        raise FileNotFoundError(
            f"{why}\n`make reproduce` run {run}: ImageNet weights may not stand in for the meta checkpoint "
            f"notebook 01 trains; rerun `make reproduce PROFILE={cfg.profile}` (01 runs again when a file it "
            f"wrote is missing) or start over with `make reproduce PROFILE={cfg.profile} FRESH=1`") from None
