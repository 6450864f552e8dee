"""Every profile's sizes, in one place: one plain dict per profile, one section per stage.

    settings(profile, stage, **overrides) -> the section's dict with the non-None overrides applied

- smoke: the font fixture, seconds per notebook (what nbval and CI run);
- default: sized for a 2-core CPU (`make data` < 20 min, each notebook ~10-15 min);
- paper: the paper's protocol sizes (Meta-Dataset sampler caps, 200 tasks per domain).

Sections: `data` (sampler caps of the evaluation episodes, classes/images each builder keeps),
`frozen` (notebook 00's frozen-feature check), `meta` (notebook 01's meta-training and
before/after table), `adapt` (notebook 02's tasks; `models`: which methods run from which
checkpoints on each backbone, and `power`: per-method episode counts and LR scope; `engine`,
`shards`, `batch_tasks`: how the run is executed, `shards.py`, `batched.py`), `ablations` (notebook 03), `costs` (notebook 04's measured steps).
A rerun with unchanged values reuses checkpoints and rows: changing a value here retrains.
"""
from __future__ import annotations

from .nets.models import MODEL_NAMES
from .paths import PROFILES, check_profile  # noqa: F401 (re-exported)

# TinyTrain's budgets for mcunet-5fps (backward memory, tiny_training_int8 KiB; backward MACs per
# sample), chosen in notebooks/02_adapt.ipynb from a sweep where memory binds.
MEMORY_KIB = 100.0
COMPUTE_MACS = 8e6
# The other two backbones: chosen the same way, from a sweep of 5 x 5 budgets (60-160 KiB x 4-12 M)
# on 2 test support sets per default domain (meta checkpoint; Fisher pass and selection only, no
# query is read; notebook 02's budget sweep recomputes a small version per model): the grid point
# nearest mcunet's budgets scaled by the paper's Table 2 (mbv2 119 KiB / 6.0 M, proxyless 88 KiB /
# 6.1 M) where both budgets bind, memory and compute each >= 98% spent. mbv2-w0.35: 120 KiB / 6 M
# (99% / 99%). proxyless-w0.3 needs more compute per KiB: at 88 KiB / 6.1 M only compute binds
# (memory 47-58% spent); 100 KiB / 12 M spends 99.8% / 98%.
BUDGETS = {"mcunet-5fps": (MEMORY_KIB, COMPUTE_MACS), "mbv2-w0.35": (120.0, 6e6), "proxyless-w0.3": (100.0, 12e6)}


def budgets(model: str) -> tuple[float, float]:
    """(backward memory KiB, backward MACs per sample): TinyTrain's default budgets for `model`."""
    return BUDGETS.get(model, (MEMORY_KIB, COMPUTE_MACS))


# adapt.models: methods=None means Table 1's ten. META_ABLATION: the methods of the paper's
# meta-training ablation (ablation_meta_training.csv), run from both checkpoints.
META_ABLATION = ("None", "FullTrain", "LastLayer", "TinyTL", "SparseUpdate", "TinyTrain")
BOTH = ("imagenet", "meta")

SMOKE = {
    "data": {
        "episode": dict(max_ways=10, min_ways=5, max_query_per_class=5, max_support=50,
                        max_support_per_class=10),
        "n_episodes": 4,
        "build": {},        # smoke builds no real domain (build_caps falls back to default's)
    },
    "frozen": dict(episodes=3, hist_episodes=40),
    "meta": dict(models=("mcunet-5fps",), episodes=6, ways=5, shots=2, queries=4, lr=5e-4,
                 weight_decay=0.05, warmup=2, schedule="cosine", augment="batched",
                 val_every=3, val_episodes=4, eval_episodes=6, eval_shots=2, eval_queries=4,
                 scratch_steps=4, scratch_batch=32, scratch_lr=2e-3, seed=0, init="imagenet"),
    "adapt": dict(episodes=2, val_episodes=1, steps=2, lrs=(0.0, 1e-3), lr_scope="domain",
                  checkpoints=("imagenet", "meta"), workers=1, engine="processes", batch_tasks=1,
                  full_autograd=True, sparse_update="search",
                  shards=dict(episodes=1, gpus=0.0),
                  episode=dict(max_ways=3, min_ways=3, max_query_per_class=2, max_support=6,
                               max_support_per_class=2),
                  size_sweep=dict(supports=(3, 6), tasks=1, domains=(), checkpoint="imagenet", lr=1e-3),
                  budget_sweep_tasks=1,
                  sparse_search=dict(tasks=1, steps=2, lr=1e-2, candidates="pointwise"),
                  models={"mcunet-5fps": dict(methods=None, checkpoints=BOTH,
                                              power={"TinyTrain": dict(episodes=3, val_episodes=2, lr_scope="pooled")}),
                          "proxyless-w0.3": dict(methods=("None", "LastLayer", "SparseUpdate", "TinyTrain"),
                                                 checkpoints=BOTH)}),
    "ablations": dict(model="mcunet-5fps", checkpoint="meta", episodes=1, memory_kib=(60.0, 100.0, 160.0),
                      meta_seeds=(1,)),
    "costs": dict(measure_batch=1, measure_models=("mcunet-5fps",), measure_mix=False,
                  tinytrain_models=("mcunet-5fps",), tinytrain_support=10),
}

# The arms behind the paper's accuracy claims on mcunet-5fps (TinyTrain vs FullTrain, vs
# SparseUpdate at matched memory, FullTrain vs None, from both checkpoints) run on more tasks than
# the breadth arms, with their LR chosen per domain (issue 23's power plan): 8 test episodes per
# domain (72 paired tasks; per-task SD of TinyTrain - FullTrain 3.9-5.5 -> 95% CI about +-1.0) and
# 5 validation episodes per domain and LR. Measured here (2 workers, full pin, plain-autograd
# FullTrain): CPU-s per support image FullTrain 0.49, TinyTrain 0.19, SparseUpdate (99kb) 0.20,
# LastLayer 0.16, TinyTL 0.72, Transductive 0.70, AdapterDrop 0.14-0.28.
CLAIM_METHODS = ("None", "FullTrain", "SparseUpdate", "TinyTrain")
CLAIM_POWER = dict(episodes=8, val_episodes=5, lr_scope="domain")

# meta: 200 episodes per backbone ~ 5-6 min at the 1.4-1.8 s/episode measured on 2 shared cores
# (5 shots + 10 queries: the icons keep 10-16 images per class). lr 5e-4 from a quick test
# (mcunet-5fps, 40 episodes, base-val gain over the ImageNet start on 30 paired episodes):
# 5e-5 +5.6 +- 2.4, 5e-4 +6.7 +- 2.8, 2e-3 +2.4 +- 3.8 points.
# adapt (P>M>F's recipe: 40 Adam steps on support + DiffAugment copy, LRs {0, 1e-4, 1e-3}): one
# episode of all ten methods costs ~65 s on one thread per checkpoint (Transductive 18 s, TinyTL
# and FullTrain 13-14 s each), and `make reproduce` must fit 120 min with three backbones and the
# ablations. So: 3 test episodes per domain (27 paired tasks per arm), the LR pooled over domains
# from 1 validation episode each (9 per choice); 1e-2 left out of the grid (run 3d407a32 chose it
# once, for SparseUpdate (imagenet), tied with 1e-3 at 68.8). `models` is the plan per backbone:
# mcunet-5fps runs all ten methods in the paper's configuration (from ImageNet) and the six of the
# paper's meta-training ablation from both checkpoints; mbv2/proxyless run None, LastLayer,
# FullTrain and SparseUpdate from ImageNet and TinyTrain from both (paper's configuration + the
# same-checkpoint comparison with FullTrain). `power` (AdaptConfig.power) gives some methods of a
# backbone their own test / validation episodes and LR scope: mcunet's claim arms (above) more.
# Episodes are pure functions of their index, so raising `episodes` resumes a run. Queries: up to
# 30 per class (each adapted model scored on more of its classes' images: per-task SD 5.5 -> 3.9
# measured; scoring is forward passes only). FullTrain-like schemes train by plain autograd
# (`full_autograd`, 1.3-1.6x faster, tests/test_dense.py); SparseUpdate runs the released scheme
# nearest TinyTrain's memory budget (`sparse_update="nearest"`: 99kb on mcunet, 99.8 KiB).
# sparse_search: SparseUpdate's contribution analysis, for sparse_update="search" (2 base-domain
# validation tasks, 20 steps, the pointwise convs of the network's second half).
# ablations (notebook 03): mcunet-5fps from `meta`, the first 4 test episodes per domain (the
# same tasks as 02; 36 paired tasks: the channel comparisons had +-0.8 at 27), TinyTrain's /
# SparseUpdate's LR as 02 chose it, memory budgets in KiB; `meta_seeds`: 01's meta-training of
# the model again with these seeds, None and TinyTrain from each (experiment/meta_seeds.py).
DEFAULT = {
    "data": {
        "episode": dict(max_ways=20, min_ways=5, max_query_per_class=10, max_support=100,
                        max_support_per_class=20),
        "n_episodes": 50,
        # classes kept per domain, images kept per class (None: all)
        "build": {"icons": (1200, 16), "cjk": (500, 15), "emoji": (600, 12), "glyphs": (None, 12),
                  "lineart": (None, 12), "signs": (None, 16), "cards": (None, 30),
                  "fashion": (None, 600), "textures": (None, 20), "clipart": (None, 16)},
    },
    "frozen": dict(episodes=40, hist_episodes=200),
    "meta": dict(models=MODEL_NAMES, episodes=200, ways=5, shots=5, queries=10, lr=5e-4,
                 weight_decay=0.05, warmup=20, schedule="cosine", augment="batched",
                 val_every=40, val_episodes=30, eval_episodes=40, eval_shots=5, eval_queries=10,
                 scratch_steps=400, scratch_batch=64, scratch_lr=2e-3, seed=0, init="imagenet"),
    "adapt": dict(episodes=3, val_episodes=1, steps=40, lrs=(0.0, 1e-4, 1e-3), lr_scope="pooled",
                  checkpoints=("imagenet", "meta"), workers=2, engine="processes", batch_tasks=1,
                  full_autograd=True, sparse_update="nearest",
                  shards=dict(episodes=3, gpus=0.0),
                  episode=dict(max_ways=10, min_ways=5, max_query_per_class=30, max_support=15,
                               max_support_per_class=5),
                  size_sweep=dict(supports=(5, 15, 30), tasks=2, domains=("cjk", "signs"), checkpoint="imagenet",
                                  lr=1e-3),
                  budget_sweep_tasks=4,
                  sparse_search=dict(tasks=2, steps=20, lr=1e-3, candidates="pointwise"),
                  models={"mcunet-5fps": dict(methods=None, checkpoints={m: BOTH for m in META_ABLATION},
                                              power={m: CLAIM_POWER for m in CLAIM_METHODS}),
                          **{m: dict(methods=("None", "LastLayer", "FullTrain", "SparseUpdate", "TinyTrain"),
                                     checkpoints={"TinyTrain": BOTH, "None": BOTH})
                             for m in ("mbv2-w0.35", "proxyless-w0.3")}}),
    "ablations": dict(model="mcunet-5fps", checkpoint="meta", episodes=4, memory_kib=(60.0, 100.0, 160.0),
                      meta_seeds=(1, 2)),
    "costs": dict(measure_batch=2, measure_models=MODEL_NAMES, measure_mix=True,
                  tinytrain_models=MODEL_NAMES, tinytrain_support=25),
}

# paper: the paper's sizes. Its adapt run is cut into shards of 25 episodes (shards.py) shared out
# over `workers` local processes, resumable shard by shard; engine="ray" takes the same shards to
# a Ray cluster (RAY_ADDRESS) with `gpus` of a GPU each; batch_tasks > 1 trains K tasks per GPU
# launch (batched.py). smoke/default keep one process per domain (the committed run's path; the
# rows are the same either way, tests/test_shards.py).
PAPER = {
    "data": {
        "episode": dict(max_ways=50, min_ways=5, max_query_per_class=10, max_support=500,
                        max_support_per_class=100),
        "n_episodes": 200,
        "build": {"icons": (None, 40), "cjk": (2000, 15), "emoji": (None, 14), "glyphs": (None, 20),
                  "lineart": (None, 20), "signs": (None, 20), "cards": (None, 30),
                  "fashion": (None, 2000), "textures": (None, 40), "clipart": (None, 60)},
    },
    "frozen": dict(episodes=600, hist_episodes=600),
    "meta": dict(models=MODEL_NAMES, episodes=5000, ways=5, shots=5, queries=15, lr=5e-4,
                 weight_decay=0.05, warmup=250, schedule="cosine", augment="batched",
                 val_every=250, val_episodes=100, eval_episodes=200, eval_shots=5, eval_queries=15,
                 scratch_steps=20000, scratch_batch=128, scratch_lr=2e-3, seed=0, init="imagenet"),
    "adapt": dict(episodes=200, val_episodes=5, steps=40, lrs=(0.0, 1e-4, 1e-3, 1e-2), lr_scope="domain",
                  checkpoints=("imagenet", "meta"), workers=2, engine="local", batch_tasks=1,
                  full_autograd=True, sparse_update="search",
                  shards=dict(episodes=25, gpus=0.25),
                  episode={},
                  size_sweep=dict(supports=(25, 100, 500), tasks=5, domains=(), checkpoint="imagenet", lr=1e-3),
                  budget_sweep_tasks=10,
                  sparse_search=dict(tasks=10, steps=40, lr=1e-3, candidates="all"),
                  models={m: dict(methods=None, checkpoints=BOTH) for m in MODEL_NAMES}),
    "ablations": dict(model="mcunet-5fps", checkpoint="meta", episodes=200, memory_kib=(60.0, 100.0, 160.0),
                      meta_seeds=(1, 2, 3, 4)),
    "costs": dict(measure_batch=4, measure_models=MODEL_NAMES, measure_mix=True,
                  tinytrain_models=MODEL_NAMES, tinytrain_support=25),
}

SIZES = {"smoke": SMOKE, "default": DEFAULT, "paper": PAPER}
STAGES = tuple(SMOKE)
assert tuple(SIZES) == PROFILES, "profiles.SIZES and paths.PROFILES must name the same profiles"


def settings(profile: str, stage: str, **overrides) -> dict:
    """A copy of `stage`'s section of `profile`, with every override that is not None applied
    (None keeps the profile's value, as the notebooks' None parameters mean). An unknown key
    raises naming the allowed ones."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    s = dict(SIZES[check_profile(profile)][stage])
    unknown = set(overrides) - set(s)
    if unknown:
        raise ValueError(f"unknown {stage} setting(s) {sorted(unknown)}; allowed: {sorted(s)}")
    s.update({k: v for k, v in overrides.items() if v is not None})
    return s
