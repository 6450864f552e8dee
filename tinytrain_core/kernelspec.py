"""Add the CPU allocator setting and the CPU kernel pin to the venv's Jupyter kernel, so notebooks
opened in JupyterLab train as fast as `make` runs (GLIBC_TUNABLES must be set before the process
starts) and compute the same bits (`tinytrain_core.CPU_PIN`). The allocator's value is the one
the Makefile exports (its single definition), read from the environment.
Usage: make setup (runs: python -m tinytrain_core.kernelspec KERNEL_NAME)"""
import json
import os
import sys
from pathlib import Path

KERNEL = "tinytrain"   # the Makefile's KERNEL: the name `make setup` installs and papermill runs

if __name__ == "__main__":
    tunables = os.environ.get("GLIBC_TUNABLES")
    if not tunables:
        sys.exit("GLIBC_TUNABLES is not set: run this through `make setup`, which exports it")
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / sys.argv[1] / "kernel.json"
    data = json.loads(spec.read_text())
    from tinytrain_core import CPU_PIN
    data.setdefault("env", {})["GLIBC_TUNABLES"] = tunables
    data["env"].update({k: os.environ.get(k, v) for k, v in CPU_PIN.items()})
    spec.write_text(json.dumps(data, indent=1))
