# TinyTrain reproduction suite. `make help` lists the targets; `make` is the DAG.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PROFILE ?= default
PYTHON_BOOT ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
KERNEL := tinytrain
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# glibc's allocator dominates CPU training time at batch >= 25 (see README): must be set
# before the process starts. Defined only here; `make setup` copies it into the kernel spec.
export GLIBC_TUNABLES := glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736
export PYTHONHASHSEED := 0
# The same bits on any x86-64 CPU: ATen's, oneDNN's and MKL's kernels pinned to AVX2 (tinytrain_core.CPU_PIN
# says why; importing the package sets the same defaults, the kernel spec and Ray's workers get them).
export ATEN_CPU_CAPABILITY ?= avx2
export ONEDNN_MAX_CPU_ISA ?= AVX2
export MKL_CBWR ?= AVX2
# Weights travel beside the checkout on CI and dev machines; elsewhere `make weights` downloads.
SHARED_WEIGHTS := $(abspath ../shared/weights/tiny-training)
ifeq ($(origin TINYTRAIN_WEIGHTS_DIR), undefined)
ifneq ($(wildcard $(SHARED_WEIGHTS)/mcunet-5fps.pkl),)
export TINYTRAIN_WEIGHTS_DIR := $(SHARED_WEIGHTS)
endif
endif

.PHONY: help setup weights data fixture domain reproduce compare notebooks test unit nbval bench throughput lint clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  PROFILE=smoke|default|paper (now: $(PROFILE))"

setup: $(VENV)/.installed ## create .venv (Python 3.11) with the pinned dependencies and the Jupyter kernel
$(VENV)/.installed: pyproject.toml tinytrain_core/kernelspec.py tinytrain_core/__init__.py
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "TinyTrain (.venv)" >/dev/null
	$(PY) -m tinytrain_core.kernelspec $(KERNEL)
	@touch $@

weights: setup ## place the three ImageNet weight files in data/weights/ (sha256-checked)
	$(PY) -m tinytrain_core.nets.weights

data: export DOMAIN := $(value DOMAIN)
data: setup ## install the embedded sources and render all domains + episodes for PROFILE (DOMAIN=name: one domain)
	$(PY) -m tinytrain_core.data build --profile $(PROFILE) $${DOMAIN:+--domain "$$DOMAIN"}

fixture: setup ## generate the tiny font-glyph fixture domains used by smoke runs and CI (seconds)
	$(PY) -m tinytrain_core.data fixture

# SRC and NAME reach the shell as environment variables, never pasted into the command line:
# a name with quotes or `;` stays one harmless argument.
domain: export SRC := $(value SRC)
domain: export NAME := $(value NAME)
domain: setup ## turn a folder of class subfolders into a domain: make domain SRC=path NAME=name [FORCE=1]
	@test -n "$$SRC" -a -n "$$NAME" || { echo "usage: make domain SRC=path/to/folder NAME=name [FORCE=1]"; exit 2; }
	$(PY) -m tinytrain_core.data domain --src "$$SRC" --name "$$NAME" $(if $(FORCE),--force)

# The paper's real data (tinytrain_core/data/convert.py). Paths and options reach the shell as
# environment variables, as for `domain`. Either path may be left out; what is already
# converted is skipped unless FORCE=1, so an interrupted run resumes.
.PHONY: metadataset
metadataset: export RECORDS := $(value RECORDS)
metadataset: export MINI := $(value MINI)
metadataset: export SOURCES := $(value SOURCES)
metadataset: export MAX_PER_CLASS := $(value MAX_PER_CLASS)
metadataset: setup ## convert the real Meta-Dataset (RECORDS=path to its records root) and MiniImageNet (MINI=path) into domains for PROFILE=paper [SOURCES=a,b MAX_PER_CLASS=N FORCE=1]
	@test -n "$$RECORDS$$MINI" || { echo "usage: make metadataset RECORDS=path/to/records MINI=path/to/miniimagenet [SOURCES=a,b] [MAX_PER_CLASS=N] [FORCE=1]"; exit 2; }
	@if [ -n "$$RECORDS" ]; then $(PY) -m tinytrain_core.data convert-md --records "$$RECORDS" $${SOURCES:+--sources "$$SOURCES"} $${MAX_PER_CLASS:+--max-per-class "$$MAX_PER_CLASS"} $(if $(FORCE),--force); fi
	@if [ -n "$$MINI" ]; then $(PY) -m tinytrain_core.data convert-mini --src "$$MINI" $(if $(FORCE),--force); fi

reproduce: setup reproduce-free weights data ## run every numbered notebook in order for PROFILE (resumes an interrupted run; FRESH=1 starts over), then compare with the committed tables
	$(PY) -m tinytrain_core.reproduce --profile $(PROFILE) $(if $(FRESH),--fresh)

# A run of PROFILE already under way in this checkout: refused here, before `make data` could
# rebuild the data it reads (the run itself holds the lock: tinytrain_core/lock.py).
.PHONY: reproduce-free
reproduce-free: setup ## refuse at once when a `make reproduce` of PROFILE runs in this checkout (make reproduce's first step)
	@$(PY) -m tinytrain_core.reproduce --profile $(PROFILE) --check-lock

compare: setup ## compare results/PROFILE with the committed reference kept by the last `make reproduce`
	$(PY) -m tinytrain_core.reproduce --profile $(PROFILE) --compare-only

notebooks: setup fixture ## developers: re-execute the committed notebooks with their smoke parameters (no progress-bar output) before committing them
	$(PY) -m tinytrain_core.reproduce --refresh-committed

test: setup fixture unit nbval ## unit tests + nbval of the notebooks with their smoke parameters

unit: setup
	$(PY) -m pytest -q tests

nbval: setup fixture
	$(PY) -m pytest -q --nbval-lax --nbval-kernel-name $(KERNEL) -p no:cacheprovider $(NOTEBOOKS)

bench: setup ## print speed ratios measured in one run (sparse vs full training step, selection share)
	$(PY) -m tinytrain_core.bench

throughput: setup ## tasks per second, one task per launch vs batched (batched.py), and the paper grid's projected hours; CUDA when present
	$(PY) -m tinytrain_core.bench_batched

lint: setup ## static checks (ruff)
	$(VENV)/bin/ruff check tinytrain_core tests

clean: ## remove generated results of PROFILE=smoke, caches and executed notebooks (keeps data/ and .venv)
	rm -rf results/smoke figures/smoke .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
