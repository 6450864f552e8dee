"""The data room's view of a profile (`tinytrain_core/profiles.py`, section `data`): sampler caps
of the evaluation episodes and how much each builder renders."""
from __future__ import annotations

from .. import profiles
from .episodes import EpisodeConfig


def profile_settings(profile: str) -> dict:
    return profiles.settings(profile, "data")


def episode_config(profile: str, **overrides) -> EpisodeConfig:
    """The variable-way variable-shot config of a profile (caps shrunk for smoke/default)."""
    return EpisodeConfig(mode="variable", **{**profile_settings(profile)["episode"], **overrides})


def build_caps(profile: str, domain: str) -> tuple[int | None, int | None]:
    """(max classes, max images per class) for a builder; None = no cap. Smoke builds no
    real domain, so it falls back to the default sizes when asked."""
    b = profile_settings(profile)["build"] or profiles.settings("default", "data")["build"]
    return b.get(domain, (None, None))
