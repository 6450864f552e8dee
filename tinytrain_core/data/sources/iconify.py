"""Reading icon sets from npm `@iconify/json` (238 sets of SVG icons stored as JSON).

Shared by icons (base), lineart, emoji and signs. Which set goes where is decided here, once,
so the base domain never draws from a set a target domain uses.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from ..install import npm_package, npm_version

EMOJI_COLOUR = ["noto", "noto-v1", "twemoji", "openmoji", "fluent-emoji", "fluent-emoji-flat",
                "emojione", "emojione-v1", "fxemoji", "streamline-emojis"]
EMOJI_LINE = ["fluent-emoji-high-contrast", "emojione-monotone"]
FLAG_SETS = ["flag", "circle-flags", "flagpack", "cif"]
NON_COMMERCIAL = {"cbi", "ps"}
BRAND_SETS = ["simple-icons", "fa6-brands", "fa-brands", "cib", "bxl", "devicon"]  # CC-BY-NC: excluded everywhere
# Stroke-drawn sets (QuickDraw-like): the lineart domain, kept out of the base domain.
LINE_SETS = ["tabler", "lucide", "iconoir", "akar-icons", "line-md", "la", "uil", "system-uicons",
             "humbleicons", "icon-park-outline", "streamline-freehand", "pepicons-pencil",
             "circum", "gala", "hugeicons", "proicons", "mynaui", "ph", "mingcute", "ri",
             "majesticons", "solar", "eva", "clarity", "basil", "lets-icons"]
STYLE = re.compile(r"(-(outline|outlined|line|linear|fill|filled|solid|bold|duotone|twotone|"
                   r"two-tone|light|thin|regular|rounded|round|sharp|broken|bulk|alt|alt\d|o|"
                   r"sm|md|lg|mini|micro|small|large|\d+|\d+px|stroke|thick|sharp))+$")
FILLED = re.compile(r"-(fill|filled|solid|bold|duotone|twotone|two-tone|bulk|glyph)(-|$)")
LINE_SUFFIX = re.compile(r"-(line|linear|outline|outlined|stroke|light|thin)(-|$)")
# Sets whose unsuffixed names are filled (their line variant carries a suffix).
VARIANT_LINE = {"mingcute", "ri", "majesticons", "solar", "eva", "clarity", "basil"}


def root() -> Path:
    return npm_package("@iconify/json")


def version() -> str:
    return npm_version("@iconify/json") or "missing"


@lru_cache(maxsize=None)
def collections() -> dict:
    return json.loads((root() / "collections.json").read_text())


def licence(prefix: str) -> str:
    info = collections().get(prefix, {})
    return info.get("license", {}).get("spdx") or info.get("license", {}).get("title", "unknown")


@lru_cache(maxsize=8)
def load_set(prefix: str) -> dict:
    return json.loads((root() / "json" / f"{prefix}.json").read_text())


def names(prefix: str) -> list[str]:
    """Icon names of a set, aliases that only flip/rotate left out."""
    s = load_set(prefix)
    return sorted(s["icons"]) + sorted(a for a, v in s.get("aliases", {}).items()
                                       if set(v) <= {"parent"})


def svg(prefix: str, name: str) -> str:
    s = load_set(prefix)
    icon = s["icons"].get(name)
    if icon is None:
        icon = s["icons"][s["aliases"][name]["parent"]]
    w, h = icon.get("width", s.get("width", 16)), icon.get("height", s.get("height", 16))
    left, top = icon.get("left", s.get("left", 0)), icon.get("top", s.get("top", 0))
    # cairosvg mis-sizes masks in objectBoundingBox units (circle-flags came out quartered)
    body = re.sub(r"<mask(?![^>]*maskUnits)", f'<mask maskUnits="userSpaceOnUse" x="{left}" '
                  f'y="{top}" width="{w}" height="{h}"', icon["body"])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{left} {top} {w} {h}" width="{w}" height="{h}" color="black">'
            f'{body}</svg>')


def concept(name: str) -> str:
    """'home-outline-rounded' -> 'home': one concept across the variants of a set."""
    return STYLE.sub("", name) or name


def chars(prefix: str) -> dict[str, str]:
    """Emoji sets: code point sequence (e.g. '1f600', '1f1eb-1f1f7') -> icon name."""
    return load_set(prefix).get("chars", {})


@lru_cache(maxsize=None)
def logo_names() -> frozenset[str]:
    """Names drawn by logo and brand sets: brand marks are not concepts (figma, android)."""
    out = set()
    for p in BRAND_SETS:
        if p in collections():
            out.update(concept(n) for n in load_set(p)["icons"])
            load_set.cache_clear()
    return frozenset(out)


def base_sets() -> list[str]:
    """Icon sets of the base domain: everything but emoji, flags, logos, line and NC sets."""
    out = []
    for p, info in collections().items():
        cat = info.get("category") or ""
        if p in NON_COMMERCIAL or p in LINE_SETS or p in EMOJI_COLOUR or p in EMOJI_LINE:
            continue
        if cat in ("Emoji", "Logos") or p in FLAG_SETS or "emoji" in p or "logo" in p \
                or "flag" in p:
            continue
        if info.get("palette"):  # multicolour sets are mostly illustrations/logos
            continue
        out.append(p)
    return sorted(out)
