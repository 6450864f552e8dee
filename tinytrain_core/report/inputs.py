"""What notebook 05 reads: the per-task rows of notebook 02 (summarised with the functions behind
its summary.csv and paired.csv), notebook 04's costs, notebook 03's ablation tables and the
paper's tables (`tinytrain_core.reference`); which of our domains stands in for which of the
paper's; and the helpers every report table uses. A missing input never raises: `missing` names
the notebook to run."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import reference
from ..data.domains import BUILTIN, FIXTURE
from ..experiment import analysis, taskrows
from ..nets.models import MODEL_NAMES
from ..paths import results_dir
from ..results import read_table
from ..stats import domain_order, method_order

NAN = math.nan
AVG = "average"
# Our domain -> the column(s) of the paper's Table 1 it stands in for (data.domains.BUILTIN says
# why); fashion (real photos, nearest to ImageNet) has no Meta-Dataset counterpart.
PAPER_DOMAINS = {"signs": ("traffic",), "glyphs": ("omniglot",), "cjk": ("aircraft", "cub"),
                 "emoji": ("flower", "fungi"), "lineart": ("quickdraw",), "cards": ("aircraft",),
                 "fashion": (), "textures": ("dtd",), "clipart": ("coco",),
                 "fixture_a": ("omniglot",), "fixture_b": ("omniglot",), AVG: (AVG,)}
CRITERIA = {"fisher": "fisher", "l2_norm": "l2", "l2": "l2", "random": "random"}  # paper's names -> ours
RUN_HINT = {"adapt": "run notebook 02 / make reproduce", "ablations": "run notebook 03 / make reproduce",
            "table2_costs.csv": "run notebook 04 / make reproduce"}
ABLATIONS = ("summary", "paired", "meta_training", "pareto", "meta_seeds")

PAPER_FILES = reference.PAPER_FILES


@dataclass
class Inputs:
    """What the report reads: per model that ran notebook 02 its test rows, `summary` and `paired`;
    table2_costs.csv; notebook 03's ablation tables; the paper's tables (None where absent)."""
    profile: str
    adapt: dict
    costs: pd.DataFrame | None
    ablations: dict
    paper: dict


def _csv(path: Path) -> pd.DataFrame | None:
    return read_table(path) if path.is_file() else None


def paper(name: str) -> pd.DataFrame:
    """The paper's table `name` (a key of `reference.PAPER_FILES`), shipped in the package."""
    return reference.paper_table(name)


def load(profile: str) -> Inputs:
    """Read every input of `profile` (module docstring)."""
    res = results_dir(profile)
    adapt = {}
    for m in MODEL_NAMES:
        folder = res / "adapt" / m     # not taskrows.load_rows: it would create the folder
        rows = taskrows.rows_in(taskrows.row_files(folder)) if folder.is_dir() else None
        if rows is not None and len(rows):
            adapt[m] = dict(rows=rows, summary=analysis.summarize(rows), paired=analysis.paired(rows))
    return Inputs(profile, adapt, _csv(res / "table2_costs.csv"),
                  {k: _csv(res / "ablations" / f"{k}.csv") for k in ABLATIONS}, {k: paper(k) for k in PAPER_FILES})


def missing(inp: Inputs) -> list[str]:
    """One line per missing input, naming what to run."""
    out = [f"{m}: adaptation not run ({RUN_HINT['adapt']})" for m in MODEL_NAMES if m not in inp.adapt]
    if inp.costs is None:
        out.append(f"table2_costs.csv missing: {RUN_HINT['table2_costs.csv']}")
    out += [f"ablations/{k}.csv missing: {RUN_HINT['ablations']}" for k, t in inp.ablations.items() if t is None]
    return out


def _get(df, col, **where) -> float:
    """The first `col` of the rows of `df` matching `where`, NaN if none (or no `df`)."""
    if df is None or not len(df):
        return NAN
    r = df.loc[np.logical_and.reduce([df[k] == v for k, v in where.items()]), col]
    return float(r.iloc[0]) if len(r) else NAN


def _sorted(t: pd.DataFrame) -> pd.DataFrame:
    """Models in MODEL_NAMES order, methods and domains in the figures' orders."""
    orders = {"model": lambda x: [m for m in MODEL_NAMES if m in set(x)] + sorted(set(x) - set(MODEL_NAMES)),
              "method": method_order, "domain": domain_order}
    ranks = {f"_{c}": t[c].astype(str).map({n: i for i, n in enumerate(o(t[c].astype(str)))})
             for c, o in orders.items() if c in t}
    return t.assign(**ranks).sort_values(list(ranks), kind="stable").drop(columns=list(ranks)).reset_index(drop=True)


def stands_in_for(domain: str) -> str:
    """What one of our domains stands in for (data.domains), in words."""
    return "Meta-Dataset average" if domain == AVG else {**BUILTIN, **FIXTURE}.get(domain, ("", "?"))[1]
