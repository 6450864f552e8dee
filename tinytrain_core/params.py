"""Checks for the notebooks' papermill parameters, run in each notebook's first setup cell.

A bad value should stop a notebook at once, with a message that names the parameter, the value
and what is allowed -- not minutes later as a KeyError or an IndexError deep inside a run.
Every check returns the (normalised) value, so a setup cell reads

    episodes = check_int(episodes, "episodes", allow_none=True)

papermill passes `-p x 5` as an int, `-p x abc` as a string and `-p x TinyTrain` as a string even
where the notebook expects a list; `as_name_list` turns such a string into a list, `as_number_list`
takes one number as a one-element list and refuses text.

Every count and size has an upper limit (`LIMITS`, by parameter name), checked before any work:
a typo such as `-p episodes 1000000000` would otherwise grow memory for hours before failing.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

from . import data
from .paths import PROFILES


# Upper limits by parameter name: about 10x the paper profile's size (profiles.py), far beyond any
# run that finishes in days on the machines this project targets. A value above is refused by
# check_int / check_float / as_number_list; raise the limit here for a deliberately bigger run.
LIMITS = {
    "episodes": 50_000,            # 01: meta-training episodes (paper 5000); 02/03: test episodes (paper 200)
    "val_episodes": 1_000,         # paper 5
    "steps": 10_000,               # paper 40
    "n_frozen_episodes": 10_000,   # paper 600
    "n_hist_episodes": 10_000,     # paper 600
    "frozen_queries": 100,
    "ways": 1_000,                 # more classes than any domain keeps per split
    "shots": 1_000,
    "queries": 1_000,
    "seed": 2**32 - 1,             # numpy's seed range
    "workers": 128,                # processes; each holds a backbone and a domain
    "batch_tasks": 1_024,          # tasks per GPU launch (paper 1)
    "sweep_tasks": 1_000,          # paper 10
    "measure_batch": 1_024,        # paper 4
    "fp32_batch": 1_024,
    "lr": 1.0,                     # AdamW diverges long before
    "memory_kib": 1e9,             # KiB: 1 TiB, beyond any device's memory
    "compute_macs": 1e12,          # backward MACs per sample (the backbones' full backward: < 1e9)
}
MAX_LIST = 20                      # numbers in a list parameter (each is a full arm of a run)


class ParameterError(ValueError):
    """A notebook parameter the notebook cannot use; the message starts with its name."""


class DomainsMissing(FileNotFoundError):
    """Domains a notebook needs are not built (or were built empty)."""


def _refuse(name: str, value, allowed: str):
    raise ParameterError(f"{name}: {value!r} is not allowed; {allowed}")


def _none_note(allow_none: bool) -> str:
    return " (or None for the profile's default)" if allow_none else ""


def check_choice(value, name: str, allowed, allow_none: bool = False):
    """`value` if it is one of `allowed` (or None where allowed), else ParameterError."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or value not in allowed:
        _refuse(name, value, f"choose one of {', '.join(allowed)}{_none_note(allow_none)}")
    return value


def check_profile(profile, name: str = "profile") -> str:
    """The profile name: smoke, default or paper."""
    return check_choice(profile, name, PROFILES)


def _limit(name: str, maximum):
    return LIMITS.get(name) if maximum is None else maximum


def _above(name: str, value, maximum) -> None:
    if maximum is not None and value > maximum:
        limit = int(maximum) if float(maximum).is_integer() else maximum
        _refuse(name, value, f"the limit is {limit} (tinytrain_core/params.py, LIMITS[{name!r}]): "
                             "use a smaller value, or raise the limit there for a deliberately bigger run")


def check_int(value, name: str, minimum: int = 1, allow_none: bool = False, maximum: int | None = None) -> int | None:
    """An integer >= `minimum` and <= the parameter's limit (`LIMITS`, or `maximum`); True/False
    and 5.0 are not integers here. None where allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        _refuse(name, value, f"expected an integer >= {minimum}{_none_note(allow_none)}")
    _above(name, value, _limit(name, maximum))
    return int(value)


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def check_float(value, name: str, allow_none: bool = False, maximum: float | None = None) -> float | None:
    """A finite number > 0 (an int is fine) and <= the parameter's limit, or None if allowed."""
    if value is None and allow_none:
        return None
    if not _is_number(value):
        _refuse(name, value, f"expected a positive number{_none_note(allow_none)}")
    _above(name, value, _limit(name, maximum))
    return float(value)


def as_number_list(value, name: str, allow_none: bool = True, maximum: float | None = None) -> list[float] | None:
    """A list of positive numbers (floats, duplicates dropped): a list or tuple as is, one number
    as a one-element list (`-p memory_kib 100`). Text is refused, never read character by
    character: papermill hands `-p memory_kib abc` (and `-p memory_kib 60,100`) over as a string."""
    how = f"give a number (`-p {name} 100`) or a list (`-y '{name}: [60, 100]'`){_none_note(allow_none)}"
    if value is None and allow_none:
        return None
    if _is_number(value):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        _refuse(name, value, how)
    if len(value) > MAX_LIST:
        _refuse(name, value, f"at most {MAX_LIST} numbers (tinytrain_core/params.py, MAX_LIST)")
    return list(dict.fromkeys(check_float(v, name, maximum=maximum) for v in value))


def check_bool(value, name: str) -> bool:
    """True or False (not "yes", not 1)."""
    if not isinstance(value, bool):
        _refuse(name, value, "expected True or False")
    return value


def _split_names(value) -> list:
    # "TinyTrain" is one name, not nine letters; "None,TinyTrain" is two.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def as_name_list(value, name: str, allowed, allow_none: bool = True) -> list[str] | None:
    """A list of names from `allowed`: a list or tuple as is, a single string as a one-element
    list, a comma-separated string split at the commas; duplicates dropped. None stays None
    where the notebook documents None = the profile's default."""
    allowed_note = f"choose from {', '.join(allowed)}{_none_note(allow_none)}"
    if value is None:
        if allow_none:
            return None
        hint = f" (the name None as text: `-r {name} None`)" if "None" in allowed else ""
        _refuse(name, value, f"give a name or a list of names; {allowed_note}{hint}")
    names = _split_names(value)
    if not names:
        _refuse(name, value, f"give at least one name; {allowed_note}")
    for n in names:
        if not isinstance(n, str) or n not in allowed:
            _refuse(name, n, allowed_note)
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------- data

def known_domains(profile: str) -> list[str]:
    """Domain names a profile can use: the fixture domains for smoke; the built-in domains plus
    any built bring-your-own domain otherwise."""
    if check_profile(profile) == "smoke":
        return list(data.FIXTURE)
    return list(data.BUILTIN) + [n for n in data.list_domains(profile) if n not in data.BUILTIN]


def expected_domains(profile: str) -> list[str]:
    """What a profile needs when a notebook names no domains: the fixture domains for smoke,
    every built-in domain for default, and for paper the converted real data when it is there
    (`data.domains.real_domains`), else every built-in domain."""
    if check_profile(profile) == "smoke":
        return list(data.FIXTURE)
    return (profile == "paper" and data.domains.real_domains()) or list(data.BUILTIN)


def _has_classes(name: str, profile: str) -> bool:
    try:
        d = data.load_domain(name, profile)
        return any(d.classes(split) for split in ("train", "val", "test"))
    except (ValueError, KeyError):   # unreadable or incomplete manifest: a broken build
        return False


def _unusable(names: list[str], profile: str) -> tuple[list[str], list[str]]:
    """(not built, built with no classes) among `names`."""
    built = set(data.list_domains(profile))
    missing = [n for n in names if n not in built]
    empty = [n for n in names if n in built and not _has_classes(n, profile)]
    return missing, empty


def _how_to_build(profile: str, missing: list[str], empty: list[str]) -> str:
    if profile == "smoke":
        return "run `make fixture`"
    if empty:   # their manifests exist, so only --force is sure to rebuild them
        only = " ".join(f"--domain {n}" for n in missing + empty)
        return f"rebuild with `python -m tinytrain_core.data build --profile {profile} {only} --force`"
    one_at_a_time = "" if len(missing) == 1 else "one domain at a time: "
    return f"run `make data PROFILE={profile}` (or {one_at_a_time}`make data PROFILE={profile} DOMAIN={missing[0]}`)"


def _missing_message(profile: str, missing: list[str], empty: list[str]) -> str:
    problems = []
    if missing:
        problems.append(f"domain(s) {', '.join(missing)} not built")
    if empty:
        problems.append(f"domain(s) {', '.join(empty)} built with 0 classes (a broken build)")
    return (f"{' and '.join(problems)} for profile {profile} under {data.data_root()}: "
            f"{_how_to_build(profile, missing, empty)}")


def require_domains(profile: str, names=None) -> list[str]:
    """Check that the domains a notebook needs are built and not empty; returns their names.

    `names` None means the profile's expected domains (`expected_domains`). In smoke the fixture
    is built on the spot (seconds, no installs); otherwise a missing domain raises DomainsMissing
    naming it and the command that builds it. A domain with 0 classes counts as missing."""
    check_profile(profile)
    names = as_name_list(names, "domains", known_domains(profile)) or expected_domains(profile)
    missing, empty = _unusable(names, profile)
    if profile == "smoke" and (missing or empty):
        data.build_fixture()
        missing, empty = _unusable(names, profile)
    if missing or empty:
        raise DomainsMissing(_missing_message(profile, missing, empty))
    return names
