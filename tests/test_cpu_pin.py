"""The same bits on any x86-64 CPU: every entry point runs ATen's and oneDNN's AVX2 kernels
(`tinytrain_core.CPU_PIN`), whatever the machine offers beyond them."""
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinytrain_core import CPU_PIN
from tinytrain_core.experiment import shards
from tinytrain_core.runtime import cpu_kernels

ROOT = Path(__file__).resolve().parent.parent
HAS_AVX2 = "avx2" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else False
pytestmark = pytest.mark.skipif(not HAS_AVX2, reason="this CPU has no AVX2: the pin cannot apply")

PROBE = "import json, tinytrain_core; from tinytrain_core.runtime import cpu_kernels; print(json.dumps(cpu_kernels()))"


def _unpinned_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in CPU_PIN}


def test_a_fresh_process_that_imports_the_package_runs_the_pinned_kernels():
    out = subprocess.run([sys.executable, "-c", PROBE], env=_unpinned_env(), capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["aten_cpu_capability"] == "AVX2"


def test_an_explicit_choice_in_the_environment_wins_over_the_pin():
    env = {**_unpinned_env(), "ATEN_CPU_CAPABILITY": "default"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["aten_cpu_capability"] == "DEFAULT"


def _capability(_):
    return cpu_kernels()["aten_cpu_capability"]


def test_spawned_workers_run_the_pinned_kernels():
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.map(_capability, [0]) == ["AVX2"]


def test_ray_workers_and_the_makefile_get_the_pin():
    env = shards._environment()
    assert {k: env.get(k) for k in CPU_PIN} == {k: os.environ[k] for k in CPU_PIN}
    make = (ROOT / "Makefile").read_text()
    assert all(f"export {k} ?= {v}" in make for k, v in CPU_PIN.items())


def test_the_installed_jupyter_kernel_gets_the_pin():
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "tinytrain" / "kernel.json"
    if not spec.is_file():
        pytest.skip("no tinytrain kernel in this environment (make setup installs it)")
    env = json.loads(spec.read_text()).get("env", {})
    assert {k: env.get(k) for k in CPU_PIN} == CPU_PIN, f"{spec}: rerun `make setup`"


def test_a_run_records_the_kernels_it_ran():
    k = cpu_kernels()
    assert k["aten_cpu_capability"] == "AVX2" and k["ONEDNN_MAX_CPU_ISA"] == "AVX2"
