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
params, reproduce            notebook parameter checks; `make reproduce`
bench, bench_batched, kernelspec   `make bench`, `make throughput`, the Jupyter kernel's environment

Imports go one way, down this list's layers (plumbing -> data, nets -> training -> methods ->
offline -> experiment -> report): no module imports one that imports it back.
"""
