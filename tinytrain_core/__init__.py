"""TinyTrain reproduction core. The parts, in the order a run uses them (each subpackage's
docstring lists its modules):

profiles, paths, runtime     every profile's sizes; where files live; device, threads, CPU kernel pin
results, stats               write_table / read_table (CSV + JSON sidecar); means, paired t CIs, orders
reference/                   the paper's tables and SparseUpdate's released schemes (package data)
data/                        embedded domains, episodes (Meta-Dataset sampler), loaders, augmentation,
                             the Meta-Dataset / MiniImageNet converters             notebook 00
nets/                        the three MCU backbones as data, their ImageNet weights, checkpoints,
                             adapter branches
training/                    the method's machinery: UpdateScheme, costs, measured costs, Fisher
                             potential, budgeted selection, the sparse engine, heads, fine-tuning,
                             batched tasks, budget sweeps
methods/                     Table 1's ten methods (+ Static), each a map from a task to a scheme;
                             SparseUpdate's contribution search
offline/                     meta-training, scratch pre-training, frozen evaluation   notebook 01
experiment/                  the online run (adapt: config, backbones, tasks, LRs, runner, shards,
                             task rows, summaries), the ablations and Table 2         notebooks 02-04
report/                      findings (sentences), the report (inputs, tables, claims, figures,
                             README block) and every figure (plots/)                  notebook 05
params, reproduce, comparison, lock   notebook parameter checks; `make reproduce`, its comparison
                             with the committed reference, one run per checkout and profile
bench, bench_batched, kernelspec   `make bench`, `make throughput`, the Jupyter kernel's environment

Imports go one way, down this list's layers (plumbing -> data, nets -> training -> methods ->
offline -> experiment -> report): no module imports one that imports it back.
"""
import os

# Bit-identical results on any x86-64 CPU. ATen, oneDNN and MKL pick their CPU kernels by the
# instruction set they find (AVX2 vs AVX-512 sum in different orders): a meta checkpoint trained
# on an AVX-512 machine differed from the AVX2 one. Each reads its variable when its first kernel
# runs, so setting them on import (before any tensor op) pins every process that imports this
# package; the Makefile, the Jupyter kernel spec and Ray's workers set them too. MKL_CBWR is
# MKL's conditional numerical reproducibility: the AVX2 code path on any CPU that has AVX2.
# Bit-identity also needs the same number of threads (reductions split over threads): task rows
# train on one thread, meta-training on `runtime.META_THREADS` (2) on every machine.
# An explicit value in the environment wins (e.g. ATEN_CPU_CAPABILITY=avx512, to measure the cost).
CPU_PIN = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
for _name, _value in CPU_PIN.items():
    os.environ.setdefault(_name, _value)
