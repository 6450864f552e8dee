"""Why the budgeted selection chose what it chose: one row per candidate conv, one sentence per
surprise (notebook 02, "One task, step by step").

A conv's score (selection.py) rewards potential and penalises its own size:

    s_i = P_i / ( (|W_i| / max_l |W_l|) * (M_i / max_l M_l) )

with P_i its Fisher potential, |W_i| its weights and M_i its forward MACs. What the score does not
see is the backward *path*: to train conv i the gradient has to travel back from the classifier
through every conv after i (input-gradient MACs, `costs.py`), so an early conv with the highest s_i
can cost more backward MACs than the whole compute budget even when it keeps 1/8 of its channels.
The table puts both side by side, step by step along the greedy walk (`selection.walk`, the same
generator `select_scheme` runs, so the table cannot disagree with the scheme).
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from ..nets.models import ConvShape
from .costs import scheme_costs
from .fisher import FisherPotential
from .schemes import UpdateScheme
from .selection import PRESET, RATIOS, layer_scores, n_channels, walk

CHOSEN, MEMORY, COMPUTE, BOTH = "chosen", "refused: memory", "refused: compute", "refused: both"
OUTCOMES = (CHOSEN, COMPUTE, MEMORY, BOTH)


def _alone(shapes, i: int, biases: str, preset: str):
    """The cheapest way to train conv i: alone, at the smallest ratio. Its input-gradient MACs are
    the backward path that reaching conv i requires, whatever else trains."""
    k = n_channels(shapes[i], RATIOS[-1])
    return scheme_costs(shapes, UpdateScheme("alone", {i: tuple(range(k))},
                                             frozenset({i} if biases == "selected" else ())), preset)


def _outcome(ratio, memory_ok: bool, compute_ok: bool) -> str:
    if ratio is not None:
        return CHOSEN
    return BOTH if not (memory_ok or compute_ok) else MEMORY if not memory_ok else COMPUTE


def explain_selection(fp: FisherPotential, shapes: Sequence[ConvShape], memory_kib: float, compute_macs: float,
                      channels: str = "fisher", conv_weights: Sequence[torch.Tensor] | None = None,
                      biases: str = "selected", layers: Sequence[int] | None = None, seed: int = 0,
                      preset: str = PRESET) -> pd.DataFrame:
    """One row per candidate conv, in the walk's order (rank 1 = highest s_i).

    The score's terms: `P_i`, `w_share` = |W_i|/max|W|, `m_share` = M_i/max M, `s_i`.
    Its cheapest cost (alone, smallest ratio): `alone_path_macs` (the input gradient through every
    conv after it), `alone_macs` (+ its weight gradient), `alone_kib`.
    The walk: `spent_macs`/`spent_kib` the scheme already chosen when its turn comes; `step_ratio`
    the ratio of the decisive try (the chosen one, or the smallest when refused) and `step_macs`/
    `step_kib` the accumulated scheme's cost with it; `added_*` = step - spent (what it adds, the
    path included); `memory_ok`/`compute_ok` whether that try fits each budget; `outcome`
    (chosen / refused: memory | compute | both) and `ratio` (chosen ratio, else NaN)."""
    scores = layer_scores(fp, shapes, layers)
    max_w, max_m = max(s.params for s in shapes), max(s.macs for s in shapes)
    rows, before = [], scheme_costs(shapes, UpdateScheme("empty"), preset)
    for rank, (step, scheme) in enumerate(walk(fp, shapes, memory_kib, compute_macs, channels, biases,
                                               conv_weights, layers, seed, preset), start=1):
        i, cost, alone = step.conv, step.cost, _alone(shapes, step.conv, biases, preset)
        mem_ok, mac_ok = cost.memory_kib <= memory_kib, cost.backward_macs <= compute_macs
        rows.append(dict(
            rank=rank, conv=i, name=shapes[i].name, P_i=fp.layer(i), w_share=shapes[i].params / max_w,
            m_share=shapes[i].macs / max_m, s_i=scores[i],
            alone_path_macs=alone.input_grad_macs, alone_macs=alone.backward_macs, alone_kib=alone.memory_kib,
            spent_macs=before.backward_macs, spent_kib=before.memory_kib,
            step_ratio=step.ratio if step.ratio is not None else RATIOS[-1],
            step_macs=cost.backward_macs, step_kib=cost.memory_kib,
            added_macs=cost.backward_macs - before.backward_macs, added_kib=cost.memory_kib - before.memory_kib,
            memory_ok=mem_ok, compute_ok=mac_ok, outcome=_outcome(step.ratio, mem_ok, mac_ok),
            ratio=step.ratio if step.ratio is not None else float("nan"),
            kept=f"{len(scheme.weights[i])}/{shapes[i].in_channels}" if step.ratio is not None else ""))
        if step.ratio is not None:
            before = cost
    return pd.DataFrame(rows)


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The table for a person: MACs in millions, KiB and scores rounded, the walk's columns only."""
    out = table.copy()
    for c in [c for c in out if c.endswith("_macs")]:
        out[c.replace("_macs", "_M")] = (out.pop(c) / 1e6).round(2)
    return out.round({"P_i": 4, "w_share": 3, "m_share": 3, "s_i": 2, "alone_kib": 1, "spent_kib": 1,
                      "step_kib": 1, "added_kib": 1})[
        ["rank", "conv", "name", "P_i", "w_share", "m_share", "s_i", "alone_path_M", "alone_M", "alone_kib",
         "spent_M", "spent_kib", "step_ratio", "added_M", "added_kib", "memory_ok", "compute_ok", "outcome",
         "kept"]]


def _macs(x: float) -> str:
    """MACs in millions, or thousands below 0.1 M (a budget's last crumbs)."""
    return f"{x / 1e6:.2f} M MACs" if abs(x) >= 1e5 else f"{x / 1e3:.1f} k MACs"


def _conv(r) -> str:
    return f"conv {r.conv} ({r.name})"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _why_refused(r, memory_kib: float, compute_macs: float) -> str:
    """One refused conv in words: its cheapest try against the budget it breaks (both: each)."""
    parts = []
    if not r.compute_ok:
        if r.alone_macs > compute_macs:
            parts.append(f"training it needs {r.alone_macs / 1e6:.2f} M MACs of backward pass even alone at ratio "
                         f"{RATIOS[-1]:g} ({r.alone_path_macs / 1e6:.2f} M of them to carry the gradient back to it "
                         f"through the convs above) > the {compute_macs / 1e6:.2f} M budget")
        else:
            parts.append(f"it fits alone ({_macs(r.alone_macs)}) but adds {_macs(r.added_macs)} to the "
                         f"{_macs(r.spent_macs)} already chosen, with {_macs(compute_macs - r.spent_macs)} left")
    if not r.memory_ok:
        where = "even alone" if r.alone_kib > memory_kib else f"on top of the {r.spent_kib:.1f} KiB already chosen"
        kib = r.alone_kib if r.alone_kib > memory_kib else r.step_kib
        parts.append(f"it needs {kib:.1f} KiB {where} at ratio {RATIOS[-1]:g} > the {memory_kib:.1f} KiB budget")
    return "; ".join(parts)


def _span(convs: list[int]) -> str:
    if len(convs) == 1:
        return f"conv {convs[0]}"
    return f"convs {convs[0]}-{convs[-1]}" if convs == list(range(convs[0], convs[-1] + 1)) else \
        "convs " + ", ".join(map(str, convs))


def explain_lines(table: pd.DataFrame, memory_kib: float, compute_macs: float, top: int = 3) -> list[str]:
    """The table in sentences, every number read from it: the scheme and what it spends, why the
    best-scored convs above the first chosen one were refused (at most `top`), which convs no
    budget admits at any ratio, and the tally of outcomes."""
    chosen = table[table.outcome == CHOSEN]
    lines = []
    if len(chosen):
        last = chosen.iloc[-1]
        parts = ", ".join(f"conv {r.conv} at ratio {r.ratio:g}" for r in chosen.sort_values("conv").itertuples())
        lines.append(f"The scheme trains {len(chosen)} conv(s): {parts}; it spends {last.step_macs:,} of "
                     f"{compute_macs:,.0f} backward MACs and {last.step_kib:.1f} of {memory_kib:.1f} KiB.")
    first = next(chosen.itertuples(), None)
    above = table if first is None else table[table["rank"] < first.rank]
    for r in above.head(top).itertuples():
        best = "has the highest s_i" if r.rank == 1 else f"is {_ordinal(r.rank)} by s_i"
        lines.append(f"{_conv(r)} {best} ({r.s_i:.3g}) but {_why_refused(r, memory_kib, compute_macs)}.")
    if first is not None:
        lines.append(f"{_conv(first)}, {_ordinal(first.rank)} by s_i, is the best-scored conv that fits: "
                     f"chosen at ratio {first.ratio:g} ({first.added_macs / 1e6:.2f} M MACs, "
                     f"{first.added_kib:.1f} KiB).")
    for col, budget, what, unit in (("alone_macs", compute_macs, "compute", "M MACs"),
                                    ("alone_kib", memory_kib, "memory", "KiB")):
        out = sorted(table.loc[table[col] > budget, "conv"].tolist())
        if out:
            n_top = int((table.loc[table["rank"] <= 10, col] > budget).sum())
            b = budget / 1e6 if unit == "M MACs" else budget
            lines.append(f"The {what} budget ({b:g} {unit}) admits none of {_span(out)} at any ratio, even trained "
                         f"alone (its budget-limited region): "
                         f"{n_top} of the 10 best-scored convs lie there.")
    late = table[(table.outcome != CHOSEN) & (table.alone_macs <= compute_macs) & (table.alone_kib <= memory_kib)]
    if len(late):
        r = next(late.itertuples())
        left = [f"+{_macs(r.added_macs)} with {_macs(compute_macs - r.spent_macs)} left"] * \
            (not r.compute_ok) + [f"+{r.added_kib:.1f} KiB with {memory_kib - r.spent_kib:.1f} KiB left"] * \
            (not r.memory_ok)
        lines.append(f"{len(late)} refused conv(s) would fit alone but not on top of the convs chosen before their "
                     f"turn (the best-scored, {_conv(r)}: {' and '.join(left)}).")
    tally = table.outcome.value_counts()
    lines.append(f"Of {len(table)} candidate convs: " + ", ".join(f"{int(tally.get(o, 0))} {o}" for o in OUTCOMES)
                 + ".")
    return lines
