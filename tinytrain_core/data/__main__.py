"""Command line of the data room.

    python -m tinytrain_core.data build --profile default [--domain NAME] [--force] [--no-install]
    python -m tinytrain_core.data fixture
    python -m tinytrain_core.data domain --src path/to/folder --name mydomain [--force]
    python -m tinytrain_core.data convert-md --records PATH [--sources a,b] [--max-per-class N] [--force]
    python -m tinytrain_core.data convert-mini --src PATH [--force]
    python -m tinytrain_core.data list --profile default
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback

from . import BUILTIN, build_fixture, list_domains, load_domain, summary_row
from ..lock import held
from .domains import BelowMinima, below_minima, data_root, domains_dir, real_domains
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


def _usable(name: str) -> bool:
    """Built, and still meets its minima (an older build may not)."""
    f = domains_dir() / name / "manifest.json"
    return f.is_file() and below_minima(name, json.loads(f.read_text())) is None


def build_order(names: list[str]) -> list[str]:
    """Targets first, then the base: the base drops classes that collide with *every* built-in
    target, so building it pulls in the targets that are not usable yet."""
    if "icons" not in names:
        return list(names)
    targets = [n for n, (role, _) in BUILTIN.items() if role == "target"]
    pulled = [n for n in targets if n not in names and not _usable(n)]
    if pulled:
        print(f"icons needs every target domain first: also building {', '.join(pulled)}")
    return [n for n in targets if n in names or n in pulled] + ["icons"]


def build(profile: str, only: list[str] | None, force: bool, install: bool) -> int:
    """Build the requested domains (all by default); exit status 1 when any of them failed or
    fell below its minima, with the list of failures as the last line."""
    if profile == "smoke":
        build_fixture()
        write_episodes(profile, list_domains(profile))
        print("smoke profile: fixture domains built (no installs)")
        return 0
    if profile == "paper" and not only and real_domains():
        write_episodes(profile, list_domains(profile))
        print(f"paper profile: the converted real data ({', '.join(list_domains(profile))}); embedded domains not built")
        return 0
    from .install import building, ensure, install_all
    names = only or list(BUILTIN)
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        print(f"unknown domain(s) {unknown}; built-in domains: {', '.join(BUILTIN)}")
        return 2
    order = build_order(names)
    if install:
        install_all([n for n in order if force or not _usable(n)])
    failed: dict[str, str] = {}
    for name in order:
        t0 = time.time()
        if _usable(name) and not force:
            print(f"[{name}] already built (use --force to rebuild)")
            continue
        if name == "icons" and failed:
            failed[name] = f"needs every target domain; not built: {', '.join(failed)}"
            print(f"[icons] SKIPPED: {failed[name]}")
            continue
        if install:
            ok, msg = ensure(name)
            if not ok:
                print(f"[{name}] FAILED: {msg}")
                failed[name] = msg
                continue
            if msg:
                print(f"[{name}] {msg}")
        try:
            with building(name):
                m = importlib.import_module(f".sources.{name}", __package__).build(profile)
            print(f"[{name}] built: {m['n_classes']} classes, {m['images']} images, min "
                  f"{m['min_images_per_class']}/class, {time.time() - t0:.0f} s")
        except Exception as e:  # noqa: BLE001 - one broken source must not stop the rest
            if not isinstance(e, BelowMinima):
                traceback.print_exc()
            print(f"[{name}] FAILED: {type(e).__name__}: {e}; continuing with the other domains")
            failed[name] = f"{type(e).__name__}: {e}"
    built = [n for n in list_domains(profile) if n not in failed]
    write_episodes(profile, [n for n in built if n in names or not only])
    for n in built:
        r = summary_row(load_domain(n, profile))
        print(f"  {n:9s} {r['role']:6s} train/val/test {r['classes_train']:4d}/{r['classes_val']:3d}/"
              f"{r['classes_test']:4d}  images {r['images']:6d}  min/class {r['min_images_per_class']}")
    if failed:
        print(f"make data FAILED for {len(failed)} domain(s): {', '.join(failed)} "
              "(reasons above; fix them and rerun `make data`)")
        return 1
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
    d.add_argument("--force", action="store_true", help="replace an existing domain of that name")
    md = sub.add_parser("convert-md", help="convert Meta-Dataset's records into the paper's "
                        "target domains md_<source> (convert.py)")
    md.add_argument("--records", required=True, help="Meta-Dataset's records root")
    md.add_argument("--sources", help="comma-separated sources (default: the nine targets present)")
    md.add_argument("--max-per-class", type=int, help="keep at most N images of a class")
    md.add_argument("--force", action="store_true", help="convert sources already converted again")
    mini = sub.add_parser("convert-mini", help="convert MiniImageNet into the paper's base domain")
    mini.add_argument("--src", required=True, help="MiniImageNet folder (either layout)")
    mini.add_argument("--force", action="store_true", help="replace an existing miniimagenet")
    ls = sub.add_parser("list", help="print the built domains of a profile")
    ls.add_argument("--profile", default="default")
    a = ap.parse_args(argv)
    # two builds at once collide on the same temporary folders: the second waits (lock.py)
    building = held(data_root() / ".build.lock", "building data", wait=True)
    if a.cmd == "build":
        with building:
            return build(a.profile, a.domain, a.force, not a.no_install)
    if a.cmd == "fixture":
        t0 = time.time()
        with building:
            names = build_fixture()
            write_episodes("smoke", names)
        print(f"fixture domains {', '.join(names)} written in {time.time() - t0:.1f} s")
        return 0
    if a.cmd == "domain":
        from .byo import import_folder
        try:
            import_folder(a.src, a.name, role=a.role, min_images=a.min_images, force=a.force)
        except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as e:
            print(f"error: {e}", file=sys.stderr)  # a user error: the message, no traceback
            return 2
        return 0
    if a.cmd in ("convert-md", "convert-mini"):
        from . import convert, miniimagenet
        try:
            if a.cmd == "convert-mini":
                try:
                    miniimagenet.convert_miniimagenet(a.src, force=a.force)
                except FileExistsError as e:  # like convert-md: what is converted is kept
                    print(f"{e}; skipped")
            else:
                sources = [s.strip() for s in a.sources.split(",") if s.strip()] if a.sources else convert.TARGETS
                convert.convert_meta_dataset_all(a.records, sources, a.max_per_class, a.force)
        except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as e:
            print(f"error: {e}", file=sys.stderr)  # a user error: the message, no traceback
            return 2
        return 0
    if a.cmd == "list":
        for n in list_domains(a.profile):
            print(n)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
