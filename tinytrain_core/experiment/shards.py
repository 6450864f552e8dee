"""Sharded sweeps: an adaptation run cut into idempotent shards that any engine can execute.

A shard is one (model, domain, split, method, checkpoint, episode range) of an `AdaptConfig`.
It writes its rows to a file of its own,

    results/<profile>/adapt/<model>/shards/<domain>/<split>-<method>@<checkpoint>-e<start>-<stop>.csv

through the same keyed row store as `adapt.run` (`taskrows`: each row carries the key of what
made it; rows under another key are set aside). Running a shard twice therefore computes nothing
the second time, a shard killed midway resumes, and shards can run anywhere that sees the same
results folder. `merge` appends each shard's rows under the current keys to the domain's results
CSV, the file the notebooks read, so a sharded run and `adapt.run` give the same tables (the rows
are computed by the same code with the same seeds, one thread each; `tests/test_shards.py`).

Engines (`AdaptConfig.engine`):
- "processes": not this module: `adapt.run`'s one process per domain;
- "local": the shards shared out over `workers` processes (one: in this process);
- "ray": one `ray.remote` task per shard with `gpus` of a GPU each (fractional: 0.25 puts four
  shards on one GPU) and one CPU, on this machine's cores/GPUs, or on a cluster when the
  environment variable RAY_ADDRESS names one (every node must see the checkout, the data and the
  results folder; the TINYTRAIN_* variables travel with each task). Ray 2.60 has no local mode
  any more: on one machine `ray.init` starts a local Ray instance (`num_cpus` of it), which is
  what the equality test runs on the CPU.

Order, as in `adapt.run`: SparseUpdate's search gains (in this process), every validation shard,
the LR choice from the merged validation rows (`adapt.choose_lrs`), then every test shard.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm   # not tqdm.auto: without ipywidgets it warns (TqdmWarning) in every notebook

from .. import CPU_PIN

from . import taskrows
from .backbones import Backbones
from .config import AdaptConfig
from .gains import all_sparse_gains
from .lrs import choose_lrs, has_validation
from .runner import DomainRun, rows_of_run
from .. import data, methods as method_registry, profiles


@dataclass(frozen=True)
class Shard:
    domain: str
    split: str
    method: str
    checkpoint: str
    start: int              # episode indices [start, stop)
    stop: int

    @property
    def name(self) -> str:
        return f"{self.split}-{self.method}@{self.checkpoint}-e{self.start:04d}-{self.stop:04d}"

    def path(self, cfg: AdaptConfig) -> Path:
        return shard_dir(cfg, self.domain) / f"{self.name}.csv"


def shard_dir(cfg: AdaptConfig, domain: str) -> Path:
    d = cfg.out_dir() / "shards" / domain
    d.mkdir(parents=True, exist_ok=True)
    return d


def plan(cfg: AdaptConfig, split: str, size: int | None = None) -> list[Shard]:
    """The shards of `split`: every domain x arm (validation: trainable arms only) x range of
    `size` episodes (None: the profile's `shards.episodes`)."""
    cfg = cfg.resolved()
    size = size or profiles.settings(cfg.profile, "adapt")["shards"]["episodes"]
    arms = [a for a in cfg.arms() if split == "test" or method_registry.get(a[0]).trains]
    doms = [d for d in cfg.domains if split == "test" or has_validation(cfg, d)]
    return [Shard(d, split, m, ck, s, min(s + size, cfg.episodes_in(split, m))) for d in doms for m, ck in arms
            for s in range(0, cfg.episodes_in(split, m), size)]


def run_shard(cfg: AdaptConfig, shard: Shard, chosen: dict | None = None) -> str:
    """Compute the rows of `shard` still missing from its file (test shards: at the LR `chosen`
    gives their arm); returns the file's path. One intra-op thread, as `adapt.run`'s workers."""
    cfg = cfg.resolved()
    torch.set_num_threads(1)
    dom = DomainRun(cfg, shard.domain, Backbones(cfg), data.manifest_hash(cfg.profile),
                          path=shard.path(cfg))
    eps = dom.episodes(shard.split, shard.stop)[shard.start:shard.stop]
    dom.run(shard.split, dom.todo(shard.split, eps, [(shard.method, shard.checkpoint)], chosen or {}), progress=False)
    return str(dom.path)


def merge(cfg: AdaptConfig, domain: str) -> int:
    """Append every shard row of `domain` made under the current keys, and not yet there, to the
    domain's results CSV; returns how many rows were added. Shard files stay (idempotent)."""
    cfg = cfg.resolved()
    dom = DomainRun(cfg, domain, Backbones(cfg), data.manifest_hash(cfg.profile))
    keys = {a: info["key"] for a, info in dom.infos.items()}
    added = 0
    with taskrows.RowWriter(dom.path) as out:
        for f in taskrows.row_files(shard_dir(cfg, domain)):
            for row in taskrows.raw_rows(f):
                a = taskrows.arm(row)
                if a in keys and row.get("key") == keys[a] and taskrows.identity(row) not in dom.done:
                    dom.add(out, row)
                    added += 1
    return added


def _environment() -> dict:
    """What Ray's workers need of this process's environment: where the checkout, data, results
    and weights are, and the variables the Makefile sets (hash seed; glibc's allocator; the CPU
    kernel pin, `tinytrain_core.CPU_PIN`)."""
    return {k: v for k, v in os.environ.items()
            if k.startswith("TINYTRAIN_") or k in ("PYTHONHASHSEED", "GLIBC_TUNABLES", *CPU_PIN)}


@contextlib.contextmanager
def ray_session(num_cpus: int | None = None):
    """Ray, connected for the block: the running instance if any, else RAY_ADDRESS's cluster,
    else a fresh local instance with `num_cpus` (None: all) that is shut down after."""
    try:
        import ray
    except ImportError:
        raise ImportError("engine='ray' needs Ray: `make setup` installs the pinned version "
                          "(or pip install ray==2.60.0)") from None
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=None if os.environ.get("RAY_ADDRESS") else num_cpus, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": _environment()})
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _ray_map(cfg, shards: list[Shard], chosen: dict, gpus: float, progress: bool) -> None:
    with ray_session() as ray:
        task = ray.remote(num_cpus=1, num_gpus=gpus)(run_shard)
        pending = [task.remote(cfg, s, chosen) for s in shards]
        with tqdm(total=len(pending), desc=f"{cfg.model} shards (ray)", disable=not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)           # raises the shard's own error here
                bar.update(len(done))


def execute(cfg: AdaptConfig, shards: list[Shard], chosen: dict | None = None, engine: str = "local",
            gpus: float | None = None, progress: bool = True) -> None:
    """Run `shards` on `engine` ("local" or "ray"), then merge their domains' rows."""
    cfg = cfg.resolved()
    if engine not in ("local", "ray"):
        raise ValueError(f"shards run on engine 'local' or 'ray', not {engine!r}")
    if engine == "ray":
        gpus = profiles.settings(cfg.profile, "adapt")["shards"]["gpus"] if gpus is None else gpus
        if gpus and not torch.cuda.is_available():
            gpus = 0.0                   # Ray would wait forever for a GPU this machine does not have
        _ray_map(cfg, shards, chosen or {}, float(gpus), progress)
    elif cfg.workers > 1 and len(shards) > 1:
        ctx = multiprocessing.get_context("spawn")      # a fresh interpreter: safe from a notebook kernel
        with ProcessPoolExecutor(cfg.workers, mp_context=ctx) as pool, \
                tqdm(total=len(shards), desc=f"{cfg.model} shards", disable=not progress) as bar:
            for fut in as_completed([pool.submit(run_shard, cfg, s, chosen) for s in shards]):
                fut.result()
                bar.update(1)
    else:
        for s in tqdm(shards, desc=f"{cfg.model} shards", disable=not progress):
            run_shard(cfg, s, chosen)
    for d in sorted({s.domain for s in shards}, key=cfg.domains.index):
        merge(cfg, d)


def run(cfg: AdaptConfig, engine: str = "local", size: int | None = None, gpus: float | None = None,
        num_cpus: int | None = None, progress: bool = True) -> pd.DataFrame:
    """`adapt.run` as shards: validation shards, LR choice, test shards; returns the test rows."""
    cfg = cfg.resolved()
    for d in cfg.domains:      # resume/repair every domain file, fill the episode caches (shards only read them)
        dom = DomainRun(cfg, d, Backbones(cfg), data.manifest_hash(cfg.profile))
        dom.episodes("test", cfg.most_episodes("test"))
        if len(cfg.lrs) > 1 and has_validation(cfg, d):
            dom.episodes("val", cfg.most_episodes("val"))
    all_sparse_gains(cfg, progress)
    with ray_session(num_cpus) if engine == "ray" else contextlib.nullcontext():
        if len(cfg.lrs) > 1:
            execute(cfg, plan(cfg, "val", size), None, engine, gpus, progress)
        chosen = choose_lrs(rows_of_run(cfg, "val"), cfg)
        execute(cfg, plan(cfg, "test", size), chosen, engine, gpus, progress)
    return rows_of_run(cfg, "test")
