"""Few-shot episodes: the Meta-Dataset variable-way variable-shot sampler and fixed N-way K-shot.

Every episode is a pure function of (domain, split, episode index, sampler config, seed): its
random generator is seeded from a hash of exactly those, so every method, rerun and machine sees
the same tasks (the only fair design, TINYTRAIN.md section 8). Lists are cached as JSON in
`data/episodes/<profile>/` and reused; the cache key includes a hash of the domain's manifest,
so a rebuilt domain never serves stale episodes.

Variable mode (Triantafillou et al., ICLR 2020, as in the paper's protocol):
  ways    ~ U{min_ways .. min(max_ways, classes in split)}, classes drawn uniformly;
  queries = min(max_query_per_class, floor(smallest chosen class / 2)) per class;
  support = min(max_support, sum_c ceil(beta * min(max_support_per_class, n_c - queries))),
            beta ~ U(0, 1);
  shots_c = 1 + floor(w_c / sum(w) * (support - ways)), log w_c ~ U(log 0.5, log 2),
            clipped to min(n_c - queries, max_support_per_class) (so the per-class cap is a
            hard cap here, a small tightening of Meta-Dataset's contribution-only cap).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .domains import Domain, data_root, domain_hash, load_domain

MAX_COUNT = 100_000   # ways, shots, queries and their caps: far beyond any episode that fits in memory


@dataclass
class EpisodeConfig:
    """`mode='variable'`: Meta-Dataset sampler with the caps below (profiles may shrink them).
    `mode='fixed'`: exactly `ways` classes, `shots` support and `queries` query images each."""
    mode: str = "variable"
    max_ways: int = 50
    min_ways: int = 5
    max_query_per_class: int = 10
    max_support: int = 500
    max_support_per_class: int = 100
    ways: int = 5
    shots: int = 5
    queries: int = 15

    def __post_init__(self):
        """Refuse a count no episode can have (negative, fractional, above MAX_COUNT) where the
        config is made: a negative shot count silently moved images from support to query, and
        the error should name the setting, not surface later in the sampler."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "mode" and (isinstance(v, bool) or not isinstance(v, numbers.Integral)
                                     or not 0 <= v <= MAX_COUNT):
                raise ValueError(f"EpisodeConfig.{f.name} is {v!r}, but it must be a whole number from 0 "
                                 f"to {MAX_COUNT:,}; fix the episode settings that set it (the profile's "
                                 "'episode' section in tinytrain_core/profiles.py, or the caller's arguments)")

    def key(self) -> str:
        d = asdict(self)
        if self.mode == "fixed":
            d = {k: d[k] for k in ("mode", "ways", "shots", "queries")}
        elif self.mode == "variable":
            d = {k: v for k, v in d.items() if k not in ("ways", "shots", "queries")}
        else:
            raise ValueError(f"EpisodeConfig.mode must be 'variable' or 'fixed', not {self.mode!r}")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class Episode:
    """One task. Labels are 0..n_way-1 in the order of `classes`; paths are absolute strings."""
    domain: str
    split: str
    index: int
    classes: list[str]
    support: list[tuple[str, int]] = field(repr=False)
    query: list[tuple[str, int]] = field(repr=False)

    @property
    def n_way(self) -> int:
        return len(self.classes)

    def shots(self) -> list[int]:
        return np.bincount([y for _, y in self.support], minlength=self.n_way).tolist()


def _rng(domain: str, split: str, index: int, cfg: EpisodeConfig, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{domain}|{split}|{index}|{cfg.key()}|{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _pools(domain: Domain, split: str) -> dict[str, int]:
    return {c: domain.n_images(c, split) for c in domain.classes(split)}


def sample_episode(domain: Domain | str, split: str, index: int, cfg: EpisodeConfig,
                   seed: int = 0, profile: str = "default") -> Episode:
    """The episode `index` of (domain, split, cfg, seed), computed from scratch (no cache)."""
    domain = load_domain(domain, profile) if isinstance(domain, str) else domain
    pools = _pools(domain, split)
    rng = _rng(domain.name, split, index, cfg, seed)
    if cfg.mode == "fixed":
        need = cfg.shots + cfg.queries
        eligible = sorted(c for c, n in pools.items() if n >= need)
        if len(eligible) < cfg.ways:
            raise ValueError(
                f"domain {domain.name!r} split {split!r} has {len(eligible)} classes with >= {need} "
                f"images ({len(pools)} classes in all); cannot sample {cfg.ways}-way "
                f"{cfg.shots}-shot {cfg.queries}-query episodes")
        classes = [eligible[i] for i in rng.choice(len(eligible), cfg.ways, replace=False)]
        shots = [cfg.shots] * cfg.ways
        queries = cfg.queries
    else:
        eligible = sorted(c for c, n in pools.items() if n >= 2)
        if len(eligible) < cfg.min_ways:
            raise ValueError(
                f"domain {domain.name!r} split {split!r} has {len(eligible)} classes "
                f"({len(pools)} in all); the variable sampler needs at least min_ways={cfg.min_ways}")
        hi = min(cfg.max_ways, len(eligible))
        n_way = int(rng.integers(cfg.min_ways, hi + 1))
        classes = [eligible[i] for i in rng.choice(len(eligible), n_way, replace=False)]
        sizes = np.array([pools[c] for c in classes])
        queries = max(1, min(cfg.max_query_per_class, int(sizes.min()) // 2))
        room = np.minimum(sizes - queries, cfg.max_support_per_class)
        beta = rng.uniform()
        total = min(cfg.max_support, int(np.ceil(beta * room).sum()))
        total = max(total, n_way)
        w = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n_way))
        shots = 1 + np.floor(w / w.sum() * (total - n_way)).astype(int)
        shots = np.clip(shots, 1, room).tolist()
    support, query = [], []
    for label, (c, k) in enumerate(zip(classes, shots)):
        files = domain.images(c, split)
        pick = rng.permutation(len(files))[:k + queries]
        support += [(str(files[i]), label) for i in pick[:k]]
        query += [(str(files[i]), label) for i in pick[k:]]
    return Episode(domain.name, split, index, classes, support, query)


def _cache_file(domain: Domain, split: str, cfg: EpisodeConfig, seed: int, profile: str) -> Path:
    return (data_root() / "episodes" / profile /
            f"{domain.name}_{split}_{cfg.mode}-{cfg.key()}_seed{seed}_{domain_hash(domain)}.json")


def sample_episodes(domain: Domain | str, split: str, n: int, cfg: EpisodeConfig, seed: int = 0,
                    profile: str = "default") -> list[Episode]:
    """Episodes 0..n-1 of (domain, split, cfg, seed); cached in `data/episodes/<profile>/`.
    Asking for more episodes than cached extends the cache; a prefix of a longer list is the
    same as a shorter list, since each episode depends only on its own index."""
    domain = load_domain(domain, profile) if isinstance(domain, str) else domain
    path = _cache_file(domain, split, cfg, seed, profile)
    root = str(domain.root)
    cached = []
    if path.is_file():
        try:
            cached = json.loads(path.read_text())["episodes"]
        except (json.JSONDecodeError, KeyError):
            cached = []
    episodes = [Episode(domain.name, split, e["index"], e["classes"],
                        [(f"{root}/{p}", y) for p, y in e["support"]],
                        [(f"{root}/{p}", y) for p, y in e["query"]]) for e in cached[:n]]
    if len(episodes) < n:
        episodes += [sample_episode(domain, split, i, cfg, seed, profile)
                     for i in range(len(episodes), n)]
        cut = len(root) + 1
        rel = [{"index": e.index, "classes": e.classes,
                "support": [(p[cut:], y) for p, y in e.support],
                "query": [(p[cut:], y) for p, y in e.query]} for e in episodes]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"domain": domain.name, "split": split, "seed": seed,
                                   "config": asdict(cfg), "episodes": rel}))
        tmp.replace(path)
    return episodes
