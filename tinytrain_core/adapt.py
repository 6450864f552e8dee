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
  D x val_episodes episodes behind one choice (cheaper per domain; the default profile's choice).

SparseUpdate (`sparse_update="search"`) runs the scheme our reconstruction of its offline search
finds at TinyTrain's memory budget, from a contribution analysis on the base domain's validation
episodes per checkpoint (`sparse_gains`, the profile's `sparse_search` settings), kept in
`results/<profile>/adapt/<model>/sparse_search/<checkpoint>.csv` under a key of its inputs.

Engines (`engine`): one process per domain ("processes", `workers` of them), or the same run cut
into idempotent shards run in this process ("local") or on Ray ("ray"; `shards.py`). With
`batch_tasks` > 1 the batchable tasks of an arm train K per launch (`batched.py`, for a GPU;
equal to one at a time within float rounding, so it is part of the rows' key).

Rows go to `results/<profile>/adapt/<model>/<domain>.csv` one task at a time (`taskrows.py`).
Each row carries a `key` (`row_key`): a hash of the arm's config, the *content* of the
checkpoint its backbone loaded and the build of the domain. A rerun skips the rows already
present under the current key, so an interrupted run resumes where it stopped; rows under
another key are set aside and computed again. Summaries: `analysis.py`.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import checkpoints, data, methods as method_registry, profiles, sparse_search, taskrows
from .costs import scheme_costs
from .batched import batchable, fine_tune_many
from .finetune import initial_state, query_accuracy, run_task
from .results import read_json, sidecar_path, write_table
from .runtime import CL, device, one_thread
from .weights import SHA256


LR_SCOPES = ("domain", "pooled")
ENGINES = ("processes", "local", "ray")    # adapt.run's per-domain processes; shards.py's local / Ray


@dataclass
class AdaptConfig:
    profile: str = "smoke"
    model: str = "mcunet-5fps"
    domains: list[str] | None = None               # None: the profile's target domains
    methods: list[str] = field(default_factory=lambda: list(method_registry.names()))
    episodes: int | None = None                    # None: profile default (also steps, lrs, ...)
    val_episodes: int | None = None
    steps: int | None = None
    lrs: tuple[float, ...] | None = None
    lr_scope: str | None = None                    # "domain" | "pooled" (module docstring)
    # the checkpoints every method runs from; or {method: (names...)}; None: the profile's
    checkpoints: tuple[str, ...] | dict | None = None
    meta_fallback: bool = False                    # no meta checkpoint -> ImageNet weights, with a warning
    memory_kib: float | None = None                # None: the profile's budgets
    compute_macs: float | None = None
    channels: str = "fisher"
    activation: str = "input"
    fisher_path: str = "total"
    sparse_update: str = "search"                  # SparseUpdate: "search" or a released label ("99kb", ...)
    sparse_search: dict | None = None              # None: the profile's contribution-analysis settings
    static_scheme: str | None = None               # Static: the frozen scheme (a `scheme_summary` string)
    seed: int = 0
    variant: str = ""                              # "": rows in adapt/<model>/; else ablations/<model>/<variant>/
    cache: bool = True                             # exact prefix reuse (finetune.py); not in the key
    workers: int | None = None                     # processes, one domain each at a time; not in the key
    batch_tasks: int | None = None                 # > 1: an arm's tasks trained K at a time (batched.py; in the key)
    engine: str | None = None                      # ENGINES; None: the profile's; not in the key

    def resolved(self) -> "AdaptConfig":
        """A copy with every None filled in from the profile's `adapt` section."""
        s = profiles.settings(self.profile, "adapt", episodes=self.episodes, val_episodes=self.val_episodes,
                              steps=self.steps, lrs=self.lrs, lr_scope=self.lr_scope, workers=self.workers,
                              sparse_search=self.sparse_search, engine=self.engine,
                              batch_tasks=self.batch_tasks)
        c = AdaptConfig(**asdict(self))
        for k in ("episodes", "val_episodes", "steps", "lr_scope", "workers", "sparse_search", "engine",
                  "batch_tasks"):
            setattr(c, k, s[k])
        kib, macs = profiles.budgets(self.model)
        c.memory_kib = float(kib if self.memory_kib is None else self.memory_kib)
        c.compute_macs = float(macs if self.compute_macs is None else self.compute_macs)
        c.lrs = tuple(float(x) for x in s["lrs"])
        c.checkpoints = self.checkpoints if self.checkpoints is not None else tuple(s["checkpoints"])
        if not isinstance(c.batch_tasks, int) or c.batch_tasks < 1:
            raise ValueError(f"batch_tasks must be an integer >= 1, not {c.batch_tasks!r}")
        if c.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {c.engine!r}")
        if c.lr_scope not in LR_SCOPES:
            raise ValueError(f"lr_scope must be one of {', '.join(LR_SCOPES)}, not {c.lr_scope!r}")
        if c.domains is None:
            c.domains = data.target_domains(c.profile)
            if not c.domains:
                raise FileNotFoundError(f"no target domains built for profile {c.profile!r}; run "
                                        f"`make data PROFILE={c.profile}` (or `make fixture` for smoke)")
        for m in c.methods:
            method_registry.get(m)
        for _, ck in c.arms():
            if ck not in checkpoints.CHECKPOINTS:
                raise ValueError(f"unknown checkpoint {ck!r}; choose from {', '.join(checkpoints.CHECKPOINTS)}")
        return c

    def out_dir(self) -> Path:
        return taskrows.out_dir(self.profile, self.model, self.variant)

    def checkpoints_of(self, method: str) -> tuple[str, ...]:
        ck = self.checkpoints
        if isinstance(ck, dict):
            ck = ck.get(method, (method_registry.get(method).default_checkpoint,))
        return (ck,) if isinstance(ck, str) else tuple(ck)

    def arms(self) -> list[tuple[str, str]]:
        """(method, checkpoint) pairs, checkpoint-major so each backbone is loaded once."""
        cks = sorted({c for m in self.methods for c in self.checkpoints_of(m)}, key=checkpoints.CHECKPOINTS.index)
        return [(m, c) for c in cks for m in self.methods if c in self.checkpoints_of(m)]

    def episode_config(self):
        """The profile's variable-way sampler with the `adapt` section's caps."""
        return data.episode_config(self.profile, **profiles.settings(self.profile, "adapt")["episode"])

    def key(self, method: str, checkpoint: str) -> str:
        """What a row of the arm depends on in the config, hashed (part of `row_key`). Pooled
        LRs depend on every domain of the run, so the domain list is part of it then."""
        skip = ("methods", "episodes", "checkpoints", "cache", "workers", "engine", "variant") + (
            ("domains",) if self.lr_scope == "domain" else ()) + (("batch_tasks",) if (self.batch_tasks or 1) <= 1 else ())
        if method != "SparseUpdate":
            skip += ("sparse_update", "sparse_search")
        if method != "Static":
            skip += ("static_scheme",)
        d = {k: v for k, v in asdict(self).items() if k not in skip}
        d.update(method=method, checkpoint=checkpoint, episode=self.episode_config().key())
        if self.lr_scope == "pooled":
            d["domains"] = sorted(self.domains)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def plan(profile: str, model: str) -> dict:
    """The profile's plan for `model` (`adapt.models`): {"methods": [...], "checkpoints": ...},
    the AdaptConfig fields that say which methods run from which checkpoints on that backbone."""
    models = profiles.settings(profile, "adapt")["models"]
    if model not in models:
        raise ValueError(f"the {profile} profile has no adaptation plan for {model!r}; it plans "
                         f"{', '.join(models)} (profiles.py, adapt.models), or pass methods= explicitly")
    p = models[model]
    return {"methods": list(p["methods"] or method_registry.names()), "checkpoints": p["checkpoints"]}


# ---------------------------------------------------------------- backbones

class Backbones:
    """One backbone per checkpoint, channels_last, with its initial weights kept for resets,
    and the identity (content hash) of the weights each checkpoint name stands for."""

    def __init__(self, cfg: AdaptConfig):
        self.cfg, self.nets, self.fallbacks, self.ids = cfg, {}, set(), {}

    def get(self, checkpoint: str):
        if checkpoint not in self.nets:
            net = self.load(checkpoint).backbone
            self._check_unchanged(checkpoint)
            net = net.to(device()).to(memory_format=CL).eval()
            self.nets[checkpoint] = (net, initial_state(net))
        return self.nets[checkpoint]

    def identity(self, checkpoint: str) -> str:
        """'<name>:<sha256 prefix>' of the weights `checkpoint` loads in this run. ImageNet: the
        pinned release's hash (load_imagenet verifies the file against it); a trained checkpoint:
        its .pt file's hash; a missing meta checkpoint under meta_fallback: ImageNet's. Raises
        the loader's own error (what to run to create it) when the checkpoint is missing."""
        if checkpoint not in self.ids:
            self.ids[checkpoint] = self._identity(checkpoint)
        return self.ids[checkpoint]

    def _identity(self, checkpoint: str) -> str:
        if checkpoint == "imagenet":
            return f"imagenet:{SHA256[self.cfg.model][:16]}"
        if not self._path(checkpoint).is_file():
            try:
                self._load_named(checkpoint)        # raises, saying how to make the checkpoint
            except FileNotFoundError as e:
                self._fall_back(checkpoint, e)
                return self.identity("imagenet")
        return self._hashed(checkpoint)

    def _path(self, checkpoint: str) -> Path:
        return checkpoints.checkpoint_path(self.cfg.model, checkpoint, self.cfg.profile)

    def _hashed(self, checkpoint: str) -> str:
        return f"{checkpoint}:{checkpoints.file_sha256(self._path(checkpoint))[:16]}"

    def _check_unchanged(self, checkpoint: str):
        """Rows are keyed by the identity taken before loading: the file must not have been
        replaced in between (e.g. notebook 01 retraining it while this run starts)."""
        if checkpoint not in self.ids or checkpoint == "imagenet" or checkpoint in self.fallbacks:
            return
        if self._hashed(checkpoint) != self.ids[checkpoint]:
            raise RuntimeError(f"checkpoint {checkpoint!r} of {self.cfg.model} changed while this run "
                               "loaded it (is notebooks/01_pretrain.ipynb running?); rerun when it is done")

    def _fall_back(self, checkpoint: str, why: FileNotFoundError):
        """Use the ImageNet weights for a missing meta checkpoint under meta_fallback (with a
        warning); anything else missing is `why`, raised."""
        if not (self.cfg.meta_fallback and checkpoint == "meta"):
            raise why
        _no_fallback_in_reproduce(self.cfg, why)
        warnings.warn(f"{why}\n-> meta_fallback=True: using the ImageNet weights instead", stacklevel=3)
        self.fallbacks.add(checkpoint)

    def _load_named(self, checkpoint: str):
        return checkpoints.load_backbone(self.cfg.model, checkpoint, self.cfg.profile)

    def load(self, checkpoint: str):
        """A fresh TinyNet holding `checkpoint`'s weights (ImageNet's for a meta checkpoint that
        fell back); `get` keeps the one it prepared."""
        if checkpoint in self.fallbacks:
            return self._load_named("imagenet")
        try:
            return self._load_named(checkpoint)
        except FileNotFoundError as e:
            self._fall_back(checkpoint, e)
            return self._load_named("imagenet")


def _no_fallback_in_reproduce(cfg: AdaptConfig, why: FileNotFoundError) -> None:
    """In a `make reproduce` run (`reproduce.RUN_ENV` set) notebook 01 has trained the meta
    checkpoint of every model the profile meta-trains: one missing there is a lost output, and
    ImageNet weights under the meta name would make every meta row and table wrong in a run that
    ends complete. Refused; models the profile does not meta-train keep the documented fallback."""
    from .reproduce import RUN_ENV
    run = os.environ.get(RUN_ENV)
    if run and cfg.model in profiles.settings(cfg.profile, "meta")["models"]:
        raise FileNotFoundError(
            f"{why}\n`make reproduce` run {run}: ImageNet weights may not stand in for the meta checkpoint "
            f"notebook 01 trains; rerun `make reproduce PROFILE={cfg.profile}` (01 runs again when a file it "
            f"wrote is missing) or start over with `make reproduce PROFILE={cfg.profile} FRESH=1`") from None


# ---------------------------------------------------------------- one task

def scheme_summary(scheme, shapes) -> str:
    """'conv:kept/in' for each weight-trained conv, ';'-separated, with '@<hex>' after a partial
    conv: the kept channels as a bit mask (bit c = channel c), so that the (layer, channel) sets
    of two tasks can be compared (`analysis.scheme_items`). Side branches follow as
    '<kind>=<block>,<block>,...'."""
    def item(i, chans):
        n = shapes[i].in_channels
        mask = "" if len(chans) == n else "@" + format(sum(1 << c for c in chans), "x")
        return f"{i}:{len(chans)}/{n}{mask}"
    kinds = sorted(set(scheme.branches.values()))
    sides = [f"{k}=" + ",".join(str(b) for b, kb in scheme.branches.items() if kb == k) for k in kinds]
    return ";".join([item(i, c) for i, c in sorted(scheme.weights.items())] + sides)


def task_scheme(method, net, state, tensors, cfg: AdaptConfig, task_seed: int, checkpoint: str | None = None) -> tuple:
    """The method's scheme for this support set (timed: selection time) and its row fields.
    `checkpoint` names the weights `net` holds (SparseUpdate's search reads their gains)."""
    xs, ys = tensors[0], tensors[1]
    gains = None
    if method.name == "SparseUpdate" and cfg.sparse_update == "search":
        gains = _gains_of(cfg, checkpoint)
    ctx = method_registry.Context(cfg.model, cfg.memory_kib, cfg.compute_macs, cfg.channels, cfg.activation,
                                  fisher_path=cfg.fisher_path, sparse_update_label=cfg.sparse_update,
                                  sparse_gains=gains, static_scheme=cfg.static_scheme, seed=task_seed)
    net.load_state_dict(state)
    scheme, select_s = method.timed_scheme(net, xs, ys, ctx)
    shapes = net.conv_shapes()
    cost = scheme_costs(shapes, scheme)
    return scheme, dict(backward_macs=cost.backward_macs, backward_kib=round(cost.memory_kib, 3),
                        select_s=round(select_s, 4), n_layers=len(scheme.trained_layers),
                        scheme=scheme_summary(scheme, shapes))


def adapt_task(method, net, state, tensors, cfg: AdaptConfig, lr: float, task_seed: int, chosen=None) -> dict:
    """One task: the scheme (`chosen` = a `task_scheme` result to reuse), fine-tuning from
    `state`, then query accuracy (`finetune.run_task`)."""
    scheme, fields = chosen or task_scheme(method, net, state, tensors, cfg, task_seed)
    res = run_task(net, state, scheme, *tensors, cfg.steps, lr if method.trains else 0.0,
                   seed=task_seed, cache=cfg.cache, entropy_weight=method.entropy_weight)
    return dict(accuracy=res.accuracy, train_s=round(res.train_s, 4), **fields)


def _task_seed(cfg, ep) -> int:
    return cfg.seed * 1_000_003 + ep.index


# ---------------------------------------------------------------- SparseUpdate's offline search

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
        return pd.read_csv(path)
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


def _gains_of(cfg: AdaptConfig, checkpoint: str) -> pd.DataFrame:
    """The checkpoint's gains table, read once per process (the run computes it first)."""
    path = gains_path(cfg, checkpoint)
    if path not in _GAINS:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: SparseUpdate's search needs adapt.sparse_gains(cfg, "
                                    f"{checkpoint!r}) first (adapt.run computes it)")
        _GAINS[path] = pd.read_csv(path)
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


# ---------------------------------------------------------------- what a row depends on

def _domain_hash(domain: str, profile: str) -> str:
    # looked up on the module at call time, so a test can stand in a rebuilt domain
    return data.domains.domain_hash(data.load_domain(domain, profile))


def row_key(cfg: AdaptConfig, arm: tuple, nets: Backbones, built: str) -> str:
    """12 hex digits over what a row of `arm` depends on: the config (`cfg.key`), the content
    of the checkpoint its backbone loads, and the build of the domain (`built`, its hash)."""
    blob = f"{cfg.key(*arm)}|{nets.identity(arm[1])}|{built}"
    if arm[0] == "SparseUpdate" and cfg.sparse_update == "search":     # its gains come from the base domain
        blob += "|" + _domain_hash(data.domains.base_domain(cfg.profile), cfg.profile)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _arm_info(cfg: AdaptConfig, arm: tuple, nets: Backbones, built: str, manifest: str) -> dict:
    """The sidecar's description of the rows `arm` writes in this run (their key included)."""
    return {"method": arm[0], "checkpoint": arm[1], "key": row_key(cfg, arm, nets, built),
            "config_key": cfg.key(*arm), "checkpoint_id": nets.identity(arm[1]), "domain_hash": built,
            "manifest_hash": manifest, "config": asdict(cfg)}


# ---------------------------------------------------------------- learning rate from validation rows

def choose_lrs(val: pd.DataFrame, cfg: AdaptConfig) -> dict:
    """{(domain, method, checkpoint): lr} from validation rows: the argmax over `cfg.lrs` of the
    mean accuracy (lr_scope "domain") or of the mean over domains of per-domain means ("pooled");
    ties go to the earlier LR of `lrs`. A domain of the run without validation rows (no
    validation classes: Meta-Dataset's Traffic Sign) gets the pooled choice of the domains that
    have them. Arms without validation rows (lr 0 only) are absent."""
    if not len(val):
        return {}
    per = val.groupby(["method", "checkpoint", "domain", "lr"]).accuracy.mean().reset_index()
    out = {}
    for (m, ck), g in per.groupby(["method", "checkpoint"]):
        pooled = g.groupby("lr").accuracy.mean()
        scores = {d: pooled for d in [*(cfg.domains or []), *g.domain.unique()]}
        if cfg.lr_scope == "domain":
            scores.update({d: gd.set_index("lr").accuracy for d, gd in g.groupby("domain")})
        for d, sc in scores.items():
            tried = [lr for lr in cfg.lrs if lr in sc.index]
            out[(d, m, ck)] = max(tried, key=lambda lr: (sc[lr], -cfg.lrs.index(lr)))
    return out


def has_validation(cfg: AdaptConfig, domain: str) -> bool:
    """Does `domain` have enough validation classes for an episode (min_ways with >= 2 images)?"""
    d = data.load_domain(domain, cfg.profile)
    return sum(d.n_images(c, "val") >= 2 for c in d.classes("val")) >= cfg.episode_config().min_ways


# ---------------------------------------------------------------- the run

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
        `lrs`, a test row at the LR `lr_of` gives (validation's choice in `chosen`)."""
        if split == "val":
            return [(ep, a, lr) for ep in episodes for a in arms for lr in self.cfg.lrs
                    if ("val", ep.index, *a, lr) not in self.done]
        return [(ep, a, lr_of(self.cfg, self.domain, a, chosen)) for ep in episodes for a in arms
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
                seed = _task_seed(cfg, ep)
                if lr == 0 and split == "val":          # the untrained backbone: once per checkpoint
                    if arm[1] not in untrained:
                        net.load_state_dict(state)
                        untrained[arm[1]] = dict(accuracy=query_accuracy(net, *tensors[1]), train_s=0.0)
                    result = untrained[arm[1]]
                else:
                    if arm not in schemes:
                        schemes[arm] = task_scheme(method, net, state, tensors[1], cfg, seed, arm[1])
                    if cfg.batch_tasks > 1 and batchable(method, schemes[arm][0]):
                        held.setdefault(arm, []).append((ep, lr, tensors[1], schemes[arm], seed))
                        if len(held[arm]) == cfg.batch_tasks:
                            self._flush(out, split, arm, held.pop(arm), bar)
                        continue
                    result = adapt_task(method, net, state, tensors[1], cfg, lr, seed, schemes[arm])
                self.write(out, ep, split, arm, lr, result)
                bar.update(1)
            for arm, tasks in held.items():
                self._flush(out, split, arm, tasks, bar)

    def _flush(self, out, split: str, arm: tuple, tasks: list, bar):
        """Train held tasks of one arm as one batch and write their rows."""
        net, state = self.nets.get(arm[1])
        res = fine_tune_many(net, state, [t[3][0] for t in tasks], [t[2] for t in tasks], self.cfg.steps,
                             [t[1] if method_registry.get(arm[0]).trains else 0.0 for t in tasks],
                             [t[4] for t in tasks])
        for (ep, lr, _, (_, fields), _), r in zip(tasks, res):
            self.write(out, ep, split, arm, lr, dict(accuracy=r.accuracy, train_s=round(r.train_s, 4), **fields))
            bar.update(1)


def lr_of(cfg: AdaptConfig, domain: str, arm: tuple, chosen: dict) -> float:
    """The test LR of `arm` on `domain`: 0 for a method that does not train, the only LR when
    `lrs` has one, else validation's choice (`choose_lrs`)."""
    if not method_registry.get(arm[0]).trains:
        return 0.0
    return cfg.lrs[0] if len(cfg.lrs) == 1 else chosen[(domain, *arm)]


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
    if split == "val":
        arms = [a for a in cfg.arms() if method_registry.get(a[0]).trains]
        jobs = dom.todo("val", dom.episodes("val", cfg.val_episodes), arms, chosen)
    else:
        jobs = dom.todo("test", dom.episodes("test", cfg.episodes), cfg.arms(), chosen)
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


def run(cfg: AdaptConfig, progress: bool = True) -> pd.DataFrame:
    """Validation rows of every trainable arm at every LR, the LR choice, then every arm on the
    same fixed test episodes of every domain; returns the test rows. With `workers` > 1 the
    domains are shared out over that many processes (identical rows: one thread each). Engine
    "local" or "ray": the same run cut into shards (`shards.run`)."""
    cfg = cfg.resolved()
    if cfg.engine != "processes":
        from . import shards
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


def rows_of_run(cfg: AdaptConfig, split: str = "test") -> pd.DataFrame:
    """The rows of `split` that `cfg` asks for (its arms, domains and first episodes); the files
    may hold more (other arms, more episodes from an earlier run)."""
    cfg = cfg.resolved()
    rows = taskrows.load_rows(cfg.profile, cfg.model, cfg.domains, split=split, variant=cfg.variant)
    n = cfg.val_episodes if split == "val" else cfg.episodes
    mine = pd.Series(list(zip(rows.method, rows.checkpoint)), dtype=object).isin(cfg.arms())
    return rows[mine.values & (rows.episode < n).values].reset_index(drop=True)


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
                r = adapt_task(full, net, state, t, cfg, sw["lr"], _task_seed(cfg, ep))
                out.append(dict(support_cap=cap, domain=d, episode=ep.index, ways=ep.n_way, shots=len(ep.support),
                                queries=len(ep.query), none=none, fulltrain=r["accuracy"],
                                gain=r["accuracy"] - none, train_s=r["train_s"]))
    return pd.DataFrame(out)
