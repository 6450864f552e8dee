"""Target `lineart` (stands in for QuickDraw): black stroke drawings of everyday concepts.

Images come from the stroke-drawn icon sets of @iconify/json (their line variants only), the
monochrome emoji styles (fluent-emoji-high-contrast, emojione-monotone) and OpenMoji's black
line art, joined by concept name. Concepts that the base domain's sets draw least are chosen,
so removing lineart's classes from the base domain costs it little.
"""
from __future__ import annotations

import json
from collections import defaultdict

from ..domains import BUILTIN, safe_name
from ..install import npm_package, npm_version
from ..profiles import build_caps
from . import iconify as I
from .common import DomainWriter, render_svgs
from .icons import EXCLUDE_SETS, _pick, concept_ok

MIN_IMAGES = 6
# Line and base sets share most of their vocabulary, and every lineart class is removed from
# the base domain: a modest class count keeps the base domain above 600 classes.
DEFAULT_CLASSES = {"default": 160, "paper": 200}


def line_variant(prefix: str, name: str) -> bool:
    if I.FILLED.search(name):
        return False
    return bool(I.LINE_SUFFIX.search(name)) if prefix in I.VARIANT_LINE else True


def build(profile: str) -> dict:
    _, max_images = build_caps(profile, "lineart")
    max_classes = DEFAULT_CLASSES.get(profile, 160)
    cand = defaultdict(dict)
    for p in I.LINE_SETS + I.EMOJI_LINE:
        for n in I.names(p):
            c = I.concept(n)
            if concept_ok(c) and line_variant(p, n):
                best = cand[c].get(p)
                if best is None or (len(n), n) < (len(best), best):
                    cand[c][p] = n
    om = npm_package("openmoji")
    om_files = {}
    for e in json.loads((om / "data" / "openmoji.json").read_text()):
        f = om / "black" / "svg" / f"{e['hexcode']}.svg"
        c = safe_name(e["annotation"])
        if f.is_file() and concept_ok(c) and not e.get("skintone"):
            om_files.setdefault(c, f)
    base_count = defaultdict(int)
    for p in I.base_sets():
        if p not in EXCLUDE_SETS:
            for c in {I.concept(n) for n in I.names(p)}:
                base_count[c] += 1
    n_img = {c: len(v) + (c in om_files) for c, v in cand.items()}
    eligible = [c for c in cand if n_img[c] >= MIN_IMAGES + 1]
    chosen = sorted(sorted(eligible, key=lambda c: (base_count[c], -n_img[c], c))[:max_classes])
    print(f"[lineart] {len(eligible)} concepts with >= {MIN_IMAGES + 1} line drawings; "
          f"rendering {len(chosen)}")
    cap = int((max_images or 99) * 1.3) + 2
    want = {c: sorted(cand[c], key=lambda p: _pick(c + p))[:cap] for c in chosen}
    svgs = {}
    for p in I.LINE_SETS + I.EMOJI_LINE:
        for c in chosen:
            if p in want[c]:
                svgs[(c, p)] = I.svg(p, cand[c][p])
        I.load_set.cache_clear()
    jobs = []
    for c in chosen:
        if c in om_files:
            jobs.append((safe_name(c), "openmoji-black", om_files[c].read_text()))
        jobs += [(safe_name(c), p, svgs[(c, p)]) for p in want[c]]
    w = DomainWriter("lineart")
    kept = render_svgs(jobs, w, "lineart", min_sim=0.3)
    used = sorted({p for v in kept.values() for p in v} - {"openmoji-black"})
    sources = [{"name": "npm:@iconify/json", "version": I.version(),
                "licence": "MIT (package); per set: " + ", ".join(sorted({I.licence(p) for p in used}))},
               {"name": "npm:openmoji", "version": npm_version("openmoji") or "missing",
                "licence": "CC-BY-SA-4.0"}]
    role, stands = BUILTIN["lineart"]
    return w.finish(role, stands, sources, MIN_IMAGES, seed=0, max_images=max_images,
                    description="line variants of stroke icon sets + monochrome emoji + OpenMoji black",
                    labels={safe_name(c): c for c in chosen}, icon_sets=used)
