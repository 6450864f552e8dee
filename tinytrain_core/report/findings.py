"""What a profile's committed tables say, in sentences computed from the tables themselves.

Each notebook ends with "What the default run shows": it reads `results/default/` through these
functions, so its text can never drift from the numbers (a rerun that changes them changes the
sentences). Every function takes the table(s) as DataFrames and returns lines of text; a
difference counts as a finding only when its 95% CI excludes 0, otherwise it is "no clear
difference".
"""
from __future__ import annotations


import pandas as pd

from ..paths import figures_dir, results_dir
from ..results import read_table
from ..experiment import analysis
from ..stats import pm, verdict



def table(name: str, profile: str = "default") -> pd.DataFrame | None:
    """A committed table of `profile` (path relative to results/<profile>/), or None if absent."""
    path = results_dir(profile) / name
    return read_table(path) if path.is_file() else None


def figure(name: str, profile: str = "default"):
    """The path of a committed figure of `profile`, or None if absent."""
    path = figures_dir(profile) / name
    return path if path.is_file() else None


def frozen(domains: pd.DataFrame, chance: float = 20.0, ceiling: float = 95.0) -> list[str]:
    """Room to adapt: each target's frozen 5-way 5-shot accuracy against chance and ceiling."""
    t = domains[domains.role == "target"].sort_values("frozen_5w5s_acc")
    inside = t[(t.frozen_5w5s_acc - t.ci95 > chance) & (t.frozen_5w5s_acc < ceiling)]
    low, high = t.iloc[0], t.iloc[-1]
    base = domains[domains.role == "base"]
    lines = [f"{len(inside)} of {len(t)} targets lie clearly above chance ({chance:.0f}%) and below the "
             f"ceiling ({ceiling:.0f}%): room for adaptation to show.",
             f"Hardest target for frozen ImageNet features: {low.domain} ({low.frozen_5w5s_acc:.1f} ± "
             f"{low.ci95:.1f}); easiest: {high.domain} ({high.frozen_5w5s_acc:.1f} ± {high.ci95:.1f})."]
    if len(base):
        b = base.iloc[0]
        lines.append(f"Base domain {b.domain}: {b.frozen_5w5s_acc:.1f} ± {b.ci95:.1f} before meta-training.")
    return lines


def meta_training(paired: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(domain x model table of `meta - imagenet` with CIs, sentences on where it helps/hurts)."""
    p = paired.assign(cell=[f"{pm(d, c)}" + ("" if v != "no clear change" else " (n.s.)")
                            for d, c, v in zip(paired.delta, paired.ci95, paired.verdict)])
    p["row"] = p.domain + " " + p.split
    wide = p.pivot_table(index="row", columns="model", values="cell", aggfunc="first", sort=False)
    lines = []
    for kind in ("helps", "hurts"):
        hit = p[p.verdict == kind]
        for domain, g in hit.groupby("row", sort=False):
            lines.append(f"meta-training {kind} on {domain} for {len(g)} of {p.model.nunique()} "
                         f"backbones ({', '.join(f'{m} {pm(d, c)}' for m, d, c in zip(g.model, g.delta, g.ci95))}).")
    n_ns = (p.verdict == "no clear change").sum()
    lines.append(f"{n_ns} of {len(p)} (domain, backbone) pairs show no clear change (CI includes 0).")
    return wide, lines


def _untrained_flag(notes: dict, label: str) -> str:
    """'; untrained: FullTrain (meta)' when an arm of comparison `label` ran with LR 0
    (`notes`: `analysis.untrained_notes`), else ''."""
    arms = next(((a, b) for lab, a, b in analysis.COMPARISONS if lab == label), ())
    names = [f"{m} ({c})" for m, c in arms if (m, c) in notes]
    return f"; untrained: {', '.join(names)}" if names else ""


def adaptation(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Sentences on the test rows of notebook 02: each arm's stratified average, the paired
    comparisons (`analysis.COMPARISONS`) with their verdicts, the headline with each domain left
    out, how much TinyTrain's selection varied, and the learning rates chosen. An arm whose LR
    was 0 (it never trained, `analysis.untrained_notes`) is flagged "untrained" wherever it
    appears. Returns (the paired table, sentences)."""
    notes = analysis.untrained_notes(rows) if "lr" in rows else {}
    flag = lambda label: _untrained_flag(notes, label)  # noqa: E731
    acc = analysis.summarize(rows)
    avg = acc[acc.domain == "average"]
    pairs = analysis.paired(rows)
    pav = pairs[pairs.domain == "average"]
    n_eps = rows.groupby(["method", "checkpoint", "domain"]).episode.nunique()
    tasks = f"{n_eps.min()}" if n_eps.min() == n_eps.max() else f"{n_eps.min()}-{n_eps.max()}"
    lines = [f"Stratified average over {rows.domain.nunique()} domains ({tasks} test tasks per domain and "
             "arm; every arm runs the first tasks of the same sequence, n tasks in all), 95% t CI: "
             + "; ".join(f"{m} ({c}) {r:.1f} ± {ci:.1f} (n={n})" + (f" [untrained: {notes[m, c]}]" if (m, c) in notes else "")
                         for m, c, r, ci, n in zip(avg.method, avg.checkpoint, avg.accuracy, avg.ci95, avg.tasks))]
    for _, r in pav[pav.comparison.isin([c[0] for c in analysis.COMPARISONS[:3]])].iterrows():
        lines.append(f"{r.comparison}: {pm(r['mean'], r['ci95'])} points ({verdict(r['mean'], r['ci95'])}"
                     f"{flag(r.comparison)}).")
    groups = [(f"TinyTrain − each method, both from {c}", lambda x, c=c: x.startswith("TinyTrain − ")
               and x.endswith(f" ({c})") and "None" not in x, lambda x: x.split(" − ")[1].split(" (")[0])
              for c in ("meta", "imagenet")]
    groups += [("The paper's configuration, TinyTrain (meta) − each method (imagenet)",
                lambda x: x.startswith("TinyTrain (meta) − ") and "FullTrain" not in x,
                lambda x: x.split(" − ")[1].split(" (")[0])]
    groups += [(f"Each method − None ({c})", lambda x, c=c: x.endswith(f" − None ({c})"), lambda x: x.split(" − ")[0])
               for c in ("imagenet", "meta")]
    groups += [("Meta-training (meta − imagenet)", lambda x: x.endswith(": meta − imagenet"), lambda x: x.split(":")[0])]
    for title, pick, name in groups:
        g = pav[pav.comparison.map(pick)]
        if len(g):
            lines.append(f"{title}: " + "; ".join(f"{name(c)} {pm(m, ci)} ({verdict(m, ci)}{flag(c)})"
                                                  for c, m, ci in zip(g.comparison, g["mean"], g.ci95)) + ".")
    loo = analysis.leave_one_out(rows)
    for comp in (analysis.HEADLINE, analysis.COMPARISONS[2][0]):
        g = loo[loo.comparison == comp] if len(loo) else loo
        if len(g):
            lo, hi = g.loc[g["mean"].idxmin()], g.loc[g["mean"].idxmax()]
            lines.append(f"Leaving one domain out, {comp.split(':')[0]} ranges from {pm(lo['mean'], lo.ci95)} "
                         f"(without {lo.left_out}) to {pm(hi['mean'], hi.ci95)} (without {hi.left_out}).")
    per = pairs[(pairs.comparison == analysis.HEADLINE) & (pairs.domain != "average")]
    if len(per):
        wins = [d for d, m, c in zip(per.domain, per["mean"], per.ci95) if m - c > 0]
        losses = [d for d, m, c in zip(per.domain, per["mean"], per.ci95) if m + c < 0]
        lines.append(f"{analysis.HEADLINE} per domain: better on {', '.join(wins) or 'none'}; worse on "
                     f"{', '.join(losses) or 'none'}; no clear difference on the other {len(per) - len(wins) - len(losses)}.")
    if "scheme" in rows:
        div = analysis.scheme_diversity(rows).set_index(["checkpoint", "domain"])
        for ck in div.index.get_level_values(0).unique():
            d = div.loc[ck]
            within = d.drop(["(all)", "(between)"]).mean_jaccard.mean()
            lines.append(f"TinyTrain ({ck}) selected {d.loc['(all)', 'distinct']} distinct (layer, channel) sets "
                         f"({d.loc['(all)', 'distinct_layouts']} distinct layer/channel-count layouts) in "
                         f"{d.loc['(all)', 'tasks']} tasks; mean Jaccard {within:.2f} between tasks of one domain, "
                         f"{d.loc['(between)', 'mean_jaccard']:.2f} between domains.")
    if "lr" in rows:
        used = rows[rows.method != "None"].groupby(["method", "checkpoint"]).lr.agg(lambda x: sorted(set(x)))
        lines.append("Learning rates chosen on validation episodes: " + "; ".join(
            f"{m} ({c}) {', '.join(f'{v:g}' for v in lrs)}" for (m, c), lrs in used.items()) + ".")
    return pairs, lines


def _overlap_words(jaccard: float) -> str:
    """The weight-trained convs of the found scheme against the released one's, in words: a
    Jaccard of 0 says they share none (the found scheme may train no weights at all)."""
    if jaccard == 1:
        return "it trains the weights of the same convs as the released scheme"
    if jaccard == 0:
        return "it shares no weight-trained conv with the released scheme"
    return "it shares some of the released scheme's weight-trained convs"


def sparse_search(t: pd.DataFrame) -> list[str]:
    """How close SparseUpdate's reconstructed search lands to each released scheme."""
    return [f"At the released {r.label} budget ({r.budget_kib:.1f} KiB) the search spends "
            f"{r.memory_found_kib:.1f} KiB: {_overlap_words(r.conv_jaccard)} (Jaccard {r.conv_jaccard:.2f}; "
            f"(conv, channel) Jaccard {r.item_jaccard:.2f}), and it trains the biases of the last {r.n_bias_found} convs "
            f"(released: {r.n_bias_released}); predicted gain {r.gain_found:+.1f} vs the released scheme's "
            f"{r.gain_released:+.1f} points." for r in t.itertuples()]


def costs(table2: pd.DataFrame, model: str = "mcunet-5fps") -> list[str]:
    """Backward compute and memory of each method relative to FullTrain (paper variant)."""
    t = table2[(table2.variant == "paper") & (table2.model == model)].set_index("method")
    full = t.loc["FullTrain"]
    lines = []
    for m, r in t.iterrows():
        if m in ("FullTrain", "NoUpdate") or not full.backward_MMACs:
            continue
        lines.append(f"{model} {m}: {r.backward_MMACs:.2f} M backward MACs ({r.backward_MMACs / full.backward_MMACs:.3f}x "
                     f"FullTrain), {r.memory_KiB_int8_b1:.0f} KiB int8 batch-1 memory "
                     f"({r.memory_KiB_int8_b1 / full.memory_KiB_int8_b1:.3f}x).")
    return lines


# ---------------------------------------------------------------- the README's results section

START, END = "<!-- results:start -->", "<!-- results:end -->"
