"""Notebook 03's ablations: which of TinyTrain's ingredients matter, on notebook 02's own tasks.

Every arm runs on the first `episodes` test episodes of each domain (the same tasks as 02, so
every difference is paired, also against 02's rows) from one checkpoint (`meta`: TinyTrain's),
at the learning rate 02 chose for its method on validation episodes (no test episode ever picks
an LR). Arms (`arm_list`), each an `AdaptConfig` of its own written to
`results/<profile>/ablations/<model>/<variant>/<domain>.csv` (resumable like 02's rows):

- channels: TinyTrain with channels by `fisher`, `l2` (weight norm, SparseUpdate's rule) or
  `random`, at each memory budget of the profile (the paper's 303/320/355 kB ablation; its
  memory rule is unknown, ours is tiny_training_int8) and the model's compute budget;
- fisher_choices: the Fisher potential of the conv *output* instead of its input, and through the
  conv alone (`fisher_path="conv"`) instead of the input's whole gradient;
- dynamic_static: TinyTrain's most frequent scheme in 02 (`most_frequent_scheme`) frozen for
  every task (`methods/static.py`);
- sparse_budget: SparseUpdate's searched static scheme at each memory budget (with the channel
  arms: TinyTrain vs SparseUpdate at matched memory, and the Pareto points).

The meta-training ablation needs no arm of its own: 02 runs the paper's six methods from both
checkpoints; `meta_training` tabulates it beside the paper's numbers.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace

import pandas as pd

from . import adapt
from . import analysis
from .. import profiles
from ..stats import verdict
from .. import reference
from ..stats import stratified_mean_ci

ABLATIONS = ("channels", "fisher_choices", "dynamic_static", "sparse_budget")
CRITERIA = ("fisher", "l2", "random")


@dataclass(frozen=True)
class Arm:
    ablation: str
    label: str                 # the arm's name in every table ("fisher @ 60 KiB", "static", ...)
    method: str
    overrides: dict = field(default_factory=dict)   # AdaptConfig fields

    @property
    def variant(self) -> str:  # the folder of its rows: the label made a safe name
        return re.sub(r"[^A-Za-z0-9.-]+", "_", self.label.replace(" @ ", "_")).strip("_.")


def settings(profile: str, **overrides) -> dict:
    return profiles.settings(profile, "ablations", **overrides)


def base_config(profile: str, model: str) -> adapt.AdaptConfig:
    """Notebook 02's configuration of `model` (its plan), whose rows and LRs the arms reuse."""
    return adapt.AdaptConfig(profile=profile, model=model, meta_fallback=True, **adapt.plan(profile, model)).resolved()


def chosen_lrs(base: adapt.AdaptConfig, method: str, checkpoint: str) -> dict:
    """{domain: lr} that 02 chose for (method, checkpoint) from its validation rows."""
    if len(base.lrs) == 1:
        return {d: base.lrs[0] for d in base.domains}
    chosen = adapt.choose_lrs(adapt.rows_of_run(base, "val"), base)
    missing = [d for d in base.domains if (d, method, checkpoint) not in chosen]
    if missing:
        raise FileNotFoundError(f"no validation rows of {method} ({checkpoint}) on {base.model} for {missing}: "
                                "run notebook 02 (or `make reproduce`) first; the ablations reuse its LR choice")
    return {d: chosen[(d, method, checkpoint)] for d in base.domains}


def most_frequent_scheme(rows: pd.DataFrame, method: str = "TinyTrain", checkpoint: str = "meta") -> tuple[str, float]:
    """TinyTrain's most frequent choice in 02: the most frequent set of (conv, kept/in) first
    (channel masks aside: exact schemes rarely repeat), then its most frequent exact scheme
    (ties: the first in row order). Returns (scheme, share of tasks with that conv set)."""
    r = rows[(rows.method == method) & (rows.checkpoint == checkpoint)]
    if not len(r):
        raise ValueError(f"no {method} ({checkpoint}) rows to take a static scheme from: run notebook 02 first")
    shape = r.scheme.fillna("").map(lambda s: ";".join(p.split("@")[0] for p in s.split(";")))
    top_shape = Counter(shape).most_common(1)[0][0]
    exact = Counter(r.scheme[shape == top_shape].fillna("")).most_common(1)[0][0]
    return exact, float((shape == top_shape).mean())


def arm_list(profile: str, static_scheme: str, **overrides) -> list[Arm]:
    s = settings(profile, **overrides)
    arms = [Arm("channels", f"{c} @ {b:g} KiB", "TinyTrain", dict(channels=c, memory_kib=b))
            for b in s["memory_kib"] for c in CRITERIA]
    arms += [Arm("fisher_choices", "activation output", "TinyTrain", dict(activation="output")),
             Arm("fisher_choices", "fisher_path conv", "TinyTrain", dict(fisher_path="conv")),
             Arm("dynamic_static", "static", "Static", dict(static_scheme=static_scheme))]
    arms += [Arm("sparse_budget", f"SparseUpdate @ {b:g} KiB", "SparseUpdate", dict(memory_kib=b))
             for b in s["memory_kib"]]
    return arms


def run_arm(arm: Arm, base: adapt.AdaptConfig, checkpoint: str, episodes: int, lrs: dict,
            progress: bool = True) -> pd.DataFrame:
    """The arm's test rows (resumed from its folder), labelled with its ablation and name."""
    cfg = replace(base, methods=[arm.method], checkpoints=(checkpoint,), episodes=episodes, variant=arm.variant,
                  power=None, **arm.overrides).resolved()
    chosen = {(d, arm.method, checkpoint): lrs[d] for d in cfg.domains}
    if arm.method == "SparseUpdate":
        adapt.all_sparse_gains(cfg, progress)      # 02's file under the same key: reused
    adapt.each_domain(cfg, "test", chosen, progress)
    return adapt.rows_of_run(cfg).assign(ablation=arm.ablation, arm=arm.label)


def reference_rows(base: adapt.AdaptConfig, checkpoint: str, episodes: int) -> pd.DataFrame:
    """02's TinyTrain rows on the same tasks: the reference arm of every comparison."""
    rows = adapt.rows_of_run(base)
    keep = (rows.method == "TinyTrain") & (rows.checkpoint == checkpoint) & (rows.episode < episodes)
    return rows[keep].assign(ablation="reference", arm="TinyTrain (02)")


# ---------------------------------------------------------------- tables

def _as_arms(rows: pd.DataFrame) -> pd.DataFrame:
    """Each arm as its own 'method' so that `analysis` pairs arms that share a method."""
    return rows.assign(method=rows.arm)


def comparisons(arms: list[Arm], base_memory_kib: float) -> list[tuple[str, str, str, str]]:
    """(ablation, label, arm, reference arm) of every paired comparison."""
    budgets = sorted({a.overrides["memory_kib"] for a in arms if a.ablation == "channels"})
    out = []
    for b in budgets:
        for x, y in (("fisher", "l2"), ("fisher", "random"), ("l2", "random")):
            out.append(("channels", f"{x} − {y} @ {b:g} KiB", f"{x} @ {b:g} KiB", f"{y} @ {b:g} KiB"))
        out.append(("sparse_budget", f"TinyTrain − SparseUpdate @ {b:g} KiB", f"fisher @ {b:g} KiB",
                    f"SparseUpdate @ {b:g} KiB"))
    out += [("dynamic_static", "TinyTrain − static", "TinyTrain (02)", "static"),
            ("fisher_choices", "activation output − input", "activation output", "TinyTrain (02)"),
            ("fisher_choices", "fisher_path conv − total", "fisher_path conv", "TinyTrain (02)")]
    if base_memory_kib in budgets:     # the same tasks, config and LR as 02's TinyTrain: equal rows
        out.append(("channels", f"fisher @ {base_memory_kib:g} KiB − TinyTrain (02)", f"fisher @ {base_memory_kib:g} KiB",
                    "TinyTrain (02)"))
    return out


def tables(rows: pd.DataFrame, arms: list[Arm], base: adapt.AdaptConfig, checkpoint: str) -> dict:
    """summary (per arm and domain + stratified average), paired (each comparison), pareto."""
    r = _as_arms(rows)
    knobs = {a.label: dict(ablation=a.ablation, criterion=a.overrides.get("channels", base.channels),
                           memory_kib=a.overrides.get("memory_kib", base.memory_kib),
                           activation=a.overrides.get("activation", base.activation),
                           fisher_path=a.overrides.get("fisher_path", base.fisher_path)) for a in arms}
    knobs["TinyTrain (02)"] = dict(ablation="reference", criterion=base.channels, memory_kib=base.memory_kib,
                                   activation=base.activation, fisher_path=base.fisher_path)
    summ = analysis.summarize(r).rename(columns={"method": "arm"})
    summ = summ.assign(model=base.model, **{k: summ.arm.map(lambda a, k=k: knobs[a][k]) for k in
                                             ("ablation", "criterion", "memory_kib", "activation", "fisher_path")})
    summ["method"] = summ.arm.map(lambda a: next((x.method for x in arms if x.label == a), "TinyTrain"))
    comps = comparisons(arms, base.memory_kib)
    d = analysis._differences(r, [(lab, (a, checkpoint), (b, checkpoint)) for _, lab, a, b in comps])
    paired = stratified_mean_ci(d, value="diff", group="comparison") if len(d) else pd.DataFrame()
    if len(paired):
        which = {lab: abl for abl, lab, _, _ in comps}
        order = {lab: i for i, (_, lab, _, _) in enumerate(comps)}
        paired = paired.assign(ablation=paired.comparison.map(which), model=base.model, checkpoint=checkpoint)
        paired = paired.sort_values("comparison", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    avg = summ[summ.domain == "average"]
    pareto = avg[avg.ablation.isin(["channels", "sparse_budget", "reference"])
                 & ((avg.criterion == "fisher") | (avg.method == "SparseUpdate"))]
    pareto = pareto.assign(memory_kib_budget=pareto.memory_kib)[
        ["model", "checkpoint", "method", "arm", "memory_kib_budget", "backward_kib", "backward_mmacs", "accuracy",
         "ci95", "tasks"]]
    return {"summary": summ, "paired": paired, "pareto": pareto}


def fixed_points(summary02: pd.DataFrame, model: str, checkpoint: str) -> pd.DataFrame:
    """The fixed-scheme baselines of 02 (same checkpoint) as Pareto points beside the budgeted arms."""
    avg = summary02[(summary02.domain == "average") & (summary02.checkpoint == checkpoint)
                    & ~summary02.method.isin(["None", "TinyTrain"])]
    return avg.assign(model=model, arm=avg.method, memory_kib_budget=float("nan"))[
        ["model", "checkpoint", "method", "arm", "memory_kib_budget", "backward_kib", "backward_mmacs", "accuracy",
         "ci95", "tasks"]]


def meta_training(rows02: pd.DataFrame, model: str) -> pd.DataFrame:
    """Every method that ran from both checkpoints: accuracy from each (stratified, t CI), the
    paired meta − imagenet difference, and the paper's without/with numbers where it has them."""
    acc = stratified_mean_ci(rows02, group=["method", "checkpoint"])
    acc = acc[acc.domain == "average"].set_index(["method", "checkpoint"])
    both = [m for m in rows02.method.unique() if {(m, "imagenet"), (m, "meta")} <= set(acc.index)]
    d = analysis._differences(rows02, [(m, (m, "meta"), (m, "imagenet")) for m in both])
    diff = stratified_mean_ci(d, value="diff", group="comparison") if len(d) else pd.DataFrame()
    diff = diff[diff.domain == "average"].set_index("comparison") if len(diff) else diff
    paper = _paper("meta")
    out = []
    for m in both:
        p = paper[(paper.model == model) & (paper.method == m)] if paper is not None else pd.DataFrame()
        out.append(dict(model=model, method=m, imagenet=acc.loc[(m, "imagenet"), "mean"],
                        imagenet_ci95=acc.loc[(m, "imagenet"), "ci95"], meta=acc.loc[(m, "meta"), "mean"],
                        meta_ci95=acc.loc[(m, "meta"), "ci95"], diff=diff.loc[m, "mean"],
                        diff_ci95=diff.loc[m, "ci95"], n=int(diff.loc[m, "n"]),
                        paper_without=p.avg_top1_without_meta_training.iloc[0] if len(p) else float("nan"),
                        paper_with=p.avg_top1_with_meta_training.iloc[0] if len(p) else float("nan")))
    return pd.DataFrame(out)


def _paper(key: str) -> pd.DataFrame:
    return reference.paper_table(key)


def sentences(paired: pd.DataFrame, meta: pd.DataFrame | None = None) -> list[str]:
    """The ablations in words: each comparison's stratified mean ± 95% t CI and whether the CI
    excludes 0 (better / worse / no clear difference)."""
    avg = paired[paired.domain == "average"]
    lines = []
    for abl, g in avg.groupby("ablation", sort=False):
        parts = [f"{r.comparison} {r['mean']:+.1f} ± {r.ci95:.1f} ({verdict(r['mean'], r.ci95)})" for _, r in g.iterrows()]
        lines.append(f"{abl} (n = {int(g.n.max())} paired tasks): " + "; ".join(parts) + ".")
    if meta is not None and len(meta):
        parts = [f"{r.method} {r['diff']:+.1f} ± {r.diff_ci95:.1f} ({verdict(r['diff'], r.diff_ci95)}; paper "
                 f"{r.paper_with - r.paper_without:+.1f})" if pd.notna(r.paper_with) else
                 f"{r.method} {r['diff']:+.1f} ± {r.diff_ci95:.1f} ({verdict(r['diff'], r.diff_ci95)})"
                 for _, r in meta.iterrows()]
        lines.append("meta-training (meta − imagenet): " + "; ".join(parts) + ".")
    return lines
