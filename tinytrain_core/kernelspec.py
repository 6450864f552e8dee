"""Add the CPU allocator setting to the venv's Jupyter kernel, so notebooks opened in
JupyterLab train as fast as `make` runs (GLIBC_TUNABLES must be set before the process starts).
Usage: python -m tinytrain_core.kernelspec KERNEL_NAME"""
import json
import sys
from pathlib import Path

TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"

if __name__ == "__main__":
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / sys.argv[1] / "kernel.json"
    data = json.loads(spec.read_text())
    data.setdefault("env", {})["GLIBC_TUNABLES"] = TUNABLES
    spec.write_text(json.dumps(data, indent=1))
