"""Per-profile sizes: sampler caps for evaluation episodes and how much each builder renders.

smoke runs in seconds on the fixture; default fits a 2-core machine (make data < 20 min);
paper uses the Meta-Dataset caps and larger class counts.
"""
from __future__ import annotations

from ..paths import check_profile
from .episodes import EpisodeConfig

SETTINGS = {
    "smoke": {
        "episode": dict(max_ways=10, min_ways=5, max_query_per_class=5, max_support=50,
                        max_support_per_class=10),
        "n_episodes": 4,
        "build": {},
    },
    "default": {
        "episode": dict(max_ways=20, min_ways=5, max_query_per_class=10, max_support=100,
                        max_support_per_class=20),
        "n_episodes": 50,
        # classes kept per domain, images kept per class
        "build": {"icons": (1200, 16), "cjk": (500, 15), "emoji": (600, 12), "glyphs": (None, 12),
                  "lineart": (None, 12), "signs": (None, 16), "cards": (None, 30),
                  "fashion": (None, 600), "textures": (None, 20), "clipart": (None, 16)},
    },
    "paper": {
        "episode": dict(max_ways=50, min_ways=5, max_query_per_class=10, max_support=500,
                        max_support_per_class=100),
        "n_episodes": 200,
        "build": {"icons": (None, 40), "cjk": (2000, 15), "emoji": (None, 14), "glyphs": (None, 20),
                  "lineart": (None, 20), "signs": (None, 20), "cards": (None, 30),
                  "fashion": (None, 2000), "textures": (None, 40), "clipart": (None, 60)},
    },
}


def profile_settings(profile: str) -> dict:
    return SETTINGS[check_profile(profile)]


def episode_config(profile: str, **overrides) -> EpisodeConfig:
    """The variable-way variable-shot config of a profile (caps shrunk for smoke/default)."""
    return EpisodeConfig(mode="variable", **{**profile_settings(profile)["episode"], **overrides})


def build_caps(profile: str, domain: str) -> tuple[int | None, int | None]:
    """(max classes, max images per class) for a builder; None = no cap. Smoke builds no
    real domain, so it falls back to the default sizes when asked."""
    b = profile_settings(profile)["build"] or SETTINGS["default"]["build"]
    return b.get(domain, (None, None))
