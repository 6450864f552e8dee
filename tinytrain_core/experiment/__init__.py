"""Notebooks 02-04, the online experiment: `adapt` (the run: config, backbones, tasks, LR choice,
per-domain runner), `taskrows` (its per-task CSV store), `shards` (the same run as idempotent
shards), `budgets`, `sparse_search` (SparseUpdate's contribution analysis), `ablations`
(notebook 03) and `table2` (notebook 04's cost table)."""
