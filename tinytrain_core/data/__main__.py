"""Command line of the data room.

    python -m tinytrain_core.data build --profile default [--domain NAME] [--force] [--no-install]
    python -m tinytrain_core.data fixture
    python -m tinytrain_core.data domain --src path/to/folder --name mydomain
    python -m tinytrain_core.data list --profile default
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from . import BUILTIN, build_fixture, list_domains, load_domain, summary_row
from .domains import domains_dir
from .profiles import episode_config, profile_settings

EVAL_SEED = 0


def write_episodes(profile: str, names: list[str]) -> None:
    """Pre-compute the evaluation episode lists every method shares (variable-way on val and
    test, plus 5-way 5-shot 2-query on test, as in 00_data.ipynb)."""
    from .episodes import EpisodeConfig, sample_episodes
    n = profile_settings(profile)["n_episodes"]
    for name in names:
        d = load_domain(name, profile)
        for split in ("val", "test"):
            if len(d.classes(split)) >= 5:
                sample_episodes(d, split, n, episode_config(profile), EVAL_SEED, profile)
        try:
            sample_episodes(d, "test", n, EpisodeConfig(mode="fixed", ways=5, shots=5, queries=2),
                            EVAL_SEED, profile)
        except ValueError as e:
            print(f"  {name}: no 5-way 5-shot episodes ({e})")
    print(f"episodes written to data/episodes/{profile}/ ({n} per list)")


def build(profile: str, only: list[str] | None, force: bool, install: bool) -> int:
    if profile == "smoke":
        build_fixture()
        write_episodes(profile, list_domains(profile))
        print("smoke profile: fixture domains built (no installs)")
        return 0
    from .install import ensure
    names = only or list(BUILTIN)
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        print(f"unknown domain(s) {unknown}; built-in domains: {', '.join(BUILTIN)}")
        return 2
    # The base domain drops classes that collide with target test classes, so targets go first.
    order = [n for n in names if n != "icons"] + (["icons"] if "icons" in names else [])
    failed = []
    for name in order:
        t0 = time.time()
        if (domains_dir() / name / "manifest.json").is_file() and not force:
            print(f"[{name}] already built (use --force to rebuild)")
            continue
        if install:
            ok, msg = ensure(name)
            if not ok:
                print(f"[{name}] SKIPPED: {msg}")
                failed.append(name)
                continue
            if msg:
                print(f"[{name}] {msg}")
        try:
            mod = importlib.import_module(f".sources.{name}", __package__)
            m = mod.build(profile)
            print(f"[{name}] built: {m['n_classes']} classes, {m['images']} images, min "
                  f"{m['min_images_per_class']}/class, {time.time() - t0:.0f} s")
        except Exception as e:  # noqa: BLE001 - one broken source must not stop the rest
            traceback.print_exc()
            print(f"[{name}] FAILED: {type(e).__name__}: {e}; continuing with the other domains")
            failed.append(name)
    built = list_domains(profile)
    write_episodes(profile, [n for n in built if n in names or not only])
    for n in built:
        r = summary_row(load_domain(n, profile))
        print(f"  {n:9s} {r['role']:6s} train/val/test {r['classes_train']:4d}/{r['classes_val']:3d}/"
              f"{r['classes_test']:4d}  images {r['images']:6d}  min/class {r['min_images_per_class']}")
    if failed:
        print(f"not built: {', '.join(failed)} (see messages above); the others are usable")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinytrain_core.data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="install sources and render domains + episodes")
    b.add_argument("--profile", default="default", choices=["smoke", "default", "paper"])
    b.add_argument("--domain", action="append", help="build only this domain (repeatable)")
    b.add_argument("--force", action="store_true", help="rebuild domains already built")
    b.add_argument("--no-install", action="store_true", help="use only what is installed")
    sub.add_parser("fixture", help="generate the tiny fixture domains (seconds, no installs)")
    d = sub.add_parser("domain", help="turn a folder of class subfolders into a domain")
    d.add_argument("--src", required=True)
    d.add_argument("--name", required=True)
    d.add_argument("--role", default="target", choices=["target", "base"])
    d.add_argument("--min-images", type=int, default=2)
    ls = sub.add_parser("list", help="print the built domains of a profile")
    ls.add_argument("--profile", default="default")
    a = ap.parse_args(argv)
    if a.cmd == "build":
        return build(a.profile, a.domain, a.force, not a.no_install)
    if a.cmd == "fixture":
        t0 = time.time()
        names = build_fixture()
        write_episodes("smoke", names)
        print(f"fixture domains {', '.join(names)} written in {time.time() - t0:.1f} s")
        return 0
    if a.cmd == "domain":
        from .byo import import_folder
        try:
            import_folder(a.src, a.name, role=a.role, min_images=a.min_images)
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}")
            return 2
        return 0
    if a.cmd == "list":
        for n in list_domains(a.profile):
            print(n)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
