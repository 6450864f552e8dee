"""What a profile's committed tables say, in sentences computed from the tables themselves.

Each notebook ends with "What the default run shows": it reads `results/default/` through these
functions, so its text can never drift from the numbers (a rerun that changes them changes the
sentences). Every function takes the table(s) as DataFrames and returns lines of text; a
difference counts as a finding only when its 95% CI excludes 0, otherwise it is "no clear
difference".
"""
from __future__ import annotations

import argparse
import re
import sys

import pandas as pd

from .paths import figures_dir, project_root, results_dir
from .taskrows import load_rows
from .plots import paired_differences, stratified_mean_ci

READ = dict(keep_default_na=False, na_values=[""])   # "None" is a method name, not a missing value


def table(name: str, profile: str = "default") -> pd.DataFrame | None:
    """A committed table of `profile` (path relative to results/<profile>/), or None if absent."""
    path = results_dir(profile) / name
    return pd.read_csv(path, **READ) if path.is_file() else None


def figure(name: str, profile: str = "default"):
    """The path of a committed figure of `profile`, or None if absent."""
    path = figures_dir(profile) / name
    return path if path.is_file() else None


def _pm(mean: float, ci: float) -> str:
    return f"{mean:+.1f} ± {ci:.1f}"


def _verdict(mean: float, ci: float) -> str:
    if mean - ci > 0:
        return "better"
    if mean + ci < 0:
        return "worse"
    return "no clear difference"


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
    p = paired.assign(cell=[f"{_pm(d, c)}" + ("" if v != "no clear change" else " (n.s.)")
                            for d, c, v in zip(paired.delta, paired.ci95, paired.verdict)])
    p["row"] = p.domain + " " + p.split
    wide = p.pivot_table(index="row", columns="model", values="cell", aggfunc="first", sort=False)
    lines = []
    for verdict in ("helps", "hurts"):
        hit = p[p.verdict == verdict]
        for domain, g in hit.groupby("row", sort=False):
            lines.append(f"meta-training {verdict} on {domain} for {len(g)} of {p.model.nunique()} "
                         f"backbones ({', '.join(f'{m} {_pm(d, c)}' for m, d, c in zip(g.model, g.delta, g.ci95))}).")
    n_ns = (p.verdict == "no clear change").sum()
    lines.append(f"{n_ns} of {len(p)} (domain, backbone) pairs show no clear change (CI includes 0).")
    return wide, lines


def adaptation(rows: pd.DataFrame, reference: str = "FullTrain", method: str = "TinyTrain") -> tuple[pd.DataFrame, list[str]]:
    """Stratified averages and paired differences to `reference`, per domain and on average,
    with the leave-one-domain-out check of `method - reference` and how much `method`'s scheme
    varied across tasks. Returns (table of paired differences, sentences)."""
    acc = stratified_mean_ci(rows)
    diff = stratified_mean_ci(paired_differences(rows, reference), value="diff")
    avg = acc[acc.domain == "average"].set_index("method")
    dav = diff[diff.domain == "average"].set_index("method")
    n_dom = rows.domain.nunique()
    lines = [f"Stratified average over {n_dom} domains ({rows.groupby('domain').episode.nunique().min()}+ "
             "tasks each), 95% CI: " + "; ".join(f"{m} {r['mean']:.1f} ± {r['ci95']:.1f}" for m, r in avg.iterrows())]
    for m, r in dav.iterrows():
        lines.append(f"{m} − {reference}: {_pm(r['mean'], r['ci95'])} points ({_verdict(r['mean'], r['ci95'])}).")
    per = diff[(diff.domain != "average") & (diff.method == method)]
    if len(per):
        wins = [d for d, m, c in zip(per.domain, per["mean"], per.ci95) if m - c > 0]
        losses = [d for d, m, c in zip(per.domain, per["mean"], per.ci95) if m + c < 0]
        lines.append(f"{method} vs {reference} per domain: better on {', '.join(wins) or 'none'}; worse on "
                     f"{', '.join(losses) or 'none'}; no clear difference on the other {len(per) - len(wins) - len(losses)}.")
        pairs = paired_differences(rows, reference)
        pairs = pairs[pairs.method == method]
    if len(per) and pairs.domain.nunique() > 1:
        loo = []
        for d in sorted(pairs.domain.unique()):
            r = stratified_mean_ci(pairs[pairs.domain != d], value="diff")
            r = r[r.domain == "average"].iloc[0]
            loo.append((d, r["mean"], r["ci95"]))
        lo, hi = min(loo, key=lambda x: x[1]), max(loo, key=lambda x: x[1])
        lines.append(f"Leaving one domain out, {method} − {reference} ranges from {_pm(lo[1], lo[2])} "
                     f"(without {lo[0]}) to {_pm(hi[1], hi[2])} (without {hi[0]}).")
    if "scheme" in rows and (rows.method == method).any():
        s = rows[rows.method == method]
        n_tasks, n_schemes = len(s), s.scheme.nunique()
        top = s.scheme.value_counts()
        lines.append(f"{method}'s selection: {n_schemes} distinct scheme(s) in {n_tasks} tasks; the most frequent "
                     f"({top.index[0] or 'nothing trained'}) in {top.iloc[0]} of them.")
    if "lr" in rows:
        zero = rows[(rows.lr == 0) & (rows.method != "None")].groupby("method").domain.unique()
        for m, doms in zero.items():
            lines.append(f"{m} chose learning rate 0 (it trained nothing) on {', '.join(sorted(doms))}: "
                         "there its accuracy is its checkpoint's.")
    return diff, lines


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


def readme_block(profile: str = "default", model: str = "mcunet-5fps") -> str:
    """The README's results section, computed from the committed tables of `profile`."""
    out = [START, f"_Generated by `python -m tinytrain_core.findings --update-readme` from `results/{profile}/`; "
           "do not edit by hand._", ""]
    rows = load_rows(profile, model)
    if len(rows):
        diffs, lines = adaptation(rows)
        out += [f"**Adaptation** ({model}, `results/{profile}/adapt/{model}/`, notebook 02):", ""]
        out += [f"- {x}" for x in lines] + [""]
    for title, name, fn in (("Costs", "table2_costs.csv", lambda t: costs(t, model)),
                            ("Meta-training (frozen features, meta − imagenet)", "meta_training_paired.csv",
                             lambda t: meta_training(t)[1]),
                            ("Domains (frozen mcunet-5fps ImageNet features, 5-way 5-shot)", "domains.csv", frozen)):
        t = table(name, profile)
        if t is not None:
            out += [f"**{title}** (`results/{profile}/{name}`):", ""] + [f"- {x}" for x in fn(t)] + [""]
    return "\n".join(out + [END])


def update_readme(profile: str = "default") -> bool:
    """Rewrite the marked block of README.md; True when it changed."""
    path = project_root() / "README.md"
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} block to fill")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: readme_block(profile), text, flags=re.S)
    path.write_text(new)
    return new != text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinytrain_core.findings", description=__doc__)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--update-readme", action="store_true", help="rewrite README.md's results block")
    a = ap.parse_args(argv)
    if a.update_readme:
        print("README.md", "updated" if update_readme(a.profile) else "unchanged")
    else:
        print(readme_block(a.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
