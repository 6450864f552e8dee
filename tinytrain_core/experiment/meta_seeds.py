"""Is meta-training's gain larger than the spread between meta-training runs?

One meta-training run is itself a random draw (its episodes and head; another CPU moved the meta
accuracies 1.15 points on average), and a task CI does not see that. Here notebook 01's
meta-training of one backbone is repeated with other `seeds` (same data, settings and thread
count; checkpoints "meta-seed<s>"), and None and TinyTrain run from each on notebook 02's first
`episodes` test tasks per domain, TinyTrain at the LR 02 chose for TinyTrain (meta).

`table`: per (method, seed) the paired meta − imagenet difference over the same tasks (seed 0 is
01's own checkpoint, read from 02's rows), and per method a row `seed="all"`: the mean over
seeds and `seed_sd`, their standard deviation (ddof 1). `stats.ci_with_extra_sd` folds that SD
into a one-run CI: t95(df) * sqrt(se^2 + seed_sd^2), the spread of a meta − imagenet difference
as a fresh meta-training run would draw it (report/claims.py uses it for claim (d)).
"""
from __future__ import annotations

import math

import pandas as pd

from ..nets import checkpoints
from ..offline import metaconfig, metatrain
from ..stats import stratified_mean_ci
from . import ablations, analysis
from .config import AdaptConfig

SEED_METHODS = ("None", "TinyTrain")


def train(base: AdaptConfig, seeds, progress: bool = True) -> None:
    """01's meta-training of `base.model` again with each seed (reused when its checkpoint exists
    with the same config)."""
    for s in seeds:
        (cfg,) = metaconfig.configs(base.profile, models=(base.model,), seed=int(s))
        metatrain.train_one(cfg, progress=progress, name=checkpoints.meta_seed_name(s))


def rows(base: AdaptConfig, seeds, episodes: int, progress: bool = True) -> pd.DataFrame:
    """None and TinyTrain from each seed's checkpoint on 02's first `episodes` tasks per domain
    (rows in ablations/<model>/<method>_meta_seed_<s>/, resumable like every arm)."""
    lrs = ablations.chosen_lrs(base, "TinyTrain", "meta")
    out = [ablations.run_arm(ablations.Arm("meta_seed", f"{m} (meta seed {s})", m), base,
                             checkpoints.meta_seed_name(s), episodes, lrs, progress).assign(seed=int(s))
           for s in seeds for m in SEED_METHODS]
    return pd.concat(out, ignore_index=True)


def _difference(meta: pd.DataFrame, imagenet: pd.DataFrame, method: str) -> dict:
    both = pd.concat([meta.assign(checkpoint="meta"), imagenet], ignore_index=True)
    d = analysis._differences(both, [(method, (method, "meta"), (method, "imagenet"))])
    avg = stratified_mean_ci(d, value="diff", group="comparison")
    r = avg[avg.domain == "average"].iloc[0]
    return dict(diff=r["mean"], diff_ci95=r.ci95, n=int(r.n), df=r.get("df", float("nan")))


def table(seed_rows: pd.DataFrame, rows02: pd.DataFrame, model: str, episodes: int) -> pd.DataFrame:
    """Per (method, seed) meta − imagenet over 02's first `episodes` tasks, then per method the
    mean over seeds and their SD (`seed="all"`)."""
    ref = rows02[(rows02.episode < episodes) & rows02.method.isin(SEED_METHODS)]
    out = []
    for m in SEED_METHODS:
        mine = ref[ref.method == m]
        imagenet = mine[mine.checkpoint == "imagenet"]
        runs = {0: mine[mine.checkpoint == "meta"]}
        runs.update({int(s): g for s, g in seed_rows[seed_rows.method == m].groupby("seed")})
        per = [dict(model=model, method=m, seed=str(s), **_difference(r, imagenet, m))
               for s, r in sorted(runs.items()) if len(r) and len(imagenet)]
        out += per
        if len(per) > 1:
            diffs = pd.Series([p["diff"] for p in per])
            out.append(dict(model=model, method=m, seed="all", diff=diffs.mean(), diff_ci95=float("nan"),
                            n=min(p["n"] for p in per), df=float("nan"), seed_sd=diffs.std(ddof=1),
                            n_seeds=len(per)))
    return pd.DataFrame(out)


def seed_sd(seeds_table: pd.DataFrame | None, model: str, method: str) -> tuple[float, int]:
    """(seed SD, number of seeds) of `method`'s meta − imagenet on `model`; (nan, 0) if absent."""
    if seeds_table is None or not len(seeds_table) or "seed_sd" not in seeds_table:
        return math.nan, 0
    r = seeds_table[(seeds_table.model == model) & (seeds_table.method == method)
                    & (seeds_table.seed.astype(str) == "all")]
    return (float(r.seed_sd.iloc[0]), int(r.n_seeds.iloc[0])) if len(r) else (math.nan, 0)


def sentences(seeds_table: pd.DataFrame | None) -> list[str]:
    if seeds_table is None or not len(seeds_table):
        return ["no meta-training seed runs"]
    lines = []
    for (model, m), g in seeds_table.groupby(["model", "method"], sort=False):
        per = g[g.seed.astype(str) != "all"]
        sd, k = seed_sd(seeds_table, model, m)
        lines.append(f"{model}, {m}: meta − imagenet per meta-training seed "
                     + ", ".join(f"seed {r.seed} {r['diff']:+.1f}" + ("" if pd.isna(r.diff_ci95) else f" ± {r.diff_ci95:.1f}")
                                 for _, r in per.iterrows())
                     + (f"; SD across {k} seeds {sd:.2f} points" if k > 1 else ""))
    return lines
