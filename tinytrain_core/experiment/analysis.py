"""What the per-task adaptation rows say: accuracy per arm, paired comparisons, the validation
curves behind each learning rate, and how much TinyTrain's selection varies.

An arm is a (method, checkpoint) pair. Every statistic is over tasks (episodes) with a Student t
95% CI; averages are stratified by domain (each domain weighs the same, `stats.py`); differences
between arms are paired over the episodes both ran.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import methods
from ..training import budgets
from ..stats import leave_one_out as _loo
from ..stats import stratified_ci_for, tasks_for_ci
from ..stats import stratified_mean_ci

ARM = ["method", "checkpoint"]

# (label, arm, reference arm): the paper's configuration (TinyTrain meta-trained, baselines from
# ImageNet) beside the fair one (both from the same checkpoint), what fine-tuning adds to None,
# and what meta-training adds to each method. Pairs whose arms did not run are skipped.
BASELINES = ("FullTrain", "LastLayer", "TinyTL", "AdapterDrop-25%", "AdapterDrop-50%", "AdapterDrop-75%",
             "SparseUpdate", "Transductive")
COMPARISONS = (
    [(f"TinyTrain − FullTrain ({c})", ("TinyTrain", c), ("FullTrain", c)) for c in ("meta", "imagenet")]
    + [("TinyTrain (meta) − FullTrain (imagenet): the paper's configuration", ("TinyTrain", "meta"),
        ("FullTrain", "imagenet"))]
    + [(f"{m} − None ({c})", (m, c), ("None", c)) for c in ("meta", "imagenet") for m in (*BASELINES, "TinyTrain")]
    + [(f"TinyTrain − {m} ({c})", ("TinyTrain", c), (m, c)) for c in ("meta", "imagenet") for m in BASELINES[1:]]
    + [(f"TinyTrain (meta) − {m} (imagenet): the paper's configuration", ("TinyTrain", "meta"), (m, "imagenet"))
       for m in BASELINES[1:]]
    + [(f"{m}: meta − imagenet", (m, "meta"), (m, "imagenet")) for m in ("None", *BASELINES, "TinyTrain")]
)
HEADLINE = "TinyTrain − FullTrain (meta)"


# Issue 23's power targets (95% CI half-widths, points) for the comparisons behind the claims;
# `power_plan` says how many tasks of a run's size each needs.
POWER_TARGETS = {"TinyTrain − FullTrain (meta)": 1.0, "TinyTrain − FullTrain (imagenet)": 1.0,
                 "TinyTrain (meta) − FullTrain (imagenet): the paper's configuration": 1.0,
                 "TinyTrain − SparseUpdate (meta)": 1.0, "TinyTrain − SparseUpdate (imagenet)": 1.0,
                 "FullTrain − None (imagenet)": 1.0, "FullTrain − None (meta)": 1.0,
                 "TinyTrain: meta − imagenet": 1.0}


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm and domain (plus the stratified `average`): tasks, mean accuracy, t CI, and the
    arm's mean analytic backward MACs / KiB, LR, train and selection seconds per task."""
    acc = stratified_mean_ci(rows, group=ARM)
    r = rows.assign(total_s=rows.select_s + rows.train_s)
    cost = r.groupby([*ARM, "domain"]).agg(backward_mmacs=("backward_macs", lambda x: x.mean() / 1e6),
                                           backward_kib=("backward_kib", "mean"), lr=("lr", "first"),
                                           select_s=("select_s", "mean"), train_s=("train_s", "mean"),
                                           task_s=("total_s", "mean")).reset_index()
    avg = cost.groupby(ARM).mean(numeric_only=True).reset_index().assign(domain="average", lr=float("nan"))
    out = acc.merge(pd.concat([cost, avg], ignore_index=True), on=[*ARM, "domain"], how="left")
    return out.rename(columns={"n": "tasks", "mean": "accuracy"})


def _trains(method) -> bool:
    """Whether `method` trains anything (`Method.trains`; None does not); an unknown name does."""
    cls = methods.REGISTRY.get(str(method))
    return True if cls is None else bool(cls.trains)


def lr_zero(table: pd.DataFrame, arm=tuple(ARM)) -> pd.DataFrame:
    """Per (arm, domain): `lr_zero`, True where the arm's method trains and every row ran with LR 0.

    LR 0 is a legal validation choice (the {0, 1e-4, 1e-3} grid keeps the checkpoint when
    training hurt on the validation episodes), but such an arm never trained there: it *is* its
    untrained checkpoint, and a comparison resting on it says nothing about its method. `table`
    is per-task rows or a summary with `lr` per (arm, domain) (its `average` rows are left out);
    `arm` names its arm columns (ablations: ("arm", "checkpoint")); whether the method trains is
    read from `method` where the table has it (None never trains: never flagged)."""
    cols = list(arm)
    t = table[table.domain != "average"]
    trains = t.method.map(_trains) if "method" in t else True
    per = t.assign(lr_zero=(t.lr == 0) & trains).groupby([*cols, "domain"], sort=False).lr_zero.all()
    return per.reset_index()


def untrained(table: pd.DataFrame, arm=tuple(ARM)) -> pd.DataFrame:
    """Per arm (:func:`lr_zero`): `lr_zero_domains`, the domains where it ran with LR 0, out of
    the `domains` it ran."""
    cols = list(arm)
    out = lr_zero(table, arm).groupby(cols, sort=False).lr_zero.agg(lr_zero_domains="sum", domains="count")
    return out.reset_index().astype({"lr_zero_domains": int, "domains": int})


def untrained_notes(table: pd.DataFrame, arm=tuple(ARM)) -> dict:
    """{(arm name, checkpoint): "lr 0 in k/n domains"} for every arm that ran with LR 0 in at
    least one domain (:func:`untrained`): the flag the report and the sentences print."""
    u = untrained(table, arm)
    return {(a, c): f"lr 0 in {k}/{n} domains" for a, c, k, n in u.itertuples(index=False) if k > 0}


def _differences(rows: pd.DataFrame, comparisons) -> pd.DataFrame:
    """One row per (comparison, domain, episode) both arms ran: diff = arm - reference."""
    key = ["domain", "episode"]
    out = []
    for label, a, b in comparisons:
        x = rows[(rows.method == a[0]) & (rows.checkpoint == a[1])][[*key, "accuracy"]]
        y = rows[(rows.method == b[0]) & (rows.checkpoint == b[1])][[*key, "accuracy"]]
        if len(x) and len(y):
            m = x.merge(y, on=key, suffixes=("", "_ref"))
            out.append(m.assign(comparison=label, diff=m.accuracy - m.accuracy_ref))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=[*key, "comparison", "diff"])


def paired(rows: pd.DataFrame, comparisons=COMPARISONS) -> pd.DataFrame:
    """Paired differences per comparison, per domain and stratified average, with t CIs."""
    d = _differences(rows, comparisons)
    if not len(d):
        return pd.DataFrame(columns=["comparison", "domain", "n", "mean", "ci95"])
    res = stratified_mean_ci(d, value="diff", group="comparison")
    order = {c[0]: i for i, c in enumerate(comparisons)}
    return res.sort_values("comparison", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def leave_one_out(rows: pd.DataFrame, comparisons=COMPARISONS) -> pd.DataFrame:
    """Each comparison's stratified average with each domain left out in turn."""
    d = _differences(rows, comparisons)
    return _loo(d, value="diff", group="comparison") if len(d) and d.domain.nunique() > 1 else pd.DataFrame()


def lr_validation(val: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The validation curves: mean accuracy per (arm, domain, LR) over the validation episodes,
    plus a `pooled` row per (arm, LR) (mean of the domains' means), and whether the LR is the one
    the test rows of that arm and domain ran with (`chosen`)."""
    per = val.groupby([*ARM, "domain", "lr"]).accuracy.agg(["mean", "count"]).reset_index()
    pooled = per.groupby([*ARM, "lr"]).agg(mean=("mean", "mean"), count=("count", "sum")).reset_index()
    out = pd.concat([per, pooled.assign(domain="pooled")], ignore_index=True)
    used = test.groupby([*ARM, "domain"]).lr.first()
    first = test.groupby(ARM).lr.agg(lambda s: s.iloc[0] if s.nunique() == 1 else float("nan"))
    out["chosen"] = [lr == (used.get((m, c, d)) if d != "pooled" else first.get((m, c)))
                     for m, c, d, lr in zip(out.method, out.checkpoint, out.domain, out.lr)]
    return out.rename(columns={"mean": "val_accuracy", "count": "val_tasks"})


def scheme_items(scheme) -> frozenset:
    """The (conv, input channel) pairs whose weights a row's `scheme` string trains
    ('conv:kept/in' for a whole conv, 'conv:kept/in@hexmask' for a partial one)."""
    items = set()
    for part in str(scheme if isinstance(scheme, str) else "").split(";"):
        if ":" not in part or "=" in part:      # '<kind>=<blocks>': side branches, no conv weights
            continue
        conv, frac = part.split(":")
        n = int(frac.split("@")[0].split("/")[1])
        mask = int(frac.split("@")[1], 16) if "@" in frac else (1 << n) - 1
        items.update((int(conv), c) for c in range(n) if mask >> c & 1)
    return frozenset(items)


def scheme_diversity(rows: pd.DataFrame, method: str = "TinyTrain") -> pd.DataFrame:
    """`budgets.diversity_by_domain` of `method`'s (layer, channel) sets, per checkpoint: per
    domain, `(all)` tasks and `(between)` (pairs of tasks from different domains), so that a
    domain-specific selection shows as a higher overlap within domains than between them."""
    out = []
    for ck, g in rows[rows.method == method].groupby("checkpoint"):
        sets = {(d, e): scheme_items(s) for d, e, s in zip(g.domain, g.episode, g.scheme)}
        out.append(budgets.diversity_by_domain(sets).assign(checkpoint=ck))
    cols = ["checkpoint", "domain", "tasks", "distinct", "mean_jaccard", "distinct_layouts", "mean_layer_jaccard"]
    return pd.concat(out, ignore_index=True).reindex(columns=cols) if out else pd.DataFrame(columns=cols)


def layer_choices(rows: pd.DataFrame, method: str = "TinyTrain") -> pd.DataFrame:
    """(domain, conv, mean kept-channel fraction over tasks, fraction of tasks that trained it)."""
    recs = []
    for (domain, ep), g in rows[rows.method == method].groupby(["domain", "episode"]):
        for item in str(g.scheme.iloc[0]).split(";"):
            if ":" in item:
                conv, frac = item.split(":")
                k, n = frac.split("@")[0].split("/")
                recs.append(dict(domain=domain, episode=ep, conv=int(conv), fraction=int(k) / int(n)))
    df = pd.DataFrame(recs, columns=["domain", "episode", "conv", "fraction"])
    n_tasks = rows[rows.method == method].groupby("domain").episode.nunique()
    agg = df.groupby(["domain", "conv"]).agg(fraction=("fraction", "mean"),
                                             tasks=("episode", "count")).reset_index()
    agg["picked"] = agg.tasks / agg.domain.map(n_tasks)
    return agg


def power_plan(rows: pd.DataFrame, targets: dict, comparisons=COMPARISONS) -> pd.DataFrame:
    """Per comparison of `targets` ({label: CI half-width wanted, in points}): the tasks and
    domains it has, its within-domain per-task sd (root mean square over domains of the paired
    differences' sd), the CI it achieved and the one `stats.stratified_ci_for` predicts for that
    many tasks (a check of the formula on real rows), and the tasks (and tasks per domain) the
    target needs: what a run must spend where the claims are."""
    d = _differences(rows, [c for c in comparisons if c[0] in targets])
    out = []
    for label, g in d.groupby("comparison", sort=False):
        per = g.groupby("domain")["diff"].agg(["count", "std"])
        sd = float(np.sqrt((per["std"] ** 2).mean()))
        n, k = int(per["count"].sum()), len(per)
        got = stratified_mean_ci(g, value="diff", group="comparison")
        need = tasks_for_ci(sd, targets[label], k)
        out.append(dict(comparison=label, tasks=n, domains=k, sd_within=sd,
                        ci95=float(got[got.domain == "average"].ci95.iloc[0]),
                        ci95_predicted=stratified_ci_for(sd, n, k), target=targets[label],
                        tasks_needed=need, per_domain_needed=need // k))
    return pd.DataFrame(out)


def planned_tasks(cfg, targets: dict = POWER_TARGETS) -> dict:
    """{label: (tasks, domains)} a run of `cfg` (an AdaptConfig: `arms`, `episodes_of`, `domains`)
    will pair for each comparison of `targets` whose arms it runs: the fewer episodes of the two."""
    arms = set(cfg.arms())
    return {label: (len(cfg.domains) * min(cfg.episodes_of(a[0]), cfg.episodes_of(b[0])), len(cfg.domains))
            for label, a, b in COMPARISONS if label in targets and {a, b} <= arms}


def predicted_power(reference_rows: pd.DataFrame, planned: dict, targets: dict = POWER_TARGETS) -> pd.DataFrame:
    """Before a run: per planned comparison (`planned_tasks`), the per-task sd an earlier run's
    rows measured (`power_plan`'s sd_within) and the CI `stats.stratified_ci_for` predicts for the
    planned tasks, beside the target. Comparisons the reference did not run are left out."""
    ref = power_plan(reference_rows, {k: v for k, v in targets.items() if k in planned})
    if not len(ref):
        return pd.DataFrame(columns=["comparison", "sd_reference", "tasks_planned", "ci95_predicted", "target"])
    return pd.DataFrame([dict(comparison=r.comparison, sd_reference=r.sd_within, tasks_planned=planned[r.comparison][0],
                              ci95_predicted=stratified_ci_for(r.sd_within, *planned[r.comparison]), target=r.target)
                         for r in ref.itertuples()])

