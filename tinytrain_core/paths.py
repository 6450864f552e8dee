"""Where things live: the project root, generated data, results and figures.

Every path the notebooks and the core write to is resolved here, so a notebook run from
`notebooks/` (papermill's working directory) and a test run from the root agree.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

# The profiles' names are folder names (results/<profile>/, figures/<profile>/), so they live with
# the folders; their sizes are `profiles.SIZES` (which checks it has exactly these).
PROFILES = ("smoke", "default", "paper")
# Set to a `make reproduce` run's id while its notebooks execute (reproduce.py sets it; a run's
# code reads it, e.g. to refuse a stand-in meta checkpoint in experiment/backbones.py).
RUN_ENV = "TINYTRAIN_REPRODUCE_RUN"

__all__ = ["PROFILES", "check_profile", "checkpoints_dir", "figures_dir", "project_root",
           "results_dir", "shown", "warn", "weights_dir"]


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def notebooks(root: Path) -> list[Path]:
    """The numbered notebooks (00_data ... 05_report), in the order `make reproduce` runs them."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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


def shown(path) -> str:
    """`path` as a message should name it: relative to the project root when it lies inside
    ("results/smoke/checkpoints/x.pt"), else as given. Notebook outputs are committed and read
    on other machines: an absolute path there names the machine that ran them, not the file."""
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def warn(message: str, category: type[Warning] = UserWarning, stacklevel: int = 1) -> None:
    """`warnings.warn`, with the warning's header naming the source file as `shown` does. A
    notebook prints the header ("<file>:<line>: UserWarning: ...") into its committed output;
    `stacklevel` counts as warnings.warn's does (1 = the function calling `warn`)."""
    frame = sys._getframe(stacklevel)
    g = frame.f_globals
    warnings.warn_explicit(message, category, shown(frame.f_code.co_filename), frame.f_lineno,
                           module=g.get("__name__", "__main__"), registry=g.setdefault("__warningregistry__", {}))


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
