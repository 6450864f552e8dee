"""SparseUpdate's offline search inside a run: the contribution analysis (`sparse_search`) of
each checkpoint on the base domain's validation episodes, written once per key and reused."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .. import data
from ..methods import sparse_search
from ..paths import shown
from ..results import read_json, read_table, sidecar_path, write_table
from ..runtime import one_thread
from . import taskrows
from .backbones import Backbones
from .config import AdaptConfig
from .keys import _domain_hash


def gains_path(cfg: AdaptConfig, checkpoint: str) -> Path:
    return taskrows.out_dir(cfg.profile, cfg.model) / "sparse_search" / f"{checkpoint}.csv"   # shared by variants


def _gains_key(cfg: AdaptConfig, nets: "Backbones", checkpoint: str) -> str:
    base = data.domains.base_domain(cfg.profile)
    blob = json.dumps([cfg.sparse_search, cfg.model, nets.identity(checkpoint), _domain_hash(base, cfg.profile),
                       cfg.episode_config().key(), cfg.seed], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def sparse_gains(cfg: AdaptConfig, checkpoint: str, progress: bool = False) -> pd.DataFrame:
    """SparseUpdate's contribution analysis (`sparse_search.contributions`) of `checkpoint` on
    the first `tasks` validation episodes of the base domain (never a target domain), with the
    profile's `sparse_search` steps, LR and candidate convs. Written once and reused while its key
    (settings, checkpoint content, base-domain build, sampler, seed) is unchanged."""
    cfg = cfg.resolved()
    nets = Backbones(cfg)
    path, key = gains_path(cfg, checkpoint), _gains_key(cfg, nets, checkpoint)
    if path.is_file() and read_json(sidecar_path(path)).get("key") == key:
        return read_table(path)
    s = cfg.sparse_search
    net, state = nets.get(checkpoint)
    shapes = net.conv_shapes()
    half = shapes[len(shapes) // 2:]
    cands = [c.index for c in half if s["candidates"] == "all" or c.kernel == 1]
    base = data.domains.base_domain(cfg.profile)
    eps = data.sample_episodes(base, "val", s["tasks"], cfg.episode_config(), seed=cfg.seed, profile=cfg.profile)
    tasks = [data.episode_tensors(ep, channels_last=True) for ep in eps]
    with one_thread():
        gains = sparse_search.contributions(net, state, tasks, sparse_search.space(shapes, cands), s["steps"],
                                            s["lr"], seed=cfg.seed, progress=progress)
    write_table(gains, path, key=key, checkpoint=checkpoint, checkpoint_id=nets.identity(checkpoint),
                base_domain=base, settings=s, config=asdict(cfg))
    return gains


_GAINS: dict = {}


def gains_of(cfg: AdaptConfig, checkpoint: str) -> pd.DataFrame:
    """The checkpoint's gains table, read once per process (the run computes it first)."""
    path = gains_path(cfg, checkpoint)
    if path not in _GAINS:
        if not path.is_file():
            raise FileNotFoundError(f"{shown(path)} missing: SparseUpdate's search needs adapt.sparse_gains(cfg, "
                                    f"{checkpoint!r}) first (adapt.run computes it)")
        _GAINS[path] = read_table(path)
    return _GAINS[path]


def all_sparse_gains(cfg: AdaptConfig, progress: bool = False) -> dict:
    """{checkpoint: gains} for every checkpoint SparseUpdate's search runs from (`sparse_gains`),
    the checkpoints shared out over `workers` processes; {} when SparseUpdate does not search."""
    cfg = cfg.resolved()
    cks = [c for m, c in cfg.arms() if m == "SparseUpdate"] if cfg.sparse_update == "search" else []
    if cfg.workers <= 1 or len(cks) <= 1:
        return {ck: sparse_gains(cfg, ck, progress) for ck in cks}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(cfg.workers, len(cks)), mp_context=ctx) as pool:
        futures = {ck: pool.submit(sparse_gains, cfg, ck) for ck in cks}
        return {ck: f.result() for ck, f in futures.items()}
