"""Figures for the committed result tables, drawn from plain DataFrames (conventions: :mod:`.common`).

adapt_accuracy    accuracy after adaptation per domain and method, average over domains, and the
                  paired difference to a reference method                         (:mod:`.adapt`)
layer_choices     which convs a method trains, per domain: share of tasks, channels kept  (:mod:`.adapt`)
lr_curves         validation accuracy against the learning rate, per method and checkpoint (:mod:`.adapt`)
selection_walk    one task's budgeted selection on the network: s_i per conv coloured by the
                  greedy walk's outcome, each conv's backward cost against the budgets (:mod:`.selection`)
episode_sizes     ways, support and query sizes of the sampled episodes, per domain       (:mod:`.data`)
frozen_accuracy   frozen-feature accuracy per domain: is there room for adaptation?       (:mod:`.data`)
meta_training     frozen-feature accuracy before vs after meta-training, and the change   (:mod:`.meta`)
plot_curves       notebook 01's meta-training learning curves, saved under figures/<profile>/  (:mod:`.meta`)
ablation_channels accuracy per channel criterion against the memory budget          (:mod:`.ablations`)
pareto            accuracy against backward memory and compute per method           (:mod:`.ablations`)

The numbers behind them: :func:`stratified_mean_ci`, :func:`paired_differences`,
:func:`layer_choice_table`, :func:`episode_stats_from_rows`; a row's scheme in words:
:func:`readable_scheme`.
"""
from __future__ import annotations

from .ablations import ablation_channels, pareto
from .adapt import adapt_accuracy, layer_choice_table, layer_choices, lr_curves, parse_scheme, readable_scheme
from .common import (AVERAGE, DOMAIN_ORDER, METHOD_ORDER, Z95, domain_order, method_order, method_palette,
                     paired_differences, read_adapt_rows, stratified_mean_ci)
from .data import episode_sizes, episode_stats_from_rows, frozen_accuracy
from .meta import meta_training, plot_curves
from .selection import selection_walk

__all__ = [
    "METHOD_ORDER", "DOMAIN_ORDER", "AVERAGE", "Z95",
    "method_order", "domain_order", "method_palette", "read_adapt_rows",
    "stratified_mean_ci", "paired_differences", "parse_scheme", "readable_scheme", "layer_choice_table",
    "episode_stats_from_rows",
    "adapt_accuracy", "layer_choices", "lr_curves", "episode_sizes", "frozen_accuracy", "meta_training", "plot_curves",
    "ablation_channels", "pareto", "selection_walk",
]
