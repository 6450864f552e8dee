"""Run adaptation methods over fixed episodes: per-task rows, resume, learning rate on validation.

An *arm* is a method run from a checkpoint (`imagenet`, `meta`): every method runs from each
checkpoint of `checkpoints`, so the paper's configuration (baselines from ImageNet, TinyTrain
meta-trained) and the fair one (all from the same checkpoint) stand side by side. Every arm sees
the same test episodes and the same augmentation draws (the seed depends on the episode only).

Learning rate (P>M>F's README): each trainable arm tries every LR of `lrs` (0 = no training) on
`val_episodes` episodes of the *validation* split, never on test episodes; these validation
rows are kept (split "val") and the LR is their argmax (ties: the earlier in `lrs`):
- lr_scope="domain": per (domain, method, checkpoint), the mean over that domain's episodes
  (P>M>F's rule);
- lr_scope="pooled": per (method, checkpoint), the mean over domains of the per-domain means:
  D x val_episodes episodes behind one choice (cheaper per domain; the default profile's choice
  for its breadth arms).
`power` ({method: {episodes, val_episodes, lr_scope}}, the plan's) gives some methods their own
sample and scope: the default profile's claim arms on mcunet run 8 test episodes per domain with
the LR per domain from 5 validation episodes.

SparseUpdate runs at TinyTrain's memory budget (`sparse_update`, the profile's): "nearest" is the
released scheme whose memory is nearest the budget (default); "search" the scheme our
reconstruction of its offline search finds at the budget (smoke, paper), from a contribution
analysis on the base domain's validation episodes per checkpoint (`sparse_gains`, the profile's
`sparse_search` settings), kept in `results/<profile>/adapt/<model>/sparse_search/<checkpoint>.csv`
under a key of its inputs.

Engines (`engine`): one process per domain ("processes", `workers` of them), or the same run cut
into idempotent shards run in this process ("local") or on Ray ("ray"; `shards.py`). With
`batch_tasks` > 1 the batchable tasks of an arm train K per launch (`batched.py`, for a GPU;
equal to one at a time within float rounding, so it is part of the rows' key).

Rows go to `results/<profile>/adapt/<model>/<domain>.csv` one task at a time (`taskrows.py`).
Each row carries a `key` (`row_key`): a hash of the arm's config, the *content* of the
checkpoint its backbone loaded and the build of the domain. A rerun skips the rows already
present under the current key, so an interrupted run resumes where it stopped; rows under
another key are set aside and computed again. Summaries: `analysis.py`.

The parts, one module each (this module runs them and re-exports what notebooks use):
config (AdaptConfig, plan), backbones, tasks (one task), gains (SparseUpdate's search), keys
(what a row depends on), lrs (LR choice), runner (per-domain rows), shards (the run as shards).
"""
from __future__ import annotations

import pandas as pd
from tqdm import tqdm   # not tqdm.auto: without ipywidgets it warns (TqdmWarning) in every notebook

from .. import data, methods as method_registry, profiles
from ..runtime import one_thread
from ..training.finetune import query_accuracy
from . import shards, tasks
from .backbones import Backbones
from .config import ENGINES, LR_SCOPES, AdaptConfig, plan
from .gains import all_sparse_gains, gains_path, sparse_gains
from .keys import row_key
from .lrs import choose_lrs, has_validation, lr_of
from .runner import DomainRun, each_domain, rows_of_run
from .tasks import adapt_task, scheme_summary, task_scheme

__all__ = ["ENGINES", "LR_SCOPES", "AdaptConfig", "Backbones", "DomainRun", "adapt_task", "all_sparse_gains",
           "choose_lrs", "each_domain", "gains_path", "has_validation", "lr_of", "plan", "row_key", "rows_of_run",
           "run", "scheme_summary", "size_sweep", "sparse_gains", "task_scheme"]


def run(cfg: AdaptConfig, progress: bool = True) -> pd.DataFrame:
    """Validation rows of every trainable arm at every LR, the LR choice, then every arm on the
    same fixed test episodes of every domain; returns the test rows. With `workers` > 1 the
    domains are shared out over that many processes (identical rows: one thread each). Engine
    "local" or "ray": the same run cut into shards (`shards.run`)."""
    cfg = cfg.resolved()
    if cfg.engine != "processes":
        return shards.run(cfg, cfg.engine, progress=progress)
    nets = Backbones(cfg)
    manifest = data.manifest_hash(cfg.profile)
    doms = [DomainRun(cfg, d, nets, manifest) for d in cfg.domains]    # resume/repair every file first
    all_sparse_gains(cfg, progress)
    if len(cfg.lrs) > 1:
        each_domain(cfg, "val", {}, progress)
    each_domain(cfg, "test", choose_lrs(rows_of_run(cfg, "val"), cfg), progress)
    del doms
    return rows_of_run(cfg, "test")


# ---------------------------------------------------------------- how big must a task be?

def size_sweep(cfg: AdaptConfig, progress: bool = True) -> pd.DataFrame:
    """Does fine-tuning matter at a task size? The profile's `size_sweep` section: for each support
    cap, `tasks` test episodes of each of its `domains` (the run's first two if empty), None and
    FullTrain from `checkpoint` at `lr` (the run's steps and seed). One row per task: the support
    cap, its size, both accuracies and FullTrain's seconds. Nothing is kept between runs: it is a
    measurement shown in notebook 02, whose cost grows with the caps (~0.9 s per support image)."""
    cfg = cfg.resolved()
    sw = profiles.settings(cfg.profile, "adapt")["size_sweep"]
    net, state = Backbones(cfg).get(sw["checkpoint"])
    full = method_registry.get("FullTrain")
    caps = profiles.settings(cfg.profile, "adapt")["episode"]
    out = []
    jobs = [(cap, d) for cap in sw["supports"] for d in (sw["domains"] or cfg.domains[:2])]
    with one_thread():
        for cap, d in tqdm(jobs, desc="task-size sweep", disable=not progress):
            ecfg = data.episode_config(cfg.profile, **{**caps, "max_support": cap,
                                                       "max_support_per_class": max(1, cap // caps.get("min_ways", 5))})
            for ep in data.sample_episodes(d, "test", sw["tasks"], ecfg, seed=cfg.seed, profile=cfg.profile):
                t = data.episode_tensors(ep, channels_last=True)
                net.load_state_dict(state)
                none = query_accuracy(net, *t)
                r = tasks.adapt_task(full, net, state, t, cfg, sw["lr"], tasks.task_seed(cfg, ep))
                out.append(dict(support_cap=cap, domain=d, episode=ep.index, ways=ep.n_way, shots=len(ep.support),
                                queries=len(ep.query), none=none, fulltrain=r["accuracy"],
                                gain=r["accuracy"] - none, train_s=r["train_s"]))
    return pd.DataFrame(out)
