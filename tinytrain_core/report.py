"""Notebook 05's report: the paper's tables with ours beside them, and a verdict per claim.

Everything is read from what notebooks 02-04 (and 03's ablations) wrote under results/<profile>/
and from the paper's numbers in ../shared/paper/ (`paths.shared_dir`). A missing input never
raises: its rows say "not run" and :func:`missing` names the notebook to run.

    adapt/<model>/<domain>.csv   per-task rows (`taskrows`), summarised by `analysis.summarize`
                                 and `analysis.paired` (the functions behind notebook 02's
                                 summary.csv and paired.csv, on the same rows)
    table2_costs.csv             notebook 04 (variant "paper")
    ablations/{summary,paired,meta_training,pareto}.csv   notebook 03

Writes results/<profile>/report/<name>.csv (+ .json sidecar) for each table of :func:`tables`
and figures/<profile>/report_table1_<model>.png, report_pareto_<model>.png.

**Checkpoints.** The paper's Table 1 starts every baseline from ImageNet and TinyTrain from the
meta-trained backbone ("the paper's configuration"); we report that and every method from `meta`.

**Verdict rule** (:func:`verdict`, VERDICT_RULE). A claim part is a paired difference
d = claimed − other over the same tasks with its 95% Student t CI (stratified over domains,
`stats.py`): "holds" when the CI excludes 0 on the claimed side (d − ci95 > 0), "does not hold"
when it excludes 0 on the other side (d + ci95 < 0), "inconclusive" otherwise (also when d has
no CI), "not run" when its arms did not run. A "≥" claim gets the same three words: a CI that
contains 0 is inconclusive, never "holds". Cost parts are exact analytic counts (no CI):
FullTrain's cost over TinyTrain's "holds" when it is at least COST_FACTOR ("far less"), else
"does not hold".
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis, findings, methods, taskrows
from .data.domains import BUILTIN, FIXTURE
from .models import MODEL_NAMES
from .paths import figures_dir, results_dir, shared_dir
from .plots.common import domain_order, method_order, method_palette
from .results import write_table

NAN = math.nan
AVG = "average"
PAPER_FILES = {"table1": "table1_accuracy.csv", "table2": "table2_backward_costs.csv",
               "time": "end_to_end_time_energy.csv", "meta": "ablation_meta_training.csv",
               "channels": "ablation_channel_selection.csv"}
# Our domain -> the column(s) of the paper's Table 1 it stands in for (data.domains.BUILTIN says
# why); fashion (real photos, nearest to ImageNet) has no Meta-Dataset counterpart.
PAPER_DOMAINS = {"signs": ("traffic",), "glyphs": ("omniglot",), "cjk": ("aircraft", "cub"),
                 "emoji": ("flower", "fungi"), "lineart": ("quickdraw",), "cards": ("aircraft",),
                 "fashion": (), "textures": ("dtd",), "clipart": ("coco",),
                 "fixture_a": ("omniglot",), "fixture_b": ("omniglot",), AVG: (AVG,)}
CRITERIA = {"fisher": "fisher", "l2_norm": "l2", "l2": "l2", "random": "random"}  # paper's names -> ours
COST_FACTOR = 2.0
VERDICT_RULE = ("a part holds when the 95% t CI of its paired difference (over the same tasks) excludes 0 on the "
                "claimed side, does not hold when it excludes 0 on the other, and is inconclusive otherwise; cost "
                f"parts are exact counts and hold when FullTrain needs >= {COST_FACTOR:g}x TinyTrain's")
CLAIMS = {"a": "TinyTrain is at least as accurate as FullTrain at far less backward memory and compute",
          "b": "TinyTrain beats SparseUpdate at equal memory",
          "c": "Fisher picks channels better than L2 norm, and L2 norm better than random",
          "d": "Meta-training helps every method",
          "e": "Dynamic (per-task) selection beats a static one"}
RUN_HINT = {"adapt": "run notebook 02 / make reproduce", "ablations": "run notebook 03 / make reproduce",
            "table2_costs.csv": "run notebook 04 / make reproduce"}
ARMS = {label: (a, b) for label, a, b in analysis.COMPARISONS}
ABLATIONS = ("summary", "paired", "meta_training", "pareto")


@dataclass
class Inputs:
    """What the report reads: per model that ran notebook 02 its test rows, `summary` and `paired`;
    table2_costs.csv; notebook 03's ablation tables; the paper's tables (None where absent)."""
    profile: str
    adapt: dict
    costs: pd.DataFrame | None
    ablations: dict
    paper: dict


def _csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, **findings.READ) if path.is_file() else None


def paper(name: str) -> pd.DataFrame | None:
    """The paper's table `name` (a key of PAPER_FILES) from ../shared/paper/, None when absent."""
    try:
        return _csv(shared_dir() / "paper" / PAPER_FILES[name])
    except FileNotFoundError:
        return None


def load(profile: str) -> Inputs:
    """Read every input of `profile` (module docstring)."""
    res = results_dir(profile)
    adapt = {}
    for m in MODEL_NAMES:
        folder = res / "adapt" / m     # not taskrows.load_rows: it would create the folder
        rows = taskrows.rows_in(taskrows.row_files(folder)) if folder.is_dir() else None
        if rows is not None and len(rows):
            adapt[m] = dict(rows=rows, summary=analysis.summarize(rows), paired=analysis.paired(rows))
    return Inputs(profile, adapt, _csv(res / "table2_costs.csv"),
                  {k: _csv(res / "ablations" / f"{k}.csv") for k in ABLATIONS}, {k: paper(k) for k in PAPER_FILES})


def missing(inp: Inputs) -> list[str]:
    """One line per missing input, naming what to run."""
    out = [f"{m}: adaptation not run ({RUN_HINT['adapt']})" for m in MODEL_NAMES if m not in inp.adapt]
    if inp.costs is None:
        out.append(f"table2_costs.csv missing: {RUN_HINT['table2_costs.csv']}")
    out += [f"ablations/{k}.csv missing: {RUN_HINT['ablations']}" for k, t in inp.ablations.items() if t is None]
    out += [f"the paper's {f} not found (../shared/paper/): its columns stay empty"
            for k, f in PAPER_FILES.items() if inp.paper[k] is None]
    return out


def verdict(mean: float, ci95: float) -> str:
    """The verdict rule of the module docstring for a difference claimed > 0."""
    if mean is None or pd.isna(mean):
        return "not run"
    if pd.isna(ci95):
        return "inconclusive"
    return "holds" if mean - ci95 > 0 else "does not hold" if mean + ci95 < 0 else "inconclusive"


def _get(df, col, **where) -> float:
    """The first `col` of the rows of `df` matching `where`, NaN if none (or no `df`)."""
    if df is None or not len(df):
        return NAN
    r = df.loc[np.logical_and.reduce([df[k] == v for k, v in where.items()]), col]
    return float(r.iloc[0]) if len(r) else NAN


def _sorted(t: pd.DataFrame) -> pd.DataFrame:
    """Models in MODEL_NAMES order, methods and domains in the figures' orders."""
    orders = {"model": lambda x: [m for m in MODEL_NAMES if m in set(x)] + sorted(set(x) - set(MODEL_NAMES)),
              "method": method_order, "domain": domain_order}
    ranks = {f"_{c}": t[c].astype(str).map({n: i for i, n in enumerate(o(t[c].astype(str)))})
             for c, o in orders.items() if c in t}
    return t.assign(**ranks).sort_values(list(ranks), kind="stable").drop(columns=list(ranks)).reset_index(drop=True)


def stands_in_for(domain: str) -> str:
    """What one of our domains stands in for (data.domains), in words."""
    return "Meta-Dataset average" if domain == AVG else {**BUILTIN, **FIXTURE}.get(domain, ("", "?"))[1]


# ---------------------------------------------------------------- the paper's tables, ours beside

def table1(inp: Inputs) -> pd.DataFrame:
    """Per model, method and domain (+ average): ours in the paper's configuration (`accuracy`,
    `ci95` over `tasks`, from `checkpoint`), ours from `meta` (`accuracy_meta`, `ci95_meta`), and
    the paper's number(s) for the domain(s) ours stands in for (`paper_each`; `paper_accuracy`
    is their mean). A model that did not run gets its paper averages and `status` "not run"."""
    p = inp.paper["table1"]
    out = []
    for model in MODEL_NAMES:
        a = inp.adapt.get(model)
        s = a["summary"] if a else None
        ours = list(s.method.unique()) if a else []
        theirs = list(p[p.model == model].method.unique()) if p is not None else []
        for method in method_order(ours + theirs):
            ck = methods.get(method).default_checkpoint
            for domain in domain_order(s.domain.unique()) if a else [AVG]:
                names = PAPER_DOMAINS.get(domain, ())
                vals = [v for v in (_get(p, "top1_percent", model=model, method=method, domain=d) for d in names)
                        if not math.isnan(v)]
                acc = dict(method=method, checkpoint=ck, domain=domain)
                meta = dict(method=method, checkpoint="meta", domain=domain)
                out.append(dict(model=model, method=method, domain=domain, stands_in_for=stands_in_for(domain),
                                paper_domains=" / ".join(names), checkpoint=ck, tasks=_get(s, "tasks", **acc),
                                accuracy=_get(s, "accuracy", **acc), ci95=_get(s, "ci95", **acc),
                                accuracy_meta=_get(s, "accuracy", **meta), ci95_meta=_get(s, "ci95", **meta),
                                paper_accuracy=float(np.mean(vals)) if vals else NAN,
                                paper_each=" / ".join(f"{v:.1f}" for v in vals),
                                status="not run" if a is None or method not in ours else "ran"))
    return pd.DataFrame(out)


def table2(inp: Inputs) -> pd.DataFrame | None:
    """Backward MACs and memory per model and method (variant "paper" of table2_costs.csv) beside
    the paper's Table 2, and each as a fraction of FullTrain's (`*_vs_fulltrain`): ratios are
    what compare across our int8 rule and the paper's unstated one (notebook 04)."""
    if inp.costs is None:
        return None
    t = inp.costs[inp.costs.variant == "paper"][["model", "method", "backward_MMACs", "memory_KiB_int8_b1",
                                                  "memory_MB_fp32_unfolded_bn"]]
    p = inp.paper["table2"]
    if p is not None:
        p = p.rename(columns={"backward_MMACs": "paper_backward_MMACs", "backward_memory_MB": "paper_memory_MB"})
        t = t.merge(p, on=["model", "method"], how="outer")
    else:
        t = t.assign(paper_backward_MMACs=NAN, paper_memory_MB=NAN)
    full = t[t.method == "FullTrain"].set_index("model")
    for col, new in (("backward_MMACs", "macs_vs_fulltrain"), ("paper_backward_MMACs", "paper_macs_vs_fulltrain"),
                     ("memory_KiB_int8_b1", "memory_int8_vs_fulltrain"),
                     ("memory_MB_fp32_unfolded_bn", "memory_fp32_vs_fulltrain"),
                     ("paper_memory_MB", "paper_memory_vs_fulltrain")):
        t[new] = t[col] / t.model.map(full[col])
    return _sorted(t)


def end_to_end(inp: Inputs) -> pd.DataFrame | None:
    """Measured wall seconds per task on this CPU (selection + training, mean over domains; the
    paper's configuration's checkpoint) per model and method, beside the paper's Pi Zero minutes
    and energy; ratios to FullTrain and TinyTrain of both (`*_time`: reproduce's comparison takes
    them as measurements). `lr_zero_domains`: domains whose chosen LR was 0 (nothing trained)."""
    tp, rows = inp.paper["time"], []
    for model, a in inp.adapt.items():
        s = a["summary"]
        for method in method_order(s.method.unique()):
            arm = dict(method=method, checkpoint=methods.get(method).default_checkpoint)
            if math.isnan(_get(s, "task_s", domain=AVG, **arm)):
                continue
            dom = s[(s.method == method) & (s.checkpoint == arm["checkpoint"]) & (s.domain != AVG)]
            rows.append(dict(model=model, **arm, tasks=_get(s, "tasks", domain=AVG, **arm),
                             **{c: _get(s, c, domain=AVG, **arm) for c in ("select_s", "train_s", "task_s")},
                             lr_zero_domains=int((dom.lr == 0).sum()),
                             paper_train_minutes=_get(tp, "train_minutes", model=model, method=method),
                             paper_energy_kJ=_get(tp, "energy_kJ", model=model, method=method)))
    if not rows:
        return None
    t = pd.DataFrame(rows)
    for ref in ("FullTrain", "TinyTrain"):
        for col, new in (("task_s", f"vs_{ref.lower()}_time"), ("paper_train_minutes", f"paper_vs_{ref.lower()}_time")):
            t[new] = t[col] / t.model.map(t[t.method == ref].set_index("model")[col])
    return t


def ablation_meta_training(inp: Inputs) -> pd.DataFrame | None:
    """Average accuracy without and with meta-training per model and method and the paired
    difference (notebook 03's ablations/meta_training.csv, from 02's rows) beside the paper's
    ablation (`paper_without`, `paper_with`, `paper_diff`)."""
    t = inp.ablations["meta_training"]
    if t is None:
        return None
    t = t.drop(columns=[c for c in ("paper_without", "paper_with") if c in t])
    p = inp.paper["meta"]
    if p is not None:
        p = p.rename(columns={"avg_top1_without_meta_training": "paper_without",
                              "avg_top1_with_meta_training": "paper_with"})
        t = t.merge(p.assign(paper_diff=p.paper_with - p.paper_without), on=["model", "method"], how="left")
    return _sorted(t)


def ablation_channels(inp: Inputs) -> pd.DataFrame | None:
    """Channel selection by criterion and memory budget (ablation "channels", average over
    domains) beside the paper's plot. The paper's budgets (303/320/355 kB) follow a rule it does
    not state and ours are our own, so budgets are matched by rank within a model (1 = smallest)."""
    s = inp.ablations["summary"]
    c = s[(s.ablation == "channels") & (s.domain == AVG)] if s is not None else ()
    if not len(c):
        return None
    c = c[["model", "checkpoint", "criterion", "memory_kib", "tasks", "accuracy", "ci95", "backward_kib"]].copy()
    c["criterion"] = c.criterion.map(lambda x: CRITERIA.get(x, x))
    c["budget_rank"] = c.groupby(["model", "checkpoint"]).memory_kib.rank(method="dense").astype(int)
    p = inp.paper["channels"]
    if p is None:
        return _sorted(c.assign(paper_budget_kB=NAN, paper_accuracy=NAN))
    p = p.assign(criterion=p.criterion.map(CRITERIA),
                 budget_rank=p.groupby("model").backward_memory_kB_approx.rank(method="dense").astype(int))
    return _sorted(c.merge(p.rename(columns={"backward_memory_kB_approx": "paper_budget_kB",
                                             "avg_top1_read_off_plot": "paper_accuracy"}),
                           on=["model", "criterion", "budget_rank"], how="left"))


def ablation_dynamic_static(inp: Inputs) -> pd.DataFrame | None:
    """TinyTrain's per-task selection against one static scheme (ablation "dynamic_static",
    average over domains). The paper's files hold no number for this ablation."""
    s = inp.ablations["summary"]
    d = s[(s.ablation == "dynamic_static") & (s.domain == AVG)] if s is not None else ()
    return _sorted(d[["model", "checkpoint", "arm", "method", "tasks", "accuracy", "ci95", "backward_kib",
                      "backward_mmacs"]]) if len(d) else None


# ---------------------------------------------------------------- the claims

def _claim(key, part, model, evidence, source, mean=NAN, ci95=NAN, n=NAN, paper=NAN, numbers="", v=None):
    v = v or verdict(mean, ci95)
    if v == "not run":
        numbers = f"not run: {RUN_HINT[source.split('/')[0]]}"
    elif source != "table2_costs.csv" and not math.isnan(paper):
        numbers += f"; paper {paper:+.1f}"
    return dict(claim=f"({key}) {CLAIMS[key]}", part=part, model=model, evidence=evidence, source=source,
                mean=mean, ci95=ci95, n=n, paper=paper, verdict=v, numbers=numbers)


def _x(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def _diff_text(r) -> str:
    return f"{findings.pm(r['mean'], r['ci95'])} points over {int(r['n'])} tasks in {int(r['n_strata'])} domains"


def _adapt_part(inp, key, part, model, label, paper_value, kib=False) -> dict:
    a = inp.adapt.get(model)
    p = a["paired"] if a else None
    if math.isnan(_get(p, "mean", comparison=label, domain=AVG)):
        return _claim(key, part, model, label, f"adapt/{model}", paper=paper_value)
    r = p[(p.comparison == label) & (p.domain == AVG)].iloc[0]
    s = a["summary"]
    arms = " vs ".join(f"{m} ({c}) {_get(s, 'accuracy', method=m, checkpoint=c, domain=AVG):.1f}"
                       + (f" at {_get(s, 'backward_kib', method=m, checkpoint=c, domain=AVG):.0f} KiB" if kib else "")
                       for m, c in ARMS[label])
    return _claim(key, part, model, label, f"adapt/{model}", r["mean"], r.ci95, int(r.n), paper_value,
                  f"{arms}: {_diff_text(r)}")


def _ablation_parts(inp, key, model, pick, part, absent, paper_of=lambda r: NAN) -> list[dict]:
    p = inp.ablations["paired"]
    rows = p[(p.model == model) & (p.domain == AVG) & p.comparison.map(pick)] if p is not None else ()
    if not len(rows):
        return [_claim(key, part(None), model, absent, "ablations")]
    return [_claim(key, part(r), model, f"{r.comparison} ({r.checkpoint})", "ablations/paired.csv", r["mean"],
                   r.ci95, int(r.n), paper_of(r), _diff_text(r)) for _, r in rows.iterrows()]


def _cost_parts(inp, model) -> list[dict]:
    t = table2(inp)
    out = []
    for part, col, pcol, unit, punit in (("backward memory", "memory_KiB_int8_b1", "paper_memory_MB", "KiB", "MB"),
                                         ("backward MACs", "backward_MMACs", "paper_backward_MMACs", "M", "M")):
        f, tt = (_get(t, col, model=model, method=m) for m in ("FullTrain", "TinyTrain"))
        pf, pt = (_get(t, pcol, model=model, method=m) for m in ("FullTrain", "TinyTrain"))
        ratio, pratio = (f / tt if tt > 0 else NAN), (pf / pt if pt > 0 else NAN)
        ev = f"FullTrain / TinyTrain {part} (table2_costs.csv, variant paper{', int8 batch 1' if unit == 'KiB' else ''})"
        v = "not run" if math.isnan(ratio) else "holds" if ratio >= COST_FACTOR else "does not hold"
        text = (f"FullTrain {f:.3g} / TinyTrain {tt:.3g} {unit} = {_x(ratio)}; "
                f"paper {pf:.3g} / {pt:.3g} {punit} = {_x(pratio)}")
        out.append(_claim("a", part, model, ev, "table2_costs.csv", ratio, NAN, NAN, pratio, text, v))
    return out


_SELECTION = re.compile(r"^(fisher|l2|random) − (fisher|l2|random) @ ([\d.]+) KiB$")


def _selection_paper(channels, r) -> float:
    """The paper's difference for comparison row `r` ("a − b @ k KiB"), at the budget of k's rank."""
    a, b, k = _SELECTION.match(r.comparison).groups()
    at = dict(model=r.model, checkpoint=r.checkpoint, memory_kib=float(k))
    return _get(channels, "paper_accuracy", criterion=a, **at) - _get(channels, "paper_accuracy", criterion=b, **at)


def claims(inp: Inputs) -> pd.DataFrame:
    """One row per (claim, part, model): `evidence` (the comparison label), `mean`, `ci95`, `n`
    (tasks), the paper's number (`paper`: its difference in points; for cost parts `mean` and
    `paper` are ratios FullTrain / TinyTrain), the `verdict` (module docstring) and a one-line
    `numbers` text. Parts: (a) the paper's
    configuration and both same-checkpoint comparisons, plus memory and MAC ratios; (b) the same
    three against SparseUpdate plus notebook 03's equal-memory comparisons; (c) fisher/l2/random
    per budget; (d) meta − imagenet per method; (e) TinyTrain − static."""
    t1 = lambda model, m: _get(inp.paper["table1"], "top1_percent", model=model, method=m, domain=AVG)  # noqa: E731
    pm = lambda model, m, col: _get(inp.paper["meta"], col, model=model, method=m)  # noqa: E731
    w, wo = "avg_top1_with_meta_training", "avg_top1_without_meta_training"
    out, channels = [], ablation_channels(inp)
    for model in MODEL_NAMES:
        for key, other in (("a", "FullTrain"), ("b", "SparseUpdate")):
            out.append(_adapt_part(inp, key, "accuracy, the paper's configuration", model,
                                   f"TinyTrain (meta) − {other} (imagenet): the paper's configuration",
                                   t1(model, "TinyTrain") - t1(model, other), kib=key == "b"))
            for ck, col in (("meta", w), ("imagenet", wo)):
                out.append(_adapt_part(inp, key, f"accuracy, both from {ck}", model, f"TinyTrain − {other} ({ck})",
                                       pm(model, "TinyTrain", col) - pm(model, other, col), kib=key == "b"))
            if key == "a":
                out += _cost_parts(inp, model)
        out += _ablation_parts(inp, "b", model, lambda c: c.startswith("TinyTrain − SparseUpdate @"),
                               lambda r: "accuracy at equal memory" + (f" ({r.checkpoint})" if r is not None else ""),
                               "TinyTrain − SparseUpdate @ <budget> KiB")
        out += _ablation_parts(inp, "c", model, lambda c: bool(_SELECTION.match(c)),
                               lambda r: "fisher > l2 > random" if r is None else
                               r.comparison.replace(" − ", " > ") + f" ({r.checkpoint})",
                               "fisher − l2 / l2 − random @ <budget> KiB", lambda r: _selection_paper(channels, r))
        a = inp.adapt.get(model)
        labels = [c for c in a["paired"].comparison.unique() if c.endswith(": meta − imagenet")] if a else []
        for label in labels or ["<method>: meta − imagenet"]:
            m = label.split(":")[0]
            out.append(_adapt_part(inp, "d", f"{m}: meta > imagenet" if labels else "every method", model, label,
                                   pm(model, m, w) - pm(model, m, wo)))
        out += _ablation_parts(inp, "e", model, lambda c: c == "TinyTrain − static",
                               lambda r: "dynamic > static" + (f" ({r.checkpoint})" if r is not None else ""),
                               "TinyTrain − static")
    return pd.DataFrame(out)


def tables(inp: Inputs) -> dict:
    """name -> table (None where its inputs are missing), the names of results/<profile>/report/."""
    return {"table1": table1(inp), "table2": table2(inp), "time": end_to_end(inp),
            "ablation_meta_training": ablation_meta_training(inp), "ablation_channels": ablation_channels(inp),
            "ablation_dynamic_static": ablation_dynamic_static(inp), "claims": claims(inp)}


def write(inp: Inputs, tabs: dict) -> list[Path]:
    """Write each table to results/<profile>/report/ with its sidecar; the file of a table that
    is None now is removed, so that an earlier run's table cannot pass for this run's."""
    d, out = results_dir(inp.profile) / "report", []
    for name, t in tabs.items():
        path = d / f"{name}.csv"
        if t is None:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            continue
        out.append(write_table(t, path, profile=inp.profile, models_run=sorted(inp.adapt), missing=missing(inp),
                               verdict_rule=VERDICT_RULE,
                               cost_factor=COST_FACTOR, paper_domains=PAPER_DOMAINS))
    return out


# ---------------------------------------------------------------- figures

def plot_table1(t1: pd.DataFrame, model: str, path=None):
    """Table 1 as two heat maps for `model`: ours (the paper's configuration) and the paper's
    number for the domain(s) each of ours stands in for; rows methods, columns domains."""
    import matplotlib.pyplot as plt
    t = t1[t1.model == model]
    methods, domains = method_order(t.method), domain_order(t.domain)
    grids = [t.set_index(["method", "domain"])[c].unstack().reindex(index=methods, columns=domains)
             for c in ("accuracy", "paper_accuracy")]
    lo, hi = np.nanmin([g.min().min() for g in grids]), np.nanmax([g.max().max() for g in grids])
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.32 * len(methods) + 1.9), sharey=True)
    pdoms = t.drop_duplicates("domain").set_index("domain").paper_domains
    for ax, g, title, ticks in zip(axes, grids, (f"ours: {model}, baselines from imagenet, TinyTrain from meta",
                                                 "paper (Meta-Dataset domain each of ours stands in for)"),
                                   (domains, [f"{d}\n{pdoms.get(d) or '-'}" for d in domains])):
        ax.imshow(g.to_numpy(float), cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
        for (i, j), v in np.ndenumerate(g.to_numpy(float)):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if v < (lo + hi) / 2 else "black")
        ax.set_xticks(range(len(domains)), ticks, fontsize=7, rotation=45, ha="right")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(methods)), methods, fontsize=8)
    fig.suptitle("Top-1 accuracy (%), average over tasks; stratified average last", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_pareto(inp: Inputs, model: str, path=None):
    """Accuracy against backward memory and MACs (log scales) from ablations/pareto.csv (notebook
    03: the fixed methods as points, the budget sweeps as lines), or without it notebook 02's
    methods alone (circles imagenet, squares meta). Zero-cost arms (None) cannot be drawn."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    p, s = inp.ablations["pareto"], inp.adapt[model]["summary"]
    swept = p is not None and (p.model == model).any()
    pts = p[p.model == model] if swept else s[s.domain == AVG].assign(memory_kib_budget=NAN)
    pal = method_palette(pts.method)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, x, label in zip(axes, ("backward_kib", "backward_mmacs"), ("backward memory, KiB", "backward MACs, M")):
        for (m, ck), g in pts[pts[x] > 0].groupby(["method", "checkpoint"], sort=False):
            for line, h in g.groupby(g.memory_kib_budget.notna()):
                h = h.sort_values(x)
                ax.errorbar(h[x], h.accuracy, yerr=h.ci95.fillna(0), color=pal[m], capsize=2, alpha=0.8,
                            fmt="-^" if line else "o" if ck == "imagenet" else "s",
                            label=f"{m} ({ck}{', budget sweep' if line else ''})")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
    axes[0].set_ylabel("accuracy, % (95% CI)")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{model}: accuracy against backward cost" + ("" if swept else " (notebook 03 not run: no sweeps)"),
                 fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def figures(inp: Inputs, t1: pd.DataFrame) -> list[Path]:
    """Draw and save both figures for every model that ran notebook 02; returns the paths."""
    import matplotlib.pyplot as plt
    out, d = [], figures_dir(inp.profile)
    for model in inp.adapt:
        out += [d / f"report_table1_{model}.png", d / f"report_pareto_{model}.png"]
        plt.close(plot_table1(t1, model, out[-2]))
        plt.close(plot_pareto(inp, model, out[-1]))
    return out


def layer_figures(profile: str) -> list[Path]:
    """Notebook 02's layer-choice figures of `profile` (reused, not redrawn)."""
    return sorted(figures_dir(profile).glob("adapt_layers_*.png"))


# ---------------------------------------------------------------- the README's results section

def claims_markdown(c: pd.DataFrame) -> str:
    """The claims table as markdown; parts not run are listed below it, one line per model."""
    ran = c[c.verdict != "not run"]
    lines = ["| claim | part | model | evidence | ours | paper | verdict |", "|---|---|---|---|---|---|---|"]
    for r in ran.itertuples():
        cost = r.source == "table2_costs.csv"
        ours = _x(r.mean) if cost else f"{findings.pm(r.mean, r.ci95)} (n={int(r.n)})"
        theirs = "" if math.isnan(r.paper) else _x(r.paper) if cost else f"{r.paper:+.1f}"
        lines.append(f"| {r.claim[:3]} | {r.part} | {r.model} | {r.evidence} | {ours} | {theirs} | {r.verdict} |")
    for model, g in c[c.verdict == "not run"].groupby("model", sort=False):
        what = [(f"{k[:3]} {p}", s.startswith("adapt/")) for k, p, s in zip(g.claim, g.part, g.source)]
        if sum(a for _, a in what) == c[c.model == model].source.str.startswith("adapt/").sum():
            what = [("every accuracy part (notebook 02)", False)] + [(w, a) for w, a in what if not a]
        lines.append(f"\nNot run on {model}: {'; '.join(w for w, _ in what)}.")
    return "\n".join(lines)


def table1_lines(t1: pd.DataFrame) -> list[str]:
    """Per model, each method's stratified average (paper's configuration) beside the paper's."""
    out = []
    for model, g in t1[t1.domain == AVG].groupby("model", sort=False):
        if (g.status == "not run").all():
            out.append(f"{model}: not run (paper: " + "; ".join(f"{m} {p:.1f}" for m, p in zip(g.method, g.paper_accuracy)) + ")")
            continue
        out.append(f"{model}: " + "; ".join(
            f"{r.method} ({r.checkpoint}) " + ("not run" if math.isnan(r.accuracy) else f"{r.accuracy:.1f} ± {r.ci95:.1f}")
            + ("" if math.isnan(r.paper_accuracy) else f" (paper {r.paper_accuracy:.1f})") for r in g.itertuples()))
    return out


def readme_block(profile: str = "default", model: str = "mcunet-5fps") -> str:
    """The README's results section (between findings.START and END): notebook 05's claims
    table and Table 1 averages (its tables when written, else computed), then the sentences of
    `findings` on `model`'s adaptation, SparseUpdate's search, costs, meta-training and domains."""
    inp, done = load(profile), results_dir(profile) / "report"
    c, t1 = _csv(done / "claims.csv"), _csv(done / "table1.csv")
    c, t1 = (c if c is not None else claims(inp)), (t1 if t1 is not None else table1(inp))
    out = [findings.START, f"_Generated by `python -m tinytrain_core.findings --update-readme` (notebook 05, "
           f"`tinytrain_core/report.py`) from `results/{profile}/`; do not edit by hand._", "",
           f"**Claims** (`results/{profile}/report/claims.csv`): {VERDICT_RULE}.", "",
           claims_markdown(c), "",
           f"**Table 1 averages** (`results/{profile}/report/table1.csv`; baselines from imagenet, TinyTrain from "
           "meta; ours over our stand-in domains, the paper's over Meta-Dataset):", ""]
    out += [f"- {x}" for x in table1_lines(t1)] + [""]
    rows = inp.adapt.get(model, {}).get("rows")
    if rows is not None:
        out += [f"**Adaptation** ({model}, `results/{profile}/adapt/{model}/`, notebook 02):", ""]
        out += [f"- {x}" for x in findings.adaptation(rows)[1]] + [""]
    for title, name, fn in (("SparseUpdate's search, reconstructed", f"adapt/{model}/sparse_search.csv",
                             findings.sparse_search),
                            ("Costs", "table2_costs.csv", lambda t: findings.costs(t, model)),
                            ("Meta-training (frozen features, meta − imagenet)", "meta_training_paired.csv",
                             lambda t: findings.meta_training(t)[1]),
                            ("Domains (frozen mcunet-5fps ImageNet features, 5-way 5-shot)", "domains.csv",
                             findings.frozen)):
        t = findings.table(name, profile)
        if t is not None:
            out += [f"**{title}** (`results/{profile}/{name}`):", ""] + [f"- {x}" for x in fn(t)] + [""]
    return "\n".join(out + [findings.END])
