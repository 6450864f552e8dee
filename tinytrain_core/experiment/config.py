"""What one adaptation run is: `AdaptConfig` (every field a notebook parameter can set; None
takes the profile's value in `resolved`), its `key` per arm (what a row's results depend on), and
`plan`, the profile's methods and checkpoints per backbone. The run itself: `adapt.py`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import data, methods as method_registry, profiles
from ..nets import checkpoints
from . import taskrows


LR_SCOPES = ("domain", "pooled")
POWER_KEYS = ("episodes", "val_episodes", "lr_scope")
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
    # SparseUpdate: "search" (our search at memory_kib), "nearest" (the released scheme whose memory
    # is nearest memory_kib) or a released label ("99kb", ...); None: the profile's
    sparse_update: str | None = None
    sparse_search: dict | None = None              # None: the profile's contribution-analysis settings
    static_scheme: str | None = None               # Static: the frozen scheme (a `scheme_summary` string)
    seed: int = 0
    variant: str = ""                              # "": rows in adapt/<model>/; else ablations/<model>/<variant>/
    cache: bool = True                             # exact prefix reuse (finetune.py); not in the key
    workers: int | None = None                     # processes, one domain each at a time; not in the key
    batch_tasks: int | None = None                 # > 1: an arm's tasks trained K at a time (batched.py; in the key)
    engine: str | None = None                      # ENGINES; None: the profile's; not in the key
    # FullTrain-like schemes by plain autograd (training/dense.py): not bit-identical to the engine,
    # so in the key when on; off leaves every key (and so every committed row) as it was
    full_autograd: bool | None = None              # None: the profile's
    # {method: {"episodes", "val_episodes", "lr_scope"}}: per-method sizes that override the
    # run's (the claim arms' bigger sample; the plan's `power`); not in the key, but a method's
    # own val_episodes and lr_scope are
    power: dict | None = None

    def resolved(self) -> "AdaptConfig":
        """A copy with every None filled in from the profile's `adapt` section."""
        s = profiles.settings(self.profile, "adapt", episodes=self.episodes, val_episodes=self.val_episodes,
                              steps=self.steps, lrs=self.lrs, lr_scope=self.lr_scope, workers=self.workers,
                              sparse_search=self.sparse_search, engine=self.engine,
                              batch_tasks=self.batch_tasks, full_autograd=self.full_autograd,
                              sparse_update=self.sparse_update)
        c = AdaptConfig(**asdict(self))
        for k in ("episodes", "val_episodes", "steps", "lr_scope", "workers", "sparse_search", "engine",
                  "batch_tasks", "full_autograd", "sparse_update"):
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
        c.power = {m: dict(p) for m, p in (self.power or {}).items()}
        for m, p in c.power.items():
            method_registry.get(m)
            bad = set(p) - set(POWER_KEYS)
            if bad:
                raise ValueError(f"power[{m!r}]: unknown setting(s) {sorted(bad)}; allowed: {list(POWER_KEYS)}")
        for m in {None, *c.power}:
            if c.lr_scope_of(m) not in LR_SCOPES:
                raise ValueError(f"lr_scope must be one of {', '.join(LR_SCOPES)}, not {c.lr_scope_of(m)!r}")
            for n in (c.episodes_of(m), c.val_episodes_of(m)):
                if not isinstance(n, int) or n < 0:
                    raise ValueError(f"episodes and val_episodes must be integers >= 0, not {n!r} ({m or 'the run'})")
        if c.domains is None:
            c.domains = data.target_domains(c.profile)
            if not c.domains:
                raise FileNotFoundError(f"no target domains built for profile {c.profile!r}; run "
                                        f"`make data PROFILE={c.profile}` (or `make fixture` for smoke)")
        for m in c.methods:
            method_registry.get(m)
        for _, ck in c.arms():
            if ck not in checkpoints.CHECKPOINTS and not checkpoints.is_meta_seed(ck):
                raise ValueError(f"unknown checkpoint {ck!r}; choose from {', '.join(checkpoints.CHECKPOINTS)} "
                                 f"(or {checkpoints.SEED_PREFIX}<seed>)")
        return c

    def _own(self, method, k):
        return (self.power or {}).get(method, {}).get(k, getattr(self, k))

    def episodes_of(self, method) -> int:
        """Test episodes per domain of `method` (its `power` entry, else the run's)."""
        return self._own(method, "episodes")

    def val_episodes_of(self, method) -> int:
        return self._own(method, "val_episodes")

    def lr_scope_of(self, method) -> str:
        return self._own(method, "lr_scope")

    def episodes_in(self, split: str, method) -> int:
        """`method`'s episodes per domain of `split` ("val": `val_episodes_of`, else `episodes_of`)."""
        return self.val_episodes_of(method) if split == "val" else self.episodes_of(method)

    def most_episodes(self, split: str, arms=None) -> int:
        """How many episodes of `split` a domain samples for `arms` (default: the run's): the most
        any of their methods runs; 0 without arms."""
        return max((self.episodes_in(split, m) for m, _ in (self.arms() if arms is None else arms)), default=0)

    def out_dir(self) -> Path:
        return taskrows.out_dir(self.profile, self.model, self.variant)

    def checkpoints_of(self, method: str) -> tuple[str, ...]:
        ck = self.checkpoints
        if isinstance(ck, dict):
            ck = ck.get(method, (method_registry.get(method).default_checkpoint,))
        return (ck,) if isinstance(ck, str) else tuple(ck)

    def arms(self) -> list[tuple[str, str]]:
        """(method, checkpoint) pairs, checkpoint-major so each backbone is loaded once."""
        cks = sorted({c for m in self.methods for c in self.checkpoints_of(m)}, key=checkpoints.order)
        return [(m, c) for c in cks for m in self.methods if c in self.checkpoints_of(m)]

    def episode_config(self):
        """The profile's variable-way sampler with the `adapt` section's caps."""
        return data.episode_config(self.profile, **profiles.settings(self.profile, "adapt")["episode"])

    def key(self, method: str, checkpoint: str) -> str:
        """What a row of the arm depends on in the config, hashed (part of `row_key`). Pooled
        LRs depend on every domain of the run, so the domain list is part of it then."""
        scope = self.lr_scope_of(method)
        skip = ("methods", "episodes", "checkpoints", "cache", "workers", "engine", "variant", "power") + (
            ("domains",) if scope == "domain" else ()) + (("batch_tasks",) if (self.batch_tasks or 1) <= 1 else ()) + (
            () if self.full_autograd else ("full_autograd",))
        if method != "SparseUpdate":
            skip += ("sparse_update", "sparse_search")
        if method != "Static":
            skip += ("static_scheme",)
        d = {k: v for k, v in asdict(self).items() if k not in skip}
        d.update(method=method, checkpoint=checkpoint, episode=self.episode_config().key(),
                 val_episodes=self.val_episodes_of(method), lr_scope=scope)
        if scope == "pooled":
            d["domains"] = sorted(self.domains)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def plan(profile: str, model: str) -> dict:
    """The profile's plan for `model` (`adapt.models`): {"methods": [...], "checkpoints": ...,
    "power": ...}, the AdaptConfig fields that say which methods run from which checkpoints on
    that backbone, and which of them run on more tasks (`power`)."""
    models = profiles.settings(profile, "adapt")["models"]
    if model not in models:
        raise ValueError(f"the {profile} profile has no adaptation plan for {model!r}; it plans "
                         f"{', '.join(models)} (profiles.py, adapt.models), or pass methods= explicitly")
    p = models[model]
    return {"methods": list(p["methods"] or method_registry.names()), "checkpoints": p["checkpoints"],
            "power": p.get("power")}
