"""Target `emoji` (stands in for VGG Flower / Fungi: many look-alike classes, one concept drawn
by many artists): class = one emoji (code point sequence), images = its artwork by up to 12
vendors (iconify's colour emoji sets plus Apple and Facebook from emoji-datasource). Only the
look-alike categories (faces, people and gestures, animals and plants) are used: over all
categories frozen ImageNet features scored 96% 5-way 5-shot, leaving no room to adapt.

Joined by code point (sets with a `chars` map) or by normalised name (sets without). Label
noise: vendor sets repeat each other's artwork (Google = noto, Twitter = twemoji), so renders
with the same coarse fingerprint within a class are kept once. Flags go to `signs`.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from PIL import Image

from ..domains import BUILTIN, safe_name
from ..install import npm_package, npm_version
from ..profiles import build_caps
from . import iconify as I
from .common import DomainWriter, render_svgs

MIN_IMAGES = 6
VENDORS = ["apple", "facebook"]
CATEGORIES = ("Smileys & Emotion", "People & Body", "Animals & Nature")


def key(code: str) -> str:
    return "-".join(p for p in code.lower().split("-") if p != "fe0f")


def datasource() -> list[dict]:
    return json.loads((npm_package("emoji-datasource-apple") / "emoji.json").read_text())


def vendor_png(vendor: str, image: str):
    return npm_package(f"emoji-datasource-{vendor}") / "img" / vendor / "64" / image


def iconify_index(sets: list[str]) -> dict[str, dict[str, str]]:
    """emoji key -> {set: icon name} over the colour emoji sets."""
    by_code, name_to_code = defaultdict(dict), {}
    for p in sets:
        for code, name in I.chars(p).items():
            by_code[key(code)][p] = name
            name_to_code.setdefault(name, key(code))
    for p in sets:
        if not I.chars(p):
            for n in I.names(p):
                code = name_to_code.get(n)
                if code and p not in by_code[code]:
                    by_code[code][p] = n
    return by_code


def images_for(entries: list[dict], sets: list[str], cls_of) -> list[tuple[str, str, object]]:
    """(class, source, svg string or PNG path) jobs for the given emoji entries."""
    index = iconify_index(sets)
    jobs = defaultdict(list)
    for p in sets:
        for e in entries:
            name = index.get(key(e["unified"]), {}).get(p)
            if name:
                jobs[cls_of(e)].append((p, I.svg(p, name)))
        I.load_set.cache_clear()
    for e in entries:
        for v in VENDORS:
            f = vendor_png(v, e["image"])
            if e.get(f"has_img_{v}") and f.is_file():
                jobs[cls_of(e)].append((v, f))
    return jobs


def add_vendor_pngs(w: DomainWriter, pngs: list[tuple[str, object]]) -> None:
    for cls, f in pngs:
        with Image.open(f) as im:
            w.add(cls, im.copy(), fit="content")


def render(w: DomainWriter, jobs: dict, desc: str, cap: int | None) -> None:
    svg_jobs, pngs = [], []
    for cls in sorted(jobs):
        items = sorted(jobs[cls], key=lambda t: hashlib.md5((cls + t[0]).encode()).hexdigest())
        for src, obj in items[:(cap + 2) if cap else None]:
            (pngs.append((cls, obj)) if src in VENDORS else svg_jobs.append((cls, src, obj)))
    add_vendor_pngs(w, pngs)
    render_svgs(svg_jobs, w, desc)


def manifest_sources(sets: list[str]) -> list[dict]:
    """The manifest's source entries of a domain drawn from iconify `sets` plus the vendors' PNGs."""
    return [{"name": "npm:@iconify/json", "version": I.version(),
             "licence": "per set: " + ", ".join(sorted({I.licence(p) for p in sets}))}] + \
        [{"name": f"npm:emoji-datasource-{v}", "version": npm_version(f"emoji-datasource-{v}") or "missing",
          "licence": f"MIT (package); {v.title()} artwork (c) {v.title()}: never commit"} for v in VENDORS]


def build(profile: str) -> dict:
    max_classes, max_images = build_caps(profile, "emoji")
    entries = [e for e in datasource() if e["category"] in CATEGORIES]
    sets = [p for p in I.EMOJI_COLOUR if (I.root() / "json" / f"{p}.json").is_file()]
    index = iconify_index(sets)
    avail = {e["unified"]: len(index.get(key(e["unified"]), {})) +
             sum(bool(e.get(f"has_img_{v}")) for v in VENDORS) for e in entries}
    eligible = [e for e in entries if avail[e["unified"]] >= MIN_IMAGES + 2]
    eligible.sort(key=lambda e: hashlib.md5(e["unified"].encode()).hexdigest())
    chosen = eligible[:max_classes] if max_classes else eligible
    print(f"[emoji] {len(eligible)} emoji with >= {MIN_IMAGES + 2} designs; rendering {len(chosen)}")
    cls_of = lambda e: safe_name(e["short_name"])  # noqa: E731
    w = DomainWriter("emoji")
    render(w, images_for(chosen, sets, cls_of), "emoji", max_images)
    sources = manifest_sources(sets)
    role, stands = BUILTIN["emoji"]
    return w.finish(role, stands, sources, MIN_IMAGES, seed=0, max_images=max_images,
                    description="one emoji by many vendors; duplicate vendor artwork removed",
                    labels={cls_of(e): e["name"].lower() for e in chosen})
