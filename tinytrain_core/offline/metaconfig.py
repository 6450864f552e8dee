"""What determines a meta-trained checkpoint: `MetaConfig` (recorded in its sidecar), `resolve`
(the profile's `meta` section with a notebook's parameters applied) and the LR schedule.

The dataclass defaults are the smoke profile's values (tests build small configs from them);
notebooks and `metatrain.pretrain` always pass the resolved profile values.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..nets import models
from .. import profiles
from ..data import manifest_hash

INITS = ("imagenet", "scratch")
SCHEDULES = ("cosine", "constant")
AUGMENTS = ("batched", "none")     # "batched": data.augment_batch(x, "meta", generator)
SMOKE = profiles.settings("smoke", "meta")


@dataclass
class MetaConfig:
    """Everything that determines a meta-trained checkpoint (recorded in its sidecar)."""
    model: str
    profile: str = "smoke"
    init: str = SMOKE["init"]
    episodes: int = SMOKE["episodes"]
    ways: int = SMOKE["ways"]
    shots: int = SMOKE["shots"]
    queries: int = SMOKE["queries"]
    lr: float = SMOKE["lr"]
    weight_decay: float = SMOKE["weight_decay"]
    warmup: int = SMOKE["warmup"]
    schedule: str = SMOKE["schedule"]
    augment: str = SMOKE["augment"]
    val_every: int = SMOKE["val_every"]
    val_episodes: int = SMOKE["val_episodes"]
    seed: int = SMOKE["seed"]
    scratch_steps: int = SMOKE["scratch_steps"]
    scratch_batch: int = SMOKE["scratch_batch"]
    scratch_lr: float = SMOKE["scratch_lr"]

    def __post_init__(self):
        models.check_name(self.model)
        profiles.check_profile(self.profile)
        for name, allowed in (("init", INITS), ("schedule", SCHEDULES), ("augment", AUGMENTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")

    @property
    def augment_kind(self) -> str:
        """The `data.augment_batch` kind: "batched" is the (batched) meta augmentation."""
        return "none" if self.augment == "none" else "meta"


def sidecar(cfg: MetaConfig, name: str) -> dict:
    """What a checkpoint's sidecar records: the config, seed and data it was made from."""
    return {"checkpoint": name, "model": cfg.model, "profile": cfg.profile, "seed": cfg.seed,
            "config": asdict(cfg), "manifest_hash": manifest_hash(cfg.profile)}


def lr_lambda(step: int, total: int, warmup: int, schedule: str) -> float:
    """LR factor: linear warm-up (step+1)/(warmup+1) over `warmup` steps, then 1 ("constant") or
    cosine decay 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))) to 0 at `total`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def resolve(profile: str, **overrides) -> dict:
    """The profile's `meta` settings with the non-None overrides applied (the notebook's
    parameters); `models` becomes a tuple of checked names."""
    s = profiles.settings(profile, "meta", **overrides)
    s["models"] = tuple(models.check_name(m) for m in
                        ([s["models"]] if isinstance(s["models"], str) else s["models"]))
    return s


def configs(profile: str, **overrides) -> list[MetaConfig]:
    """One MetaConfig per requested backbone."""
    s = resolve(profile, **overrides)
    fields = set(MetaConfig.__dataclass_fields__) - {"model", "profile"}
    return [MetaConfig(model=m, profile=profile, **{k: v for k, v in s.items() if k in fields})
            for m in s["models"]]
