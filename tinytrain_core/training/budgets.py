"""Does TinyTrain's selection vary per task? Budget sweeps and scheme diversity.

TinyTrain's selection (`selection.select_scheme`) is meant to be a per-task decision. Whether it
is depends on the budgets: when one budget admits only one cheap scheme, every task gets it.
This module measures that.

Items. A scheme's *items* are the (conv index, kept input channel) pairs whose weights train
(`UpdateScheme.weights`; depthwise convs: channels). Biases are left out: under
`biases="selected"` they follow the weight-trained convs, so they add no information.

Similarity of two schemes a, b (Jaccard over items; 1.0 when both train nothing):

    J(a, b) = |items(a) & items(b)| / |items(a) | items(b)|

Every channel counts once, so a wide conv weighs more than a narrow one; J = 1 means the same
channels of the same convs train.

Diversity of n schemes: `distinct` = number of different item sets, `mean_jaccard` = mean of
J over the n(n-1)/2 unordered pairs (1.0 for a single scheme). Item sets differ as soon as one
kept channel differs, so two coarser views come with them: `distinct_layouts` = number of
different layouts {conv: number of kept channels} (what `adapt.scheme_summary` writes), and
`mean_layer_jaccard` = mean J over the sets of weight-trained convs.

Which budget binds. After the greedy walk, take the highest-ranked conv (ranking by s_i, as
the walk) that does not train all its channels, and its smallest refused step: the next ratio
of `selection.RATIOS` above what it got (RATIOS[-1] if it got nothing). That step, added to the
final scheme, exceeds memory, compute or both (costs only grow as a scheme grows, so it was
refused for that reason, or a subset of it, during the walk). The task's label is
"memory" (memory alone exceeded: more compute would not have helped), "compute", "both", or
"none" (every candidate trains fully). `sweep` reports the share of each label, plus the mean
utilisation used/budget of each budget.

The refused step is often an early conv whose step needs the whole backward pass, so "both" is
common. A counterfactual view complements it: with `relax=f`, `sweep` also selects again under
memory * f (compute unchanged) and under compute * f, and reports the share of tasks whose item
set changes: `memory_sensitive`, `compute_sensitive` (a budget is binding when loosening it
alone changes the scheme).
"""
from __future__ import annotations

import itertools
import math
from typing import Iterable, Mapping, Sequence

import pandas as pd
import torch

from . import selection
from .costs import scheme_costs
from .fisher import FisherPotential
from ..nets.models import ConvShape
from .schemes import UpdateScheme

BIND_LABELS = ("memory", "compute", "both", "none")


def scheme_items(scheme: UpdateScheme) -> frozenset[tuple[int, int]]:
    """The (conv index, input channel) pairs whose weights train."""
    return frozenset((i, c) for i, chans in scheme.weights.items() for c in chans)


def _as_items(x) -> frozenset:
    return x if isinstance(x, frozenset) else scheme_items(x)


def _layout(items: frozenset) -> frozenset[tuple[int, int]]:
    """{conv: number of kept channels} as a frozenset of (conv, count) pairs."""
    counts: dict[int, int] = {}
    for i, _c in items:
        counts[i] = counts.get(i, 0) + 1
    return frozenset(counts.items())


def jaccard(a, b) -> float:
    """J(a, b) over items (module docstring); `a`, `b` are UpdateSchemes or item sets."""
    a, b = _as_items(a), _as_items(b)
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def _mean_pairwise_jaccard(sets: list[frozenset]) -> float:
    pairs = list(itertools.combinations(sets, 2))
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs) if pairs else (1.0 if sets else math.nan)


def diversity(schemes: Iterable) -> dict:
    """{tasks, distinct, mean_jaccard, distinct_layouts, mean_layer_jaccard} of UpdateSchemes
    (or item sets), module docstring."""
    items = [_as_items(s) for s in schemes]
    layers = [frozenset(i for i, _c in x) for x in items]
    return {"tasks": len(items), "distinct": len(set(items)), "mean_jaccard": _mean_pairwise_jaccard(items),
            "distinct_layouts": len({_layout(x) for x in items}),
            "mean_layer_jaccard": _mean_pairwise_jaccard(layers)}


def binding(fp: FisherPotential, shapes: Sequence[ConvShape], scheme: UpdateScheme, memory_kib: float,
            compute_macs: float, biases: str = "selected", preset: str = selection.PRESET) -> str:
    """Which budget refuses the scheme's smallest next step (module docstring): one of BIND_LABELS."""
    scores = selection.layer_scores(fp, shapes)
    for i in sorted(scores, key=lambda j: (-scores[j], j)):
        have = len(scheme.weights.get(i, ()))
        bigger = [k for k in (selection.n_channels(shapes[i], r) for r in reversed(selection.RATIOS))
                  if k > have]
        if not bigger:
            continue                      # conv i trains fully
        step = UpdateScheme("step", {**scheme.weights, i: tuple(range(bigger[0]))},
                            scheme.biases | ({i} if biases == "selected" else set()))
        cost = scheme_costs(shapes, step, preset)
        over_m, over_c = cost.memory_kib > memory_kib, cost.backward_macs > compute_macs
        return "both" if over_m and over_c else "memory" if over_m else "compute" if over_c else "none"
    return "none"


def sweep(potentials: Sequence[FisherPotential] | Mapping, shapes: Sequence[ConvShape],
          memory_kib_grid: Iterable[float], compute_macs_grid: Iterable[float],
          conv_weights: Sequence[torch.Tensor] | None = None, channels: str = "fisher",
          preset: str = selection.PRESET, biases: str = "selected", relax: float | None = 1.25
          ) -> pd.DataFrame:
    """One row per (memory KiB, compute MACs) budget pair: the diversity of the schemes that
    `select_scheme` picks for the tasks' potentials (a sequence, or a mapping whose values are
    taken), their used memory/MACs (`costs.scheme_costs`), what they train (mean weight-trained
    convs, items and trainable parameters incl. biases), the binding shares `binds_<label>` plus
    `binds` (the most frequent label), and with `relax` the shares `memory_sensitive` and
    `compute_sensitive` (module docstring; relax=None skips them and takes a third of the time).
    Tasks where nothing fits are left out and counted in `note`; when no task fits, the row has
    NaNs and `note` holds select_scheme's message (no exception)."""
    fps = list(potentials.values()) if isinstance(potentials, Mapping) else list(potentials)
    def select(fp, mem, mac):
        return selection.select_scheme(fp, shapes, mem, mac, channels=channels, biases=biases,
                                       conv_weights=conv_weights, preset=preset)

    rows = []
    for mem, mac in itertools.product(memory_kib_grid, compute_macs_grid):
        schemes, labels, costs, errors, sens_m, sens_c = [], [], [], [], [], []
        for fp in fps:
            try:
                s = select(fp, mem, mac)
            except ValueError as e:
                errors.append(str(e))
                continue
            schemes.append(s)
            costs.append(scheme_costs(shapes, s, preset))
            labels.append(binding(fp, shapes, s, mem, mac, biases, preset))
            if relax is not None:
                items = scheme_items(s)
                sens_m.append(scheme_items(select(fp, mem * relax, mac)) != items)
                sens_c.append(scheme_items(select(fp, mem, mac * relax)) != items)
        row = {"memory_kib": float(mem), "compute_macs": float(mac)}
        if schemes:
            row.update(diversity(schemes))
            kib = [c.memory_kib for c in costs]
            macs = [c.backward_macs for c in costs]
            row.update(mean_memory_kib=sum(kib) / len(kib), max_memory_kib=max(kib),
                       mean_macs=sum(macs) / len(macs), max_macs=max(macs),
                       memory_util=sum(kib) / len(kib) / mem, compute_util=sum(macs) / len(macs) / mac,
                       mean_layers=sum(len(s.weights) for s in schemes) / len(schemes),
                       mean_items=sum(len(scheme_items(s)) for s in schemes) / len(schemes),
                       mean_params=sum(c.trainable_params for c in costs) / len(costs))
            row.update({f"binds_{k}": labels.count(k) / len(labels) for k in BIND_LABELS})
            row["binds"] = max(BIND_LABELS, key=labels.count)
            if relax is not None:
                row.update(memory_sensitive=sum(sens_m) / len(sens_m),
                           compute_sensitive=sum(sens_c) / len(sens_c))
        row["note"] = (f"{len(errors)} of {len(fps)} tasks infeasible: {errors[0]}" if errors else "")
        rows.append(row)
    cols = ["memory_kib", "compute_macs", "tasks", "distinct", "mean_jaccard", "distinct_layouts",
            "mean_layer_jaccard", "mean_memory_kib",
            "max_memory_kib", "mean_macs", "max_macs", "memory_util", "compute_util", "mean_layers",
            "mean_items", "mean_params"] + [f"binds_{k}" for k in BIND_LABELS] + ["binds", "memory_sensitive",
                                                                    "compute_sensitive", "note"]
    return pd.DataFrame(rows).reindex(columns=cols)


def diversity_by_domain(schemes: Mapping[tuple[str, int], UpdateScheme]) -> pd.DataFrame:
    """Diversity within each domain, from {(domain, episode): UpdateScheme (or item set)}.

    A mapping, not a results frame, so that it works on schemes straight from `select_scheme`.
    For a frame of `adapt.scheme_summary` strings that carry '@hexmask' channel masks, pass
    {(domain, episode): analysis.scheme_items(string)}: item sets are accepted. Rows: one per domain
    (pairs within it), then "(all)" (every pair) and "(between)" (pairs from different domains
    only; `distinct` there is that of all tasks)."""
    by_dom: dict[str, list] = {}
    for (dom, _ep), s in sorted(schemes.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        by_dom.setdefault(dom, []).append(_as_items(s))
    rows = [{"domain": d, **diversity(v)} for d, v in by_dom.items()]
    everything = [x for v in by_dom.values() for x in v]
    rows.append({"domain": "(all)", **diversity(everything)})
    between = [jaccard(a, b) for (da, va), (db, vb) in itertools.combinations(by_dom.items(), 2)
               for a in va for b in vb]
    rows.append({"domain": "(between)", "tasks": len(everything), "distinct": len(set(everything)),
                 "mean_jaccard": sum(between) / len(between) if between else math.nan,
                 "distinct_layouts": len({_layout(x) for x in everything})})
    return pd.DataFrame(rows)
