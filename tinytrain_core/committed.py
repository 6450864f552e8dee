"""The committed notebooks: re-executed with their own (smoke) parameters and committed with
clean outputs (no progress bars, no empty stderr, no papermill bookkeeping): `make notebooks`."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from .kernelspec import KERNEL
from .paths import notebooks, project_root

PROGRESS = re.compile(r"\d+%\||it/s\]|s/it\]")


def _noise(output: dict) -> bool:
    """A stderr stream a reader gains nothing from: a progress bar, or only whitespace (what is
    left of a bar once it closes: a lone newline, shown as an empty red box)."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    text = "".join(output.get("text", ""))
    return not text.strip() or bool(PROGRESS.search(text))


def clean_outputs(nb: dict, keep_parameters: bool = False) -> dict:
    """A notebook as it is committed: no progress-bar or empty stderr output, no papermill
    bookkeeping; the cell papermill injected with the run's parameters is dropped unless
    `keep_parameters` (a `make reproduce` run's executed notebooks keep it: they say their profile)."""
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        cell["metadata"].pop("papermill", None)
        cell["metadata"].pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if not _noise(o)]
    if not keep_parameters:
        nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    return nb


def clean_file(path: Path, keep_parameters: bool = False) -> None:
    """`clean_outputs` of a notebook file, in place."""
    path = Path(path)
    text = json.dumps(clean_outputs(json.loads(path.read_text()), keep_parameters), indent=1, ensure_ascii=False)
    path.write_text(text + "\n")


def refresh_committed(root: Path | None = None) -> None:
    """Re-execute every numbered notebook with its own (smoke) parameters in place, then clean
    its outputs: what a developer runs before committing notebooks (`make notebooks`)."""
    import papermill as pm   # heavy (jupyter client); only the runs need it
    root = Path(root or project_root())
    for nb in notebooks(root):
        t0 = time.time()
        out = Path(tempfile.mkdtemp()) / nb.name
        pm.execute_notebook(str(nb), str(out), kernel_name=KERNEL, cwd=str(root / "notebooks"),
                            progress_bar=False)
        clean_file(out)
        text = out.read_text()       # the committed file keeps its own last newline (or none)
        nb.write_text(text if nb.read_text().endswith("\n") else text.rstrip("\n"))
        shutil.rmtree(out.parent)
        print(f"{nb.name}: executed with its smoke parameters in {time.time() - t0:.0f} s, outputs cleaned")
