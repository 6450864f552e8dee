"""Run adaptation methods over fixed episodes: per-task rows, resume, and a summary with CIs.

Every method sees the same test episodes (and the same augmentation draws: the fine-tuning seed
depends on the episode only). Per (domain, method) the learning rate is picked from `lrs` on
`val_episodes` episodes of the domain's *validation* split, never on test episodes; the choice is
cached in `results/<profile>/adapt/<model>/lr.json` under the config that made it.

Rows go to `results/<profile>/adapt/<model>/<domain>.csv` one task at a time (append + flush),
with a `<domain>.json` sidecar holding the config and data manifest hash; a rerun skips the
(episode, method) pairs already present, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import csv
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import methods as method_registry
from .finetune import initial_state, run_task, query_accuracy
from .paths import results_dir
from .costs import scheme_costs
from .selection import DEFAULT_COMPUTE_MACS, DEFAULT_MEMORY_KIB
from .stats import mean_ci95, paired_diff_ci95

CL = torch.channels_last
# Profile sizes. default: sized for 2 CPU cores (FullTrain dominates; ~15 min with one thread on
# an idle machine): 12 test + 1 validation episode per domain, 5-6 ways with at most 3 shots
# (16 images) and 5 queries per class, 10 steps, the LR grid without 1e-4 (it barely moves in 10
# steps). Episodes are pure functions of their index, so raising `episodes` resumes a run.
PROFILE_DEFAULTS = {
    "smoke": dict(episodes=2, val_episodes=1, steps=1, lrs=(1e-3,),
                  episode=dict(max_ways=3, min_ways=3, max_query_per_class=2, max_support=6,
                               max_support_per_class=2)),
    "default": dict(episodes=12, val_episodes=1, steps=10, lrs=(1e-3, 1e-2, 0.0),
                    episode=dict(max_ways=6, min_ways=5, max_query_per_class=5, max_support=16,
                                 max_support_per_class=3)),
    "paper": dict(episodes=200, val_episodes=5, steps=40, lrs=(1e-4, 1e-3, 1e-2, 0.0), episode={}),
}
COLUMNS = ["domain", "episode", "ways", "shots", "queries", "method", "checkpoint", "lr", "accuracy",
           "backward_macs", "backward_kib", "select_s", "train_s", "n_layers", "scheme"]


@dataclass
class AdaptConfig:
    profile: str = "smoke"
    model: str = "mcunet-5fps"
    domains: list[str] | None = None               # None: the profile's target domains
    methods: list[str] = field(default_factory=lambda: ["None", "FullTrain", "LastLayer", "TinyTrain"])
    episodes: int | None = None                    # None: profile default (also steps, lrs, ...)
    val_episodes: int | None = None
    steps: int | None = None
    lrs: tuple[float, ...] | None = None
    # None: each method's default (TinyTrain meta, others imagenet); a name for all; or {method: name}
    checkpoint: str | dict | None = None
    meta_fallback: bool = False                    # no meta checkpoint -> ImageNet weights, with a warning
    memory_kib: float = DEFAULT_MEMORY_KIB
    compute_macs: float = DEFAULT_COMPUTE_MACS
    channels: str = "fisher"
    activation: str = "input"
    seed: int = 0

    def resolved(self) -> "AdaptConfig":
        d = PROFILE_DEFAULTS[self.profile]
        c = AdaptConfig(**asdict(self))
        c.episodes = d["episodes"] if c.episodes is None else c.episodes
        c.val_episodes = d["val_episodes"] if c.val_episodes is None else c.val_episodes
        c.steps = d["steps"] if c.steps is None else c.steps
        c.lrs = tuple(d["lrs"] if c.lrs is None else c.lrs)
        if c.domains is None:
            from .data import target_domains
            c.domains = target_domains(c.profile)
            if not c.domains:
                raise FileNotFoundError(f"no target domains built for profile {c.profile!r}; run "
                                        f"`make data PROFILE={c.profile}` (or `make fixture` for smoke)")
        for m in c.methods:
            method_registry.get(m)
        return c

    def checkpoint_of(self, method: str) -> str:
        if isinstance(self.checkpoint, dict):
            return self.checkpoint.get(method, method_registry.get(method).default_checkpoint)
        return self.checkpoint or method_registry.get(method).default_checkpoint

    def episode_config(self):
        from .data import episode_config
        return episode_config(self.profile, **PROFILE_DEFAULTS[self.profile]["episode"])

    def key(self, method: str) -> str:
        """What a row of `method` depends on, hashed (the LR cache key; the sidecar check)."""
        skip = ("domains", "methods", "episodes", "checkpoint")
        d = {k: v for k, v in asdict(self).items() if k not in skip}
        d.update(method=method, checkpoint=self.checkpoint_of(method), episode=self.episode_config().key())
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _read(path) -> pd.DataFrame:
    # "None" is a method name here, not a missing value
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def out_dir(profile: str, model: str) -> Path:
    d = results_dir(profile) / "adapt" / model
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------- backbones

class Backbones:
    """One backbone per checkpoint, channels_last, with its initial weights kept for resets."""

    def __init__(self, cfg: AdaptConfig):
        self.cfg, self.nets, self.fallbacks = cfg, {}, set()

    def get(self, checkpoint: str):
        if checkpoint not in self.nets:
            net = self._load(checkpoint).backbone
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            net = net.to(dev).to(memory_format=CL).eval()
            self.nets[checkpoint] = (net, initial_state(net))
        return self.nets[checkpoint]

    def label(self, checkpoint: str) -> str:
        return "imagenet (meta missing)" if checkpoint in self.fallbacks else checkpoint

    def _load(self, checkpoint):
        from . import models
        try:
            from .metatrain import load_backbone
        except ImportError:
            if checkpoint != "imagenet":
                raise FileNotFoundError(f"checkpoint {checkpoint!r} needs tinytrain_core.metatrain "
                                        "(notebooks/01_pretrain.ipynb)") from None
            return models.create(self.cfg.model, pretrained=True)
        try:
            return load_backbone(self.cfg.model, checkpoint, self.cfg.profile)
        except FileNotFoundError as e:
            if not (self.cfg.meta_fallback and checkpoint == "meta"):
                raise
            warnings.warn(f"{e}\n-> meta_fallback=True: using the ImageNet weights instead", stacklevel=2)
            self.fallbacks.add(checkpoint)
            return load_backbone(self.cfg.model, "imagenet", self.cfg.profile)


# ---------------------------------------------------------------- one task

def _tensors(ep):
    from .data import episode_tensors
    xs, ys, xq, yq = episode_tensors(ep)
    return xs.contiguous(memory_format=CL), ys, xq.contiguous(memory_format=CL), yq


def scheme_summary(scheme, shapes) -> str:
    """'conv:kept/in' for each weight-trained conv, ';'-separated (the layer figure reads it)."""
    return ";".join(f"{i}:{len(c)}/{shapes[i].in_channels}" for i, c in sorted(scheme.weights.items()))


def adapt_task(method, net, state, tensors, cfg: AdaptConfig, lr: float, task_seed: int) -> dict:
    xs, ys, xq, yq = tensors
    ctx = method_registry.Context(cfg.model, cfg.memory_kib, cfg.compute_macs, cfg.channels, cfg.activation,
                                  seed=task_seed)
    net.load_state_dict(state)
    scheme, select_s = method.timed_scheme(net, xs, ys, ctx)
    shapes = net.conv_shapes()
    cost = scheme_costs(shapes, scheme)
    res = run_task(net, state, scheme, xs, ys, xq, yq, cfg.steps, lr if method.trains else 0.0,
                   seed=task_seed)
    return dict(accuracy=res.accuracy, backward_macs=cost.backward_macs,
                backward_kib=round(cost.memory_kib, 3), select_s=round(select_s, 4),
                train_s=round(res.train_s, 4), n_layers=len(scheme.trained_layers),
                scheme=scheme_summary(scheme, shapes))


def _task_seed(cfg, ep) -> int:
    return cfg.seed * 1_000_003 + ep.index


# ---------------------------------------------------------------- learning rate on validation episodes

def choose_lr(method, domain: str, cfg: AdaptConfig, nets: Backbones, progress: bool = True) -> float:
    if not method.trains or len(cfg.lrs) == 1:
        return cfg.lrs[0] if method.trains else 0.0
    path = out_dir(cfg.profile, cfg.model) / "lr.json"
    cache = json.loads(path.read_text()) if path.is_file() else {}
    from .data import load_domain
    from .data.domains import domain_hash
    key = f"{domain}|{method.name}|{cfg.key(method.name)}|{domain_hash(load_domain(domain, cfg.profile))}"
    if key in cache:
        return cache[key]["lr"]
    from .data import sample_episodes
    eps = sample_episodes(domain, "val", cfg.val_episodes, cfg.episode_config(), seed=cfg.seed,
                          profile=cfg.profile)
    net, state = nets.get(cfg.checkpoint_of(method.name))
    accs = {}
    for lr in tqdm(cfg.lrs, desc=f"lr {method.name} {domain}", leave=False, disable=not progress):
        vals = []
        for ep in eps:
            t = _tensors(ep)
            if lr == 0:
                net.load_state_dict(state)
                vals.append(query_accuracy(net, *t))
            else:
                vals.append(adapt_task(method, net, state, t, cfg, lr, _task_seed(cfg, ep))["accuracy"])
        accs[lr] = sum(vals) / len(vals)
    best = max(cfg.lrs, key=lambda lr: (accs[lr], -cfg.lrs.index(lr)))
    cache = json.loads(path.read_text()) if path.is_file() else {}
    cache[key] = {"lr": best, "val_accuracy": {str(k): v for k, v in accs.items()},
                  "val_episodes": cfg.val_episodes, "config": asdict(cfg)}
    path.write_text(json.dumps(cache, indent=1, default=str))
    return best


# ---------------------------------------------------------------- the run

def _check_sidecar(csv_path: Path, cfg: AdaptConfig, domain: str):
    """Rows may only be resumed under the same config and the same build of the domain."""
    from .data import load_domain, manifest_hash
    from .data.domains import domain_hash
    side = csv_path.with_suffix(".json")
    want = {m: cfg.key(m) for m in cfg.methods}
    built = domain_hash(load_domain(domain, cfg.profile))
    if side.is_file() and csv_path.is_file():
        old = json.loads(side.read_text())
        have = old.get("method_keys", {})
        clash = [m for m in want if m in have and have[m] != want[m]]
        if clash or old.get("domain_hash", built) != built:
            why = (f"{', '.join(clash)} made with a different config" if clash
                   else "an older build of the domain")
            raise ValueError(f"{csv_path} holds rows of {why}; delete it (and its .json) or run under "
                             "another profile")
        want = {**have, **want}
    side.write_text(json.dumps({"domain": domain, "domain_hash": built, "config": asdict(cfg),
                                "method_keys": want, "manifest_hash": manifest_hash(cfg.profile)},
                               indent=1, default=str))


def run(cfg: AdaptConfig, progress: bool = True) -> pd.DataFrame:
    """Run every method of `cfg` on the same fixed test episodes of every domain; returns all rows."""
    from .data import sample_episodes
    cfg = cfg.resolved()
    nets = Backbones(cfg)
    chosen = [method_registry.get(m) for m in cfg.methods]
    frames = []
    for domain in cfg.domains:
        path = out_dir(cfg.profile, cfg.model) / f"{domain}.csv"
        _check_sidecar(path, cfg, domain)
        done = set()
        if path.is_file():
            old = _read(path)
            done = set(zip(old.episode, old.method))
        eps = sample_episodes(domain, "test", cfg.episodes, cfg.episode_config(), seed=cfg.seed,
                              profile=cfg.profile)
        todo = [(ep, m) for ep in eps for m in chosen if (ep.index, m.name) not in done]
        lrs = {m.name: choose_lr(m, domain, cfg, nets, progress) for m in chosen
               if any(mm is m for _, mm in todo)}
        new = not path.is_file()
        with path.open("a", newline="") as fh, tqdm(total=len(todo), desc=f"{cfg.model} {domain}",
                                                     disable=not progress) as bar:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            cached = None
            for ep, m in todo:
                if cached is None or cached[0] is not ep:
                    cached = (ep, _tensors(ep))
                ckpt = cfg.checkpoint_of(m.name)
                net, state = nets.get(ckpt)
                row = dict(domain=domain, episode=ep.index, ways=ep.n_way, shots=len(ep.support),
                           queries=len(ep.query), method=m.name, checkpoint=nets.label(ckpt), lr=lrs[m.name])
                row.update(adapt_task(m, net, state, cached[1], cfg, lrs[m.name], _task_seed(cfg, ep)))
                writer.writerow(row)
                fh.flush()
                bar.update(1)
        frames.append(_read(path))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def load_rows(profile: str, model: str, domains=None) -> pd.DataFrame:
    d = out_dir(profile, model)
    files = [d / f"{x}.csv" for x in domains] if domains else sorted(d.glob("*.csv"))
    return pd.concat([_read(f) for f in files if f.is_file()], ignore_index=True)


# ---------------------------------------------------------------- summary

def summarize(rows: pd.DataFrame, reference: str = "FullTrain") -> pd.DataFrame:
    """Per domain and method: tasks, mean accuracy with 95% CI, paired difference to `reference`
    on the shared episodes, mean analytic backward MACs and KiB, the learning rate chosen on
    validation episodes, and the share of a task's time spent selecting (tasks that trained).
    A row 'average' per method averages the domains' means."""
    out = []
    for (domain, method), g in rows.groupby(["domain", "method"], sort=False):
        mean, ci = mean_ci95(g.accuracy)
        r = dict(domain=domain, method=method, tasks=len(g), accuracy=mean, ci95=ci)
        ref = rows[(rows.domain == domain) & (rows.method == reference)]
        if method != reference and len(ref):
            both = g.merge(ref, on="episode", suffixes=("", "_ref"))
            r["diff_vs_" + reference], r["diff_ci95"] = paired_diff_ci95(both.accuracy, both.accuracy_ref)
        trained = g[g.train_s > 0]          # tasks run with lr 0 took no step: no share to speak of
        total = (trained.select_s + trained.train_s).sum()
        r.update(backward_mmacs=g.backward_macs.mean() / 1e6, backward_kib=g.backward_kib.mean(),
                 select_s=g.select_s.mean(), train_s=g.train_s.mean(),
                 lr=g.lr.iloc[0] if "lr" in g else float("nan"),
                 select_share=trained.select_s.sum() / total if total > 0 else float("nan"))
        out.append(r)
    table = pd.DataFrame(out)
    if len(table):
        avg = table.groupby("method", sort=False).agg(tasks=("tasks", "sum"), accuracy=("accuracy", "mean"),
                                                      backward_mmacs=("backward_mmacs", "mean"),
                                                      backward_kib=("backward_kib", "mean")).reset_index()
        avg.insert(0, "domain", "average")
        table = pd.concat([table, avg], ignore_index=True)
    return table


def layer_choices(rows: pd.DataFrame, method: str = "TinyTrain") -> pd.DataFrame:
    """(domain, conv, mean kept-channel fraction over tasks, fraction of tasks that trained it)."""
    recs = []
    for (domain, ep), g in rows[rows.method == method].groupby(["domain", "episode"]):
        for item in str(g.scheme.iloc[0]).split(";"):
            if ":" in item:
                conv, frac = item.split(":")
                k, n = frac.split("/")
                recs.append(dict(domain=domain, episode=ep, conv=int(conv), fraction=int(k) / int(n)))
    df = pd.DataFrame(recs, columns=["domain", "episode", "conv", "fraction"])
    n_tasks = rows[rows.method == method].groupby("domain").episode.nunique()
    agg = df.groupby(["domain", "conv"]).agg(fraction=("fraction", "mean"),
                                             tasks=("episode", "count")).reset_index()
    agg["picked"] = agg.tasks / agg.domain.map(n_tasks)
    return agg
