"""What the per-task adaptation rows say: per-domain summaries with CIs, and TinyTrain's layers.

Every statistic is over tasks (episodes), mean with the normal-approximation 95% CI
(`stats.py`); differences between methods are paired over the episodes both ran.
"""
from __future__ import annotations

import pandas as pd

from .stats import mean_ci95, paired_diff_ci95


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
                k, n = frac.split("@")[0].split("/")
                recs.append(dict(domain=domain, episode=ep, conv=int(conv), fraction=int(k) / int(n)))
    df = pd.DataFrame(recs, columns=["domain", "episode", "conv", "fraction"])
    n_tasks = rows[rows.method == method].groupby("domain").episode.nunique()
    agg = df.groupby(["domain", "conv"]).agg(fraction=("fraction", "mean"),
                                             tasks=("episode", "count")).reset_index()
    agg["picked"] = agg.tasks / agg.domain.map(n_tasks)
    return agg
