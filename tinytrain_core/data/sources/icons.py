"""Base domain `icons` (stands in for MiniImageNet): class = icon concept name, images = the
same concept drawn by different icon sets of npm @iconify/json.

Left out: emoji, flag and logo sets, the stroke-drawn sets (they make the `lineart` target),
and the non-commercial sets cbi and ps. Label noise: names that mean different things in
different sets are handled by (1) a stop list of known homonyms and text-like names, and
(2) a silhouette-consensus filter that drops drawings unlike the rest of their class.
Classes whose names collide with any built-in target domain's classes are removed, so all nine
targets must be built first (`make data` orders them so); bring-your-own domains play no part.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict

from ..domains import BUILTIN, safe_name
from ..profiles import build_caps
from . import iconify as I
from .common import DomainWriter, class_names_of, render_svgs

MIN_IMAGES = 10
TARGETS = [n for n, (role, _) in BUILTIN.items() if role == "target"]
EXCLUDE_SETS = {"fa-brands", "fa6-brands", "devicon-plain", "file-icons", "svg-spinners",
                "academicons", "bitcoin-icons", "covid", "bpmn", "ginetex", "pixel"}
# Homonyms and text-like names (EMBEDDED_DATA.md: 'anchor' = hyperlink, 'key' = the text KEY).
STOP = {"anchor", "key", "link", "text", "type", "font", "mark", "label", "tag", "case",
        "check", "box", "square", "circle", "dot", "dots", "line", "lines", "bar", "bars",
        "blank", "empty", "none", "default", "icon", "logo", "brand", "sign", "symbol",
        "plus", "minus", "x", "small", "big", "new", "add", "remove", "more", "less"}


def concept_ok(c: str) -> bool:
    return len(c) >= 3 and bool(re.search(r"[a-z]{3}", c)) and c not in STOP \
        and c not in I.logo_names() \
        and not re.match(r"^(letter|number|alpha|numeric|digit|char)-", c)


def _pick(seed: str) -> int:
    return int(hashlib.md5(seed.encode()).hexdigest()[:8], 16)


def candidates(sets: list[str]) -> dict[str, dict[str, str]]:
    """concept -> {set prefix: icon name}, the plainest variant of each set."""
    out = defaultdict(dict)
    for p in sets:
        for n in I.names(p):
            c = I.concept(n)
            if concept_ok(c):
                best = out[c].get(p)
                if best is None or (len(n), n) < (len(best), best):
                    out[c][p] = n
    return out


def build(profile: str) -> dict:
    max_classes, max_images = build_caps(profile, "icons")
    sets = [p for p in I.base_sets() if p not in EXCLUDE_SETS]
    cand = candidates(sets)
    # every built-in target, never whatever else is on disk: the base must be the same everywhere
    clash = class_names_of(TARGETS) | set(BUILTIN)
    eligible = sorted((c for c, v in cand.items() if len(v) >= MIN_IMAGES and
                       safe_name(c) not in clash and c not in clash),
                      key=lambda c: (-len(cand[c]), c))
    removed = sum(1 for c, v in cand.items() if len(v) >= MIN_IMAGES and
                  (safe_name(c) in clash or c in clash))
    chosen = sorted(eligible[:max_classes] if max_classes else eligible)
    print(f"[icons] {len(sets)} sets, {len(eligible)} concepts drawn by >= {MIN_IMAGES} sets "
          f"({removed} removed for colliding with target classes); rendering {len(chosen)}")
    jobs, per_set = [], defaultdict(list)
    for c in chosen:
        # oversample: blank, duplicate and outlier renders are dropped below
        ps = sorted(cand[c], key=lambda p: _pick(c + p))[:(max_images or 99) + 4]
        for p in ps:
            per_set[p].append(c)
    svgs = {}
    for p, cs in per_set.items():  # set-major, so each JSON file is parsed once
        for c in cs:
            svgs[(c, p)] = I.svg(p, cand[c][p])
        I.load_set.cache_clear()
    for c in chosen:
        jobs += [(safe_name(c), p, svgs[(c, p)]) for p in sorted(cand[c], key=lambda p: _pick(c + p))
                 if (c, p) in svgs]
    w = DomainWriter("icons")
    kept = render_svgs(jobs, w, "icons", min_sim=0.35)
    used = sorted({p for v in kept.values() for p in v})
    sources = [{"name": "npm:@iconify/json", "version": I.version(),
                "licence": "MIT (package); per set: " + ", ".join(sorted({I.licence(p) for p in used}))}]
    role, stands = BUILTIN["icons"]
    return w.finish(role, stands, sources, MIN_IMAGES, seed=0, max_images=max_images,
                    description=f"{len(used)} icon sets; collisions with targets removed: {removed}",
                    labels={safe_name(c): c for c in chosen}, icon_sets=used)
