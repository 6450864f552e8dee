"""The paper's numbers and the released reference data, shipped inside the package so that a
clone needs nothing beside it but the ImageNet weights.

    table1_accuracy.csv, table2_backward_costs.csv, end_to_end_time_energy.csv,
    ablation_meta_training.csv, ablation_channel_selection.csv   the paper's tables (Kwon et al.,
        ICML 2024), transcribed as numbers; "None" is a method's name
    sparse_update_schemes.json   SparseUpdate's released update schemes for the three backbones
        (mit-han-lab/tiny-training), read by `training.schemes.released_sparse_update`

The accounting oracles (tiny-training's int8 memory rule, MACs, parameters) are the literals of
tests/test_costs.py and tests/test_models.py. Nothing here is generated: these files are the raw,
immutable inputs of every "paper" column.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..results import read_table

HERE = Path(__file__).resolve().parent
PAPER_FILES = {"table1": "table1_accuracy.csv", "table2": "table2_backward_costs.csv",
               "time": "end_to_end_time_energy.csv", "meta": "ablation_meta_training.csv",
               "channels": "ablation_channel_selection.csv"}


def paper_table(key: str) -> pd.DataFrame:
    """The paper's table `key` (a key of PAPER_FILES)."""
    if key not in PAPER_FILES:
        raise ValueError(f"unknown paper table {key!r}; choose one of {', '.join(PAPER_FILES)}")
    return read_table(HERE / PAPER_FILES[key])


def sparse_update_schemes() -> dict:
    """SparseUpdate's released schemes: {backbone: {scheme name: scheme dict}} as released."""
    return json.loads((HERE / "sparse_update_schemes.json").read_text())
