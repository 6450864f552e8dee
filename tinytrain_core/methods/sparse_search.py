"""SparseUpdate's offline scheme search (Lin et al., NeurIPS 2022), reconstructed: its code was
never released (tiny-training ships only the resulting schemes, `schemes.released_sparse_update`).

A scheme is a genome over a `SearchSpace`: how many of the last convs train their bias, n in
`bias_grid`, and per candidate conv c a weight ratio r_c in `ratios` (fraction of input channels,
depthwise: channels; 0 = frozen weights). `schemes.from_ratios` turns a genome into an
`UpdateScheme` (channels by weight L2 norm, SparseUpdate's "magnitude+").

1. Contribution analysis (`contributions`), measured once on a small task set, accuracies in
   percent averaged over the tasks (acc(.) = query accuracy after fine-tuning that scheme):
       bias gain     dB(n)    = acc(biases of the last n convs) - acc(no update)
       weight gain   dW(c, r) = acc(biases of last k* + weights of conv c at ratio r)
                                - acc(biases of last k*)
2. Gains are assumed additive; the predicted gain of a genome is
       G(n, r) = dB(n) + sum_c dW(c, r_c)          (dW(c, 0) = 0)
3. Evolutionary search (`evolve`) maximises G subject to memory(scheme) <= budget, memory by
   `costs.scheme_costs` under a preset (default tiny-training's int8 batch-1 rule, the one the
   released labels are measured in). Fitness = G if feasible else -inf; ties go to the smaller
   memory. Each generation keeps the best distinct `parents` share of the population and refills
   it with children of random parents: a quarter local steps (one gene one level up or down), a
   quarter mutants (each gene redrawn with probability `mutate`), half uniform crossovers of two
   parents. An over-budget child is repaired by lowering random non-zero genes to a random lower
   level until it fits, so the population stays feasible (the empty scheme always is).
   `exact_best` solves the same problem by brute force on small spaces (a test holds the two equal).

Open choices (the paper gives none of them), with their switches:
- candidate convs: the last half of the network (every released weight index lies there),
  pointwise and depthwise alike -- `space(candidates=)`;
- the bias grid: 0 and multiples of a block's three convs, about `bias_steps` values, always
  ending at all convs -- `space(bias_grid=, bias_steps=)`;
- ratios {0, 1/8, 1/4, 1/2, 1} as in the released schemes -- `space(ratios=)`;
- k*, the bias depth the weight gains are measured on top of: the grid value with the best bias
  gain (ties: the smallest) -- `contributions(reference_bias=)`;
- fine-tuning seeds: task t uses `seed + t` for every scheme (common random numbers, so gains
  compare schemes, not augmentation draws);
- the search: population, generations, parent share, mutation probability -- `evolve(...)`.
Released schemes whose bias depth is off the grid are scored with dB interpolated linearly.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm   # not tqdm.auto: without ipywidgets it warns (TqdmWarning) in every notebook

from ..training import budgets
from ..training.costs import scheme_costs
from ..training.finetune import run_task
from ..nets.models import ConvShape
from ..training.schemes import (UpdateScheme, conv_weights_of, from_ratios, no_update, sparse_update,
                                released_sparse_update)

RATIOS = (0.0, 0.125, 0.25, 0.5, 1.0)
CONVS_PER_BLOCK = 3
PRESET = "tiny_training_int8"
COLUMNS = ["kind", "conv", "ratio", "n_bias", "gain", "n_tasks"]


@dataclass(frozen=True)
class SearchSpace:
    bias_grid: tuple[int, ...]       # n_bias options, ascending, starting at 0
    candidates: tuple[int, ...]      # conv indices whose weights may train
    ratios: tuple[float, ...]        # weight ratio options, ascending, starting at 0

    @property
    def size(self) -> int:
        return len(self.bias_grid) * len(self.ratios) ** len(self.candidates)


def space(shapes: Sequence[ConvShape], candidates: Sequence[int] | None = None, bias_steps: int = 8,
          bias_grid: Sequence[int] | None = None, ratios: Sequence[float] = RATIOS) -> SearchSpace:
    """The options of the search (module docstring); `bias_grid` overrides `bias_steps`."""
    n = len(shapes)
    if bias_grid is None:
        # a stride of whole blocks, wide enough for about `bias_steps` values
        step = CONVS_PER_BLOCK * max(1, -(-n // (CONVS_PER_BLOCK * max(1, bias_steps - 1))))
        bias_grid = list(range(0, n, step)) + [n]
    if candidates is None:
        candidates = range(n // 2, n)
    return SearchSpace(tuple(sorted({0, *map(int, bias_grid)})), tuple(sorted(map(int, candidates))),
                       tuple(sorted({0.0, *map(float, ratios)})))


def gain_table(bias_gains: Mapping[int, float], weight_gains: Mapping[tuple[int, float], float],
               reference_bias: int = 0, n_tasks: int = 0) -> pd.DataFrame:
    """The `contributions` table from plain dicts {n: dB(n)} and {(conv, ratio): dW(conv, ratio)};
    bias rows have conv -1 and ratio 0."""
    rows = [dict(kind="bias", conv=-1, ratio=0.0, n_bias=int(n), gain=float(g), n_tasks=n_tasks)
            for n, g in sorted(bias_gains.items())]
    rows += [dict(kind="weight", conv=int(c), ratio=float(r), n_bias=int(reference_bias), gain=float(g),
                  n_tasks=n_tasks) for (c, r), g in sorted(weight_gains.items())]
    return pd.DataFrame(rows, columns=COLUMNS)


def contributions(backbone, state: dict, tasks: Sequence[tuple], space: SearchSpace, steps: int, lr: float,
                  seed: int = 0, progress: bool = False, reference_bias: int | None = None) -> pd.DataFrame:
    """Measure dB(n) for every n of the grid, then dW(c, r) on top of the biases of the last k*
    convs (module docstring). `tasks`: (support_x, support_y, query_x, query_y) tuples."""
    shapes, weights = backbone.conv_shapes(), conv_weights_of(backbone)
    bar = tqdm(total=len(tasks) * (len(space.bias_grid) + len(space.candidates) * (len(space.ratios) - 1)),
               desc="contributions", disable=not progress)

    def mean_acc(scheme: UpdateScheme) -> float:
        accs = [run_task(backbone, state, scheme, *task, steps=steps, lr=lr, seed=seed + t).accuracy
                for t, task in enumerate(tasks)]
        bar.update(len(tasks))
        return float(np.mean(accs))

    def scheme(n_bias, conv=None, ratio=0.0):
        return from_ratios("probe", shapes, n_bias, [] if conv is None else [conv], [ratio], weights)

    base = mean_acc(no_update())
    bias = {0: 0.0} | {n: mean_acc(scheme(n)) - base for n in space.bias_grid if n > 0}
    k = max(space.bias_grid, key=lambda n: (bias[n], -n)) if reference_bias is None else reference_bias
    ref = base + bias[k] if k in bias else mean_acc(scheme(k))
    weight = {(c, r): mean_acc(scheme(k, c, r)) - ref for c in space.candidates for r in space.ratios if r > 0}
    bar.close()
    return gain_table(bias, weight, k, len(tasks))


class _Counts(UpdateScheme):
    """An UpdateScheme whose kept channels are ranges (the first channels, as `from_ratios` without
    weights): the cost model only counts them, and skipping UpdateScheme's normalising copy of
    every channel index saves about a third of the search's time."""

    def __post_init__(self):
        pass


class _Problem:
    """The gain tables as arrays, and memoised memory of genomes (bias index, ratio index per candidate)."""

    def __init__(self, shapes, gains: pd.DataFrame, memory_kib: float, preset: str):
        b = gains[gains.kind == "bias"].sort_values("n_bias")
        w = gains[gains.kind == "weight"]
        self.bias_grid = b.n_bias.astype(int).tolist()
        self.bias_gain = b.gain.to_numpy(float)
        self.candidates = sorted(w.conv.astype(int).unique().tolist())
        self.ratios = [0.0] + sorted(set(w.ratio.astype(float)) - {0.0})
        table = w.pivot_table(index="conv", columns="ratio", values="gain", aggfunc="mean")
        table = table.reindex(index=self.candidates, columns=self.ratios[1:])
        if not self.bias_grid or table.isna().to_numpy().any():
            raise ValueError("gains need bias rows and a weight gain for every (conv, ratio) pair")
        self.weight_gain = np.hstack([np.zeros((len(self.candidates), 1)), table.to_numpy(float)])
        self.shapes, self.budget, self.preset = shapes, memory_kib, preset
        self.highs = np.array([len(self.bias_grid)] + [len(self.ratios)] * len(self.candidates))
        self._memory: dict[bytes, float] = {}

    def scheme(self, g: np.ndarray, name: str = "genome", conv_weights=None) -> UpdateScheme:
        return from_ratios(name, self.shapes, self.bias_grid[g[0]], self.candidates,
                           [self.ratios[j] for j in g[1:]], conv_weights)

    def memory(self, g: np.ndarray) -> float:
        key = g.tobytes()
        if key not in self._memory:
            kept = {c: range(k) for c, j in zip(self.candidates, g[1:])
                    if (k := int(self.shapes[c].in_channels * self.ratios[j])) > 0}
            scheme = _Counts("genome", kept, frozenset(range(len(self.shapes) - self.bias_grid[g[0]], len(self.shapes))))
            self._memory[key] = scheme_costs(self.shapes, scheme, self.preset).memory_kib
        return self._memory[key]

    def gain(self, pop: np.ndarray) -> np.ndarray:
        pop = np.atleast_2d(pop)
        return self.bias_gain[pop[:, 0]] + self.weight_gain[np.arange(len(self.candidates)), pop[:, 1:]].sum(1)

    def fitness(self, pop: np.ndarray) -> np.ndarray:
        feasible = np.array([self.memory(g) <= self.budget for g in pop])
        return np.where(feasible, self.gain(pop), -np.inf)

    def repair(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        while self.memory(g) > self.budget:
            j = rng.choice(np.flatnonzero(g))
            g[j] = rng.integers(0, g[j])
        return g

    def best(self, pop: np.ndarray) -> np.ndarray:
        """The distinct genomes of `pop`, best first: fitness, then smaller memory, then the genome."""
        pop = np.unique(pop, axis=0)
        fit, mem = self.fitness(pop), np.array([self.memory(g) for g in pop])
        return pop[np.lexsort((*pop.T[::-1], mem, -fit))]


def evolve(shapes: Sequence[ConvShape], gains: pd.DataFrame, memory_kib: float, preset: str = PRESET,
           population: int = 100, generations: int = 60, mutate: float = 0.1, parents: float = 0.25,
           seed: int = 0, conv_weights: Sequence[torch.Tensor] | None = None) -> UpdateScheme:
    """The feasible genome of highest predicted gain G the evolutionary search finds (module
    docstring), as a scheme; channels by weight L2 norm when `conv_weights` are given, else the
    first channels (enough for costs). The space is the one `gains` covers."""
    p = _Problem(shapes, gains, memory_kib, preset)
    if p.memory(np.zeros(len(p.highs), int)) > memory_kib:
        raise ValueError(f"even the smallest scheme of the space exceeds {memory_kib:g} KiB")
    rng = np.random.default_rng(seed)
    n_genes, n_parents = len(p.highs), max(2, int(population * parents))
    # sparse random starts: a dense random genome is far over any MCU budget and repairs slowly
    starts = rng.integers(0, p.highs, (population - 1, n_genes)) * (rng.random((population - 1, n_genes)) < 0.3)
    pop = np.vstack([np.zeros((1, n_genes), int), [p.repair(g, rng) for g in starts]])
    for _ in range(generations):
        top = p.best(pop)[:n_parents]
        children = []
        for i in range(population - len(top)):
            a = top[rng.integers(len(top))]
            if i % 4 == 0:      # a local step: one gene one level up or down
                child = a.copy()
                j = rng.integers(n_genes)
                child[j] = np.clip(child[j] + rng.choice([-1, 1]), 0, p.highs[j] - 1)
            elif i % 4 == 1:
                child = np.where(rng.random(n_genes) < mutate, rng.integers(0, p.highs), a)
            else:
                child = np.where(rng.random(n_genes) < 0.5, a, top[rng.integers(len(top))])
            children.append(p.repair(child, rng))
        pop = np.vstack([top, children])
    return p.scheme(p.best(pop)[0], f"SparseUpdate-search-{memory_kib:g}kb", conv_weights)


def exact_best(shapes: Sequence[ConvShape], gains: pd.DataFrame, memory_kib: float, preset: str = PRESET,
               max_size: int = 200_000, conv_weights: Sequence[torch.Tensor] | None = None) -> UpdateScheme:
    """The optimum by brute force (same objective and tie-break as `evolve`), for small spaces."""
    p = _Problem(shapes, gains, memory_kib, preset)
    if int(np.prod(p.highs.astype(float))) > max_size:
        raise ValueError(f"space of {np.prod(p.highs.astype(float)):.3g} genomes exceeds max_size={max_size}")
    pop = np.array(list(itertools.product(*(range(h) for h in p.highs))))
    gain = p.gain(pop)
    best_gain, best = -np.inf, None
    # walk down the predicted gains; memory is only computed until the first feasible gain level ends
    for j in np.argsort(-gain, kind="stable"):
        if gain[j] < best_gain:
            break
        if p.memory(pop[j]) <= memory_kib and (best is None or p.memory(pop[j]) < p.memory(best)):
            best_gain, best = gain[j], pop[j]
    return p.scheme(best, f"SparseUpdate-exact-{memory_kib:g}kb", conv_weights)


def summed_gain(scheme: UpdateScheme, gains: pd.DataFrame, shapes: Sequence[ConvShape]) -> float:
    """G of any scheme under the additive model: dB at its bias count (interpolated off the grid)
    plus dW of each weight-trained conv; NaN for a (conv, ratio) the table does not have."""
    b = gains[gains.kind == "bias"].sort_values("n_bias")
    total = float(np.interp(len(scheme.biases), b.n_bias, b.gain))
    w = gains[gains.kind == "weight"]
    for i, chans in scheme.weights.items():
        rows = w[w.conv == i]
        rows = rows[(rows.ratio * shapes[i].in_channels).astype(int) == len(chans)]
        total += float(rows.gain.iloc[0]) if len(rows) else np.nan
    return total


def overlap(found: UpdateScheme, released: UpdateScheme, shapes: Sequence[ConvShape], preset: str = PRESET) -> dict:
    """Agreement of two schemes: Jaccard of their weight-trained conv sets and of their
    (conv, channel) items, the difference in bias-trained conv counts, and both memories."""
    return dict(conv_jaccard=budgets.jaccard(frozenset((i, 0) for i in found.weights),
                                             frozenset((i, 0) for i in released.weights)),
                item_jaccard=budgets.jaccard(found, released),
                n_bias_diff=abs(len(found.biases) - len(released.biases)),
                memory_found_kib=scheme_costs(shapes, found, preset).memory_kib,
                memory_released_kib=scheme_costs(shapes, released, preset).memory_kib)


def search_released_budgets(model: str, shapes: Sequence[ConvShape], gains: pd.DataFrame,
                            conv_weights: Sequence[torch.Tensor] | None = None, seed: int = 0,
                            preset: str = PRESET, **evolve_kw) -> pd.DataFrame:
    """Search at the memory of each released scheme of `model` (priced by the same rule) and
    compare the result with it: one row per released label."""
    rows = []
    for label in released_sparse_update(model):
        released = sparse_update(model, label, shapes, conv_weights)
        budget = scheme_costs(shapes, released, preset).memory_kib
        found = evolve(shapes, gains, budget, preset, seed=seed, conv_weights=conv_weights, **evolve_kw)
        rows.append(dict(model=model, label=label, budget_kib=budget, n_bias_found=len(found.biases),
                         n_bias_released=len(released.biases), **overlap(found, released, shapes, preset),
                         gain_found=summed_gain(found, gains, shapes),
                         gain_released=summed_gain(released, gains, shapes)))
    return pd.DataFrame(rows)
