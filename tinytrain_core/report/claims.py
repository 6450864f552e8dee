"""The claims table: one row per (claim, part, model), each a paired difference with its 95% t
CI, the paper's number beside it, and a verdict.

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

import pandas as pd

from ..experiment import analysis
from ..nets.models import MODEL_NAMES
from ..stats import pm as _pm
from .inputs import AVG, NAN, RUN_HINT, Inputs, _get
from .tables import ablation_channels, table2

COST_FACTOR = 2.0
VERDICT_RULE = ("a part holds when the 95% t CI of its paired difference (over the same tasks) excludes 0 on the "
                "claimed side, does not hold when it excludes 0 on the other, and is inconclusive otherwise; cost "
                f"parts are exact counts and hold when FullTrain needs >= {COST_FACTOR:g}x TinyTrain's")
CLAIMS = {"a": "TinyTrain is at least as accurate as FullTrain at far less backward memory and compute",
          "b": "TinyTrain beats SparseUpdate at equal memory",
          "c": "Fisher picks channels better than L2 norm, and L2 norm better than random",
          "d": "Meta-training helps every method",
          "e": "Dynamic (per-task) selection beats a static one"}
ARMS = {label: (a, b) for label, a, b in analysis.COMPARISONS}



def verdict(mean: float, ci95: float) -> str:
    """The verdict rule of the module docstring for a difference claimed > 0."""
    if mean is None or pd.isna(mean):
        return "not run"
    if pd.isna(ci95):
        return "inconclusive"
    return "holds" if mean - ci95 > 0 else "does not hold" if mean + ci95 < 0 else "inconclusive"


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
    return f"{_pm(r['mean'], r['ci95'])} points over {int(r['n'])} tasks in {int(r['n_strata'])} domains"


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


def claims_markdown(c: pd.DataFrame) -> str:
    """The claims table as markdown; parts not run are listed below it, one line per model."""
    ran = c[c.verdict != "not run"]
    lines = ["| claim | part | model | evidence | ours | paper | verdict |", "|---|---|---|---|---|---|---|"]
    for r in ran.itertuples():
        cost = r.source == "table2_costs.csv"
        ours = _x(r.mean) if cost else f"{_pm(r.mean, r.ci95)} (n={int(r.n)})"
        theirs = "" if math.isnan(r.paper) else _x(r.paper) if cost else f"{r.paper:+.1f}"
        lines.append(f"| {r.claim[:3]} | {r.part} | {r.model} | {r.evidence} | {ours} | {theirs} | {r.verdict} |")
    for model, g in c[c.verdict == "not run"].groupby("model", sort=False):
        what = [(f"{k[:3]} {p}", s.startswith("adapt/")) for k, p, s in zip(g.claim, g.part, g.source)]
        if sum(a for _, a in what) == c[c.model == model].source.str.startswith("adapt/").sum():
            what = [("every accuracy part (notebook 02)", False)] + [(w, a) for w, a in what if not a]
        lines.append(f"\nNot run on {model}: {'; '.join(w for w, _ in what)}.")
    return "\n".join(lines)
