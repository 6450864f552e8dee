"""The run, one domain at a time: `DomainRun` resumes a domain's CSV and appends its rows task by
task; `each_domain` runs every domain's validation or test jobs, in this process or one spawned
process per domain; `rows_of_run` reads back the rows a config asks for."""
from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm   # not tqdm.auto: without ipywidgets it warns (TqdmWarning) in every notebook

from .. import data, methods as method_registry
from ..training.batched import batchable, fine_tune_many
from ..training.finetune import query_accuracy
from . import taskrows, tasks
from .backbones import Backbones
from .config import AdaptConfig
from .keys import _arm_info, _domain_hash
from .lrs import has_validation, lr_of


class DomainRun:
    """One domain's results CSV during a run: resumed once, then appended row by row."""

    def __init__(self, cfg: AdaptConfig, domain: str, nets: Backbones, manifest: str, path: Path | None = None):
        self.cfg, self.domain, self.nets = cfg, domain, nets
        self.path = path or cfg.out_dir() / f"{domain}.csv"      # a shard's own file (shards.py)
        built = _domain_hash(domain, cfg.profile)
        self.infos = {a: _arm_info(cfg, a, nets, built, manifest) for a in cfg.arms()}
        self.done, self.present = taskrows.resume(self.path, self.infos)
        taskrows.write_sidecar(self.path, domain, self.present, self.infos)

    def episodes(self, split: str, n: int):
        return data.sample_episodes(self.domain, split, n, self.cfg.episode_config(), seed=self.cfg.seed,
                                    profile=self.cfg.profile)

    def todo(self, split: str, episodes, arms: list, chosen: dict) -> list:
        """The (episode, arm, lr) jobs not done yet, episode-major: a validation row per LR of
        `lrs`, a test row at the LR `lr_of` gives (validation's choice in `chosen`); an arm takes
        the first `episodes_of` / `val_episodes_of` its method of `episodes`."""
        cfg = self.cfg
        mine = [(ep, a) for ep in episodes for a in arms if ep.index < cfg.episodes_in(split, a[0])]
        if split == "val":
            return [(ep, a, lr) for ep, a in mine for lr in cfg.lrs if ("val", ep.index, *a, lr) not in self.done]
        return [(ep, a, lr_of(cfg, self.domain, a, chosen)) for ep, a in mine
                if ("test", ep.index, *a, None) not in self.done]

    def write(self, out, ep, split: str, arm: tuple, lr: float, result: dict):
        row = dict(split=split, domain=self.domain, episode=ep.index, ways=ep.n_way, shots=len(ep.support),
                   queries=len(ep.query), method=arm[0], checkpoint=arm[1], lr=lr, **result)
        self.add(out, {**row, "key": self.infos[arm]["key"]})

    def add(self, out, row: dict):
        """Append a keyed row (a fresh result, or a shard's row being merged)."""
        out.write(row)
        self.done.add(taskrows.identity(row))
        if row["key"] not in self.present:     # the sidecar follows the first row of a key
            self.present.add(row["key"])
            taskrows.write_sidecar(self.path, self.domain, self.present, self.infos)

    def run(self, split: str, jobs: list, progress: bool):
        """jobs: (episode, arm, lr) still to do, episode-major (one episode's tensors at a time).
        A scheme is computed once per (episode, arm) and reused for every LR tried. With
        `batch_tasks` > 1 the batchable tasks of an arm are held back and trained K at a time
        (`batched.fine_tune_many`); the rest run one by one as before."""
        cfg = self.cfg
        with contextlib.closing(taskrows.RowWriter(self.path)) as out, \
                tqdm(total=len(jobs), desc=f"{cfg.model} {self.domain} {split}", disable=not progress) as bar:
            tensors, schemes, untrained, held = None, {}, {}, {}
            for ep, arm, lr in jobs:
                if tensors is None or tensors[0] is not ep:
                    tensors, schemes, untrained = (ep, data.episode_tensors(ep, channels_last=True)), {}, {}
                method = method_registry.get(arm[0])
                net, state = self.nets.get(arm[1])
                seed = tasks.task_seed(cfg, ep)
                if lr == 0 and split == "val":          # the untrained backbone: once per checkpoint
                    if arm[1] not in untrained:
                        net.load_state_dict(state)
                        untrained[arm[1]] = dict(accuracy=query_accuracy(net, *tensors[1]), train_s=0.0)
                    result = untrained[arm[1]]
                else:
                    if arm not in schemes:
                        schemes[arm] = tasks.task_scheme(method, net, state, tensors[1], cfg, seed, arm[1])
                    if cfg.batch_tasks > 1 and batchable(method, schemes[arm][0]):
                        held.setdefault(arm, []).append((ep, lr, tensors[1], schemes[arm], seed))
                        if len(held[arm]) == cfg.batch_tasks:
                            self._flush(out, split, arm, held.pop(arm), bar)
                        continue
                    result = tasks.adapt_task(method, net, state, tensors[1], cfg, lr, seed, schemes[arm])
                self.write(out, ep, split, arm, lr, result)
                bar.update(1)
            for arm, batch in held.items():
                self._flush(out, split, arm, batch, bar)

    def _flush(self, out, split: str, arm: tuple, tasks: list, bar):
        """Train held tasks of one arm as one batch and write their rows."""
        net, state = self.nets.get(arm[1])
        res = fine_tune_many(net, state, [t[3][0] for t in tasks], [t[2] for t in tasks], self.cfg.steps,
                             [t[1] if method_registry.get(arm[0]).trains else 0.0 for t in tasks],
                             [t[4] for t in tasks])
        for (ep, lr, _, (_, fields), _), r in zip(tasks, res):
            self.write(out, ep, split, arm, lr, dict(accuracy=r.accuracy, train_s=round(r.train_s, 4), **fields))
            bar.update(1)


def _domain_work(cfg: AdaptConfig, domain: str, split: str, chosen: dict, progress: bool) -> str:
    """One domain's rows of `split` (its validation rows at every LR, or its test rows at the
    `chosen` LRs), in this process or a worker. One intra-op thread: the results then do not
    depend on the number of workers, and two busy threads do not spin against a second process
    (measured here: 2 threads beside one other busy process, a FullTrain step 25x slower)."""
    torch.set_num_threads(1)
    dom = DomainRun(cfg, domain, Backbones(cfg), data.manifest_hash(cfg.profile))
    if split == "val" and not has_validation(cfg, domain):
        print(f"{domain}: no validation classes; its LR is the pooled choice of the other domains")
        return domain
    arms = [a for a in cfg.arms() if split == "test" or method_registry.get(a[0]).trains]
    jobs = dom.todo(split, dom.episodes(split, cfg.most_episodes(split, arms)), arms, chosen)
    dom.run(split, jobs, progress)
    return domain


def each_domain(cfg: AdaptConfig, split: str, chosen: dict, progress: bool) -> None:
    if cfg.workers <= 1:
        for d in cfg.domains:
            _domain_work(cfg, d, split, chosen, progress)
        return
    ctx = multiprocessing.get_context("spawn")      # a fresh interpreter: safe from a notebook kernel
    with ProcessPoolExecutor(cfg.workers, mp_context=ctx) as pool, \
            tqdm(total=len(cfg.domains), desc=f"{cfg.model} {split} domains", disable=not progress) as bar:
        for fut in as_completed([pool.submit(_domain_work, cfg, d, split, chosen, False) for d in cfg.domains]):
            fut.result()
            bar.update(1)


def rows_of_run(cfg: AdaptConfig, split: str = "test") -> pd.DataFrame:
    """The rows of `split` that `cfg` asks for (its arms, domains and each method's first
    episodes); the files may hold more (other arms, more episodes from an earlier run)."""
    cfg = cfg.resolved()
    rows = taskrows.load_rows(cfg.profile, cfg.model, cfg.domains, split=split, variant=cfg.variant)
    n = rows.method.map(lambda m: cfg.episodes_in(split, m))
    mine = pd.Series(list(zip(rows.method, rows.checkpoint)), dtype=object).isin(cfg.arms())
    return rows[mine.values & (rows.episode < n).values].reset_index(drop=True)
