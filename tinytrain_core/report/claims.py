"""The claims table: one row per (claim, part, model), each a paired difference with its 95% t
CI, the paper's number beside it, a verdict, its power, and the untrained arms it rests on.

**Verdict rule** (:func:`verdict`, VERDICT_RULE). A claim part is a paired difference
d = claimed − other over the same tasks with its 95% Student t CI d ± ci95 (stratified over
domains, `stats.py`); p is the paper's own difference for the same comparison (NaN where it has
none). In this order:

* "not run" when its arms did not run;
* "holds" when the CI excludes 0 on the claimed side (d − ci95 > 0);
* "does not hold" when it excludes 0 on the other side (d + ci95 < 0) — whatever p is: an
  effect of the wrong sign is more than a smaller one;
* "smaller than the paper's" when the CI contains 0 but lies entirely below a paper effect on
  the claimed side (p > 0 and d + ci95 < p): our tasks rule out the paper's effect without
  ruling out none;
* "cannot tell" otherwise: the CI contains 0 and p (or there is no p > 0, or no CI).

The first two are `stats.verdict`'s "better" / "worse" (whether a CI excludes 0, the one rule the
sentences of `findings` use too). A "holds" whose CI also lies below p stays "holds" (the
direction is what is claimed; `paper` stands beside it). A "≥" claim gets the same words: a CI
that contains 0 never "holds". Cost parts are exact analytic counts (no CI): FullTrain's cost
over TinyTrain's "holds" when it is at least COST_FACTOR ("far less"), else "does not hold".

**Power** (`mde80`, `stats.mde80`): the minimum detectable effect at 80% power,
(t95(df) + t80(df)) · se with se = ci95 / t95(df) and the row's df (Welch-Satterthwaite over
domains; n − 1 where a table has none): the smallest true difference that would make the part
"hold" four times in five on these tasks. A "cannot tell" with MDE80 above p says the run was
too small to confirm the paper's effect; one with MDE80 below p says the effect is likely absent
or smaller, short of excluding it.

**Meta-training seeds** (claim (d)): where notebook 03 measured the SD of a method's
meta − imagenet difference across meta-training seeds (`experiment/meta_seeds.py`), the part's
CI is t95(df) · sqrt(se² + sd_seed²) (`stats.ci_with_extra_sd`): one meta-training run's
difference as a fresh run would draw it; verdict and MDE80 use that CI.

**Untrained arms** (`untrained_arms`, `analysis.untrained_notes`): an arm of a method that trains
whose validation-chosen LR is 0 in a domain never trained there (it *is* its checkpoint); each
part names its arms that did, e.g. "FullTrain (meta) lr 0 in 9/9 domains". The verdict is not
changed, but a part resting on such an arm tests the checkpoint, not the method.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from ..experiment import analysis, meta_seeds
from ..nets.models import MODEL_NAMES
from ..stats import ci_with_extra_sd, mde80
from ..stats import pm as _pm
from ..stats import verdict as _side
from .inputs import AVG, NAN, RUN_HINT, Inputs, _get
from .tables import ablation_channels, table2

COST_FACTOR = 2.0
HOLDS, DOES_NOT_HOLD, SMALLER, CANNOT_TELL, NOT_RUN = ("holds", "does not hold", "smaller than the paper's",
                                                      "cannot tell", "not run")
VERDICTS = (HOLDS, DOES_NOT_HOLD, SMALLER, CANNOT_TELL, NOT_RUN)
VERDICT_RULE = ("a part holds when the 95% t CI of its paired difference (over the same tasks) excludes 0 on the "
                "claimed side and does not hold when it excludes 0 on the other; a CI that contains 0 is smaller "
                "than the paper's when it lies below the paper's (positive) effect, and cannot tell otherwise; "
                "MDE80 = (t95 + t80) x se is each part's power, the smallest true difference its tasks would show "
                "to hold 4 times in 5; an arm whose chosen LR is 0 in a domain never trained there and is flagged "
                "untrained; cost parts are exact counts and hold when FullTrain needs "
                f">= {COST_FACTOR:g}x TinyTrain's")
CLAIMS = {"a": "TinyTrain is at least as accurate as FullTrain at far less backward memory and compute",
          "b": "TinyTrain beats SparseUpdate at equal memory",
          "c": "Fisher picks channels better than L2 norm, and L2 norm better than random",
          "d": "Meta-training helps every method",
          "e": "Dynamic (per-task) selection beats a static one"}
ARMS = {label: (a, b) for label, a, b in analysis.COMPARISONS}


def excludes_paper(mean: float, ci95: float, paper: float) -> bool:
    """Whether the CI lies entirely below a paper effect on the claimed side: p > 0 and
    mean + ci95 < p (a CI touching p does not exclude it)."""
    return not pd.isna(paper) and paper > 0 and mean + ci95 < paper


def verdict(mean: float, ci95: float, paper: float = NAN) -> str:
    """The verdict rule of the module docstring for a difference claimed > 0 (paper effect `paper`)."""
    if mean is None or pd.isna(mean):
        return NOT_RUN
    side = _side(mean, ci95)                 # does the CI exclude 0 (NaN CI: it does not)?
    if side != "no clear difference":
        return HOLDS if side == "better" else DOES_NOT_HOLD
    return SMALLER if not pd.isna(ci95) and excludes_paper(mean, ci95, paper) else CANNOT_TELL


def power(ci95: float, n: float, df: float = NAN) -> float:
    """The part's MDE80 (`stats.mde80`) on the row's df, or n − 1 where the table has none."""
    return float(mde80(ci95, df if not pd.isna(df) else n - 1))


def _claim(key, part, model, evidence, source, mean=NAN, ci95=NAN, n=NAN, paper=NAN, numbers="", v=None,
           df=NAN, untrained=""):
    """One row of the claims table (:func:`claims`): its verdict (given `v`, or the rule's), its power
    (`mde80`, none for exact cost counts) and the untrained arms it rests on."""
    v = v or verdict(mean, ci95, paper)
    mde = power(ci95, n, df) if source != "table2_costs.csv" else NAN
    if v == NOT_RUN:
        numbers = f"not run: {RUN_HINT[source.split('/')[0]]}"
    elif source != "table2_costs.csv":
        numbers += (f"; paper {paper:+.1f}" if not math.isnan(paper) else "") + (
            f"; MDE80 {mde:.1f}" if not math.isnan(mde) else "") + (f"; untrained: {untrained}" if untrained else "")
    return dict(claim=f"({key}) {CLAIMS[key]}", part=part, model=model, evidence=evidence, source=source,
                mean=mean, ci95=ci95, n=n, df=df, paper=paper, verdict=v, mde80=mde, untrained_arms=untrained,
                numbers=numbers)


def _untrained(notes: dict, arms) -> str:
    """'FullTrain (meta) lr 0 in 9/9 domains' for each of `arms` ((name, checkpoint) pairs) that
    `notes` (`analysis.untrained_notes`) flags, '; '-joined ('' when none)."""
    return "; ".join(f"{a} ({c}) {notes[a, c]}" for a, c in arms if (a, c) in notes)


def _x(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def _diff_text(r) -> str:
    return f"{_pm(r['mean'], r['ci95'])} points over {int(r['n'])} tasks in {int(r['n_strata'])} domains"


def _adapt_part(inp, key, part, model, label, paper_value, kib=False, seed_sd=(NAN, 0)) -> dict:
    """One part from 02's paired table; `seed_sd` = (SD across meta-training seeds, seeds): when
    measured, folded into the CI (`stats.ci_with_extra_sd`; claim (d))."""
    a = inp.adapt.get(model)
    p = a["paired"] if a else None
    if math.isnan(_get(p, "mean", comparison=label, domain=AVG)):
        return _claim(key, part, model, label, f"adapt/{model}", paper=paper_value)
    r = p[(p.comparison == label) & (p.domain == AVG)].iloc[0]
    s = a["summary"]
    arms = " vs ".join(f"{m} ({c}) {_get(s, 'accuracy', method=m, checkpoint=c, domain=AVG):.1f}"
                       + (f" at {_get(s, 'backward_kib', method=m, checkpoint=c, domain=AVG):.0f} KiB" if kib else "")
                       for m, c in ARMS[label])
    df = r.get("df", NAN)
    ci, text = r.ci95, f"{arms}: {_diff_text(r)}"
    if not math.isnan(seed_sd[0]):
        ci = ci_with_extra_sd(r.ci95, df if not pd.isna(df) else r.n - 1, seed_sd[0])
        text += (f"; with the meta-training seed SD {seed_sd[0]:.2f} ({seed_sd[1]} seeds, notebook 03) "
                 f"folded in: ± {ci:.1f}")
    return _claim(key, part, model, label, f"adapt/{model}", r["mean"], ci, int(r.n), paper_value,
                  text, df=df,
                  untrained=_untrained(analysis.untrained_notes(a["rows"]), ARMS[label]))


_ABLATION_ARMS = ((re.compile(r"^(fisher|l2|random) − (fisher|l2|random) (@ [\d.]+ KiB)$"), r"\1 \3", r"\2 \3"),
                  (re.compile(r"^TinyTrain − SparseUpdate (@ [\d.]+ KiB)$"), r"fisher \1", r"SparseUpdate \1"),
                  (re.compile(r"^TinyTrain − static$"), "TinyTrain (02)", "static"))


def ablation_arms(comparison: str) -> tuple[str, ...]:
    """The two arm labels of one of notebook 03's comparisons that the claims use
    (`ablations.comparisons`: TinyTrain at a budget is its fisher arm, against static it is
    02's rows); () for another comparison."""
    for pattern, a, b in _ABLATION_ARMS:
        if pattern.match(comparison):
            return pattern.sub(a, comparison), pattern.sub(b, comparison)
    return ()


def _ablation_notes(inp, model) -> dict:
    """`analysis.untrained_notes` of notebook 03's arms on `model` (from its summary's `lr`)."""
    s = inp.ablations["summary"]
    s = s[s.model == model] if s is not None and {"model", "lr", "arm"} <= set(s.columns) else None
    return analysis.untrained_notes(s, ("arm", "checkpoint")) if s is not None and len(s) else {}


def _ablation_parts(inp, key, model, pick, part, absent, paper_of=lambda r: NAN) -> list[dict]:
    p = inp.ablations["paired"]
    rows = p[(p.model == model) & (p.domain == AVG) & p.comparison.map(pick)] if p is not None else ()
    if not len(rows):
        return [_claim(key, part(None), model, absent, "ablations")]
    notes = _ablation_notes(inp, model)
    return [_claim(key, part(r), model, f"{r.comparison} ({r.checkpoint})", "ablations/paired.csv", r["mean"],
                   r.ci95, int(r.n), paper_of(r), _diff_text(r), df=r.get("df", NAN),
                   untrained=_untrained(notes, [(a, r.checkpoint) for a in ablation_arms(r.comparison)]))
            for _, r in rows.iterrows()]


def _cost_parts(inp, model) -> list[dict]:
    t = table2(inp)
    out = []
    for part, col, pcol, unit, punit in (("backward memory", "memory_KiB_int8_b1", "paper_memory_MB", "KiB", "MB"),
                                         ("backward MACs", "backward_MMACs", "paper_backward_MMACs", "M", "M")):
        f, tt = (_get(t, col, model=model, method=m) for m in ("FullTrain", "TinyTrain"))
        pf, pt = (_get(t, pcol, model=model, method=m) for m in ("FullTrain", "TinyTrain"))
        ratio, pratio = (f / tt if tt > 0 else NAN), (pf / pt if pt > 0 else NAN)
        ev = f"FullTrain / TinyTrain {part} (table2_costs.csv, variant paper{', int8 batch 1' if unit == 'KiB' else ''})"
        v = NOT_RUN if math.isnan(ratio) else HOLDS if ratio >= COST_FACTOR else DOES_NOT_HOLD
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
                                   pm(model, m, w) - pm(model, m, wo),
                                   seed_sd=meta_seeds.seed_sd(inp.ablations.get("meta_seeds"), model, m)))
        out += _ablation_parts(inp, "e", model, lambda c: c == "TinyTrain − static",
                               lambda r: "dynamic > static" + (f" ({r.checkpoint})" if r is not None else ""),
                               "TinyTrain − static")
    return pd.DataFrame(out)


def verdict_text(r) -> str:
    """A row's verdict as the markdown prints it: with its power (MDE80) where it has a CI, and
    the untrained arms it rests on, e.g. "cannot tell (MDE80 2.3; untrained: FullTrain (meta)
    lr 0 in 9/9 domains)"."""
    mde, flag = getattr(r, "mde80", NAN), getattr(r, "untrained_arms", "")
    notes = ([f"MDE80 {mde:.1f}"] if not pd.isna(mde) else []) + ([f"untrained: {flag}"] if isinstance(flag, str)
                                                                   and flag else [])
    return r.verdict + (f" ({'; '.join(notes)})" if notes else "")


def claims_markdown(c: pd.DataFrame) -> str:
    """The claims table as markdown; parts not run are listed below it, one line per model."""
    ran = c[c.verdict != NOT_RUN]
    lines = ["| claim | part | model | evidence | ours | paper | verdict |", "|---|---|---|---|---|---|---|"]
    for r in ran.itertuples():
        cost = r.source == "table2_costs.csv"
        ours = _x(r.mean) if cost else f"{_pm(r.mean, r.ci95)} (n={int(r.n)})"
        theirs = "" if math.isnan(r.paper) else _x(r.paper) if cost else f"{r.paper:+.1f}"
        lines.append(f"| {r.claim[:3]} | {r.part} | {r.model} | {r.evidence} | {ours} | {theirs} | {verdict_text(r)} |")
    for model, g in c[c.verdict == NOT_RUN].groupby("model", sort=False):
        what = [(f"{k[:3]} {p}", s.startswith("adapt/")) for k, p, s in zip(g.claim, g.part, g.source)]
        if sum(a for _, a in what) == c[c.model == model].source.str.startswith("adapt/").sum():
            what = [("every accuracy part (notebook 02)", False)] + [(w, a) for w, a in what if not a]
        lines.append(f"\nNot run on {model}: {'; '.join(w for w, _ in what)}.")
    return "\n".join(lines)
