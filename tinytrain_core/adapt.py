"""Run adaptation methods over fixed episodes: per-task rows, resume, learning rate on validation.

Every method sees the same test episodes (and the same augmentation draws: the fine-tuning seed
depends on the episode only). Per (domain, method) the learning rate is picked from `lrs` on
`val_episodes` episodes of the domain's *validation* split, never on test episodes; the choice is
cached in `results/<profile>/adapt/<model>/lr.json` under the row key that made it.

Rows go to `results/<profile>/adapt/<model>/<domain>.csv` one task at a time (`taskrows.py`).
Each row carries a `key` (`row_key`): a hash of the method's config, the *content* of the
checkpoint its backbone loaded and the build of the domain. A rerun skips the (episode, method)
pairs already present under the current key, so an interrupted run resumes where it stopped;
rows under another key are set aside and computed again. Summaries: `analysis.py`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import checkpoints, data, methods as method_registry, profiles, taskrows
from .costs import scheme_costs
from .finetune import initial_state, query_accuracy, run_task
from .results import read_json, write_json
from .runtime import CL, device
from .selection import DEFAULT_COMPUTE_MACS, DEFAULT_MEMORY_KIB
from .weights import SHA256


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
        """A copy with every None filled in from the profile's `adapt` section."""
        s = profiles.settings(self.profile, "adapt", episodes=self.episodes, val_episodes=self.val_episodes,
                              steps=self.steps, lrs=self.lrs)
        c = AdaptConfig(**asdict(self))
        c.episodes, c.val_episodes, c.steps, c.lrs = s["episodes"], s["val_episodes"], s["steps"], tuple(s["lrs"])
        if c.domains is None:
            c.domains = data.target_domains(c.profile)
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
        """The profile's variable-way sampler with the `adapt` section's caps."""
        return data.episode_config(self.profile, **profiles.settings(self.profile, "adapt")["episode"])

    def key(self, method: str) -> str:
        """What a row of `method` depends on in the config, hashed (part of `row_key`)."""
        skip = ("domains", "methods", "episodes", "checkpoint")
        d = {k: v for k, v in asdict(self).items() if k not in skip}
        d.update(method=method, checkpoint=self.checkpoint_of(method), episode=self.episode_config().key())
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


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

    def label(self, checkpoint: str) -> str:
        return "imagenet (meta missing)" if checkpoint in self.fallbacks else checkpoint

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


# ---------------------------------------------------------------- one task

def scheme_summary(scheme, shapes) -> str:
    """'conv:kept/in' for each weight-trained conv, ';'-separated (`analysis.layer_choices` reads it)."""
    return ";".join(f"{i}:{len(c)}/{shapes[i].in_channels}" for i, c in sorted(scheme.weights.items()))


def adapt_task(method, net, state, tensors, cfg: AdaptConfig, lr: float, task_seed: int) -> dict:
    """One task: the method's scheme for this support set (timed: selection time), its analytic
    costs, and fine-tuning from `state` then query accuracy (`finetune.run_task`)."""
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


# ---------------------------------------------------------------- what a row depends on

def _domain_hash(domain: str, profile: str) -> str:
    # looked up on the module at call time, so a test can stand in a rebuilt domain
    return data.domains.domain_hash(data.load_domain(domain, profile))


def row_key(cfg: AdaptConfig, method: str, nets: Backbones, built: str) -> str:
    """12 hex digits over what a row of `method` depends on: the config (`cfg.key`), the content
    of the checkpoint its backbone loads, and the build of the domain (`built`, its hash)."""
    blob = f"{cfg.key(method)}|{nets.identity(cfg.checkpoint_of(method))}|{built}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _method_info(cfg: AdaptConfig, method: str, nets: Backbones, built: str, manifest: str) -> dict:
    """The sidecar's description of the rows `method` writes in this run (their key included)."""
    ckpt = cfg.checkpoint_of(method)
    return {"method": method, "key": row_key(cfg, method, nets, built), "config_key": cfg.key(method),
            "checkpoint": ckpt, "checkpoint_id": nets.identity(ckpt), "domain_hash": built,
            "manifest_hash": manifest, "config": asdict(cfg)}


# ---------------------------------------------------------------- learning rate on validation episodes

def choose_lr(method, domain: str, cfg: AdaptConfig, nets: Backbones, progress: bool = True) -> float:
    """The LR of `lrs` with the best mean accuracy on validation episodes (ties: the earlier in
    `lrs`); cached under the row key (config, checkpoint content, domain build), so a retrained
    checkpoint re-chooses. lr 0 is the untrained backbone."""
    if not method.trains or len(cfg.lrs) == 1:
        return cfg.lrs[0] if method.trains else 0.0
    path = taskrows.out_dir(cfg.profile, cfg.model) / "lr.json"
    key = f"{domain}|{method.name}|{row_key(cfg, method.name, nets, _domain_hash(domain, cfg.profile))}"
    cache = read_json(path)
    if key in cache:
        return cache[key]["lr"]
    eps = data.sample_episodes(domain, "val", cfg.val_episodes, cfg.episode_config(), seed=cfg.seed,
                               profile=cfg.profile)
    net, state = nets.get(cfg.checkpoint_of(method.name))
    accs = {}
    for lr in tqdm(cfg.lrs, desc=f"lr {method.name} {domain}", leave=False, disable=not progress):
        vals = []
        for ep in eps:
            t = data.episode_tensors(ep, channels_last=True)
            if lr == 0:
                net.load_state_dict(state)
                vals.append(query_accuracy(net, *t))
            else:
                vals.append(adapt_task(method, net, state, t, cfg, lr, _task_seed(cfg, ep))["accuracy"])
        accs[lr] = sum(vals) / len(vals)
    best = max(cfg.lrs, key=lambda lr: (accs[lr], -cfg.lrs.index(lr)))
    cache = read_json(path)                     # re-read: another run may have added entries
    cache[key] = {"lr": best, "val_accuracy": {str(k): v for k, v in accs.items()},
                  "val_episodes": cfg.val_episodes, "checkpoint_id": nets.identity(cfg.checkpoint_of(method.name)),
                  "config": asdict(cfg)}
    write_json(path, cache)
    return best


# ---------------------------------------------------------------- the run

def run(cfg: AdaptConfig, progress: bool = True) -> pd.DataFrame:
    """Run every method of `cfg` on the same fixed test episodes of every domain; returns all rows."""
    cfg = cfg.resolved()
    nets = Backbones(cfg)
    chosen = [method_registry.get(m) for m in cfg.methods]
    manifest = data.manifest_hash(cfg.profile)
    frames = []
    for domain in cfg.domains:
        path = taskrows.out_dir(cfg.profile, cfg.model) / f"{domain}.csv"
        built = _domain_hash(domain, cfg.profile)
        infos = {m.name: _method_info(cfg, m.name, nets, built, manifest) for m in chosen}
        done, present = taskrows.resume(path, infos)
        taskrows.write_sidecar(path, domain, present, infos)
        eps = data.sample_episodes(domain, "test", cfg.episodes, cfg.episode_config(), seed=cfg.seed,
                                   profile=cfg.profile)
        todo = [(ep, m) for ep in eps for m in chosen if (ep.index, m.name) not in done]
        lrs = {m.name: choose_lr(m, domain, cfg, nets, progress) for m in chosen
               if any(mm is m for _, mm in todo)}
        with contextlib.closing(taskrows.RowWriter(path)) as out, \
                tqdm(total=len(todo), desc=f"{cfg.model} {domain}", disable=not progress) as bar:
            cached = None
            for ep, m in todo:
                if cached is None or cached[0] is not ep:
                    cached = (ep, data.episode_tensors(ep, channels_last=True))
                ckpt = cfg.checkpoint_of(m.name)
                net, state = nets.get(ckpt)
                row = dict(domain=domain, episode=ep.index, ways=ep.n_way, shots=len(ep.support),
                           queries=len(ep.query), method=m.name, checkpoint=nets.label(ckpt), lr=lrs[m.name])
                row.update(adapt_task(m, net, state, cached[1], cfg, lrs[m.name], _task_seed(cfg, ep)))
                out.write({**row, "key": infos[m.name]["key"]})
                if infos[m.name]["key"] not in present:     # the sidecar follows the first row of a key
                    present.add(infos[m.name]["key"])
                    taskrows.write_sidecar(path, domain, present, infos)
                bar.update(1)
        frames.append(taskrows.read_rows(path) if path.is_file() else taskrows.rows_frame([]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=taskrows.COLUMNS)
