"""Target `signs` (stands in for Traffic Sign): national flags (~250 countries and regions),
each drawn by several designers: four flag icon sets of @iconify/json (flag 4x3 and 1x1,
circle-flags, flagpack, cif), the flag emoji of the colour emoji sets and of Apple/Facebook.
Class = ISO 3166 code (label: country name). Identical artwork across designers is kept once.

Road and safety signs (openclipart, tuxpaint) are single drawings per sign, so they cannot form
classes of >= 6 images and are not used.
"""
from __future__ import annotations

from collections import defaultdict

from ..domains import BUILTIN
from ..profiles import build_caps
from . import iconify as I
from .common import DomainWriter
from .emoji import datasource, images_for, manifest_sources, render

MIN_IMAGES = 6


def build(profile: str) -> dict:
    _, max_images = build_caps(profile, "signs")
    flags = [e for e in datasource() if e.get("subcategory") == "country-flag"]
    code = lambda e: "".join(chr(97 + int(cp, 16) - 0x1F1E6) for cp in e["unified"].split("-"))  # noqa: E731
    sets = [p for p in I.EMOJI_COLOUR if (I.root() / "json" / f"{p}.json").is_file()]
    jobs = images_for(flags, sets, lambda e: code(e))
    extra = defaultdict(list)
    for p in I.FLAG_SETS:
        names = set(I.names(p))
        for e in flags:
            c = code(e)
            for n in ([f"{c}-4x3", f"{c}-1x1"] if p == "flag" else [c]):
                if n in names:
                    extra[c].append((f"{p}:{n}", I.svg(p, n)))
        I.load_set.cache_clear()
    for c, v in extra.items():
        jobs[c] = v + jobs.get(c, [])
    w = DomainWriter("signs")
    render(w, jobs, "signs", max_images)
    sources = manifest_sources(sets + I.FLAG_SETS)
    role, stands = BUILTIN["signs"]
    return w.finish(role, stands, sources, MIN_IMAGES, seed=0, max_images=max_images,
                    description="national flags by several designers",
                    labels={code(e): e["name"].removesuffix(" Flag").lower() for e in flags})
