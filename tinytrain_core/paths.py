"""Where things live: the project root, generated data, results and figures.

Every path the notebooks and the core write to is resolved here, so a notebook run from
`notebooks/` (papermill's working directory) and a test run from the root agree.
"""
from __future__ import annotations

import os
from pathlib import Path

from .profiles import PROFILES, check_profile

__all__ = ["PROFILES", "check_profile", "checkpoints_dir", "figures_dir", "project_root",
           "results_dir", "shared_dir", "weights_dir"]


def project_root() -> Path:
    """The repository root: `$TINYTRAIN_ROOT`, else the nearest folder above the working
    directory holding our pyproject.toml, else the folder above this package."""
    env = os.environ.get("TINYTRAIN_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        p = d / "pyproject.toml"
        if p.is_file() and 'name = "tinytrain-core"' in p.read_text(errors="ignore"):
            return d
    return Path(__file__).resolve().parent.parent


def results_dir(profile: str) -> Path:
    d = project_root() / "results" / check_profile(profile)
    d.mkdir(parents=True, exist_ok=True)
    return d


def figures_dir(profile: str) -> Path:
    d = project_root() / "figures" / check_profile(profile)
    d.mkdir(parents=True, exist_ok=True)
    return d


def checkpoints_dir(profile: str) -> Path:
    d = results_dir(profile) / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    return d


def weights_dir() -> Path:
    """Where `make weights` puts the ImageNet weights (data/weights/)."""
    return project_root() / "data" / "weights"


def shared_dir() -> Path:
    """The read-only reference folder handed to the project (paper tables, SparseUpdate's
    released schemes, accounting oracles): `$TINYTRAIN_SHARED_DIR`, else `../shared` beside the
    checkout. Its files are read at run time and never copied into git."""
    env = os.environ.get("TINYTRAIN_SHARED_DIR")
    d = Path(env) if env else project_root().parent / "shared"
    if not d.is_dir():
        raise FileNotFoundError(f"reference folder {d} not found; set TINYTRAIN_SHARED_DIR to the "
                                "folder holding paper/ and reference/")
    return d
