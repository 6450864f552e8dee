"""TinyTrain reproduction core. The rooms, in the order a run uses them:

profiles      every profile's sizes (smoke, default, paper), one section per stage; `settings()`
paths         where files live (results/, figures/, data/weights/, the shared reference folder)
runtime       the device and the channels_last layout
data/         embedded domains, episodes (Meta-Dataset sampler), loaders, augmentation;
              convert: the real Meta-Dataset records and MiniImageNet for the paper profile
models        the three MCU backbones as data; `Backbone.run(x, unit=...)` is the one topology
weights       the released int8 ImageNet weights: fetch, verify, load safely, dequantise
checkpoints   the one door to backbone weights: `create`, `load_backbone`, tensor-only .pt files
metaconfig    MetaConfig, `resolve`, the LR schedule       | notebook 01:
metatrain     ProtoNet meta-training, `pretrain`            |   offline stage
scratch       supervised pre-training without ImageNet      |
evaluate      frozen-feature episodes, the before/after table
schemes       UpdateScheme, the one currency: which weight slices and biases train
costs         analytic backward MACs and memory of a scheme
sparse        the engine that trains exactly a scheme
fisher, selection   TinyTrain: Fisher potential, budgeted layer/channel selection
methods/      Table 1's ten methods (and the ablations' Static): each maps a task to a scheme
heads, finetune     cosine ProtoNet head; fine-tuning one task
batched       many tasks per launch (vmap over per-task parameters; for a GPU)
adapt         notebook 02's runner: config, the plan per backbone, backbones, LR choice, `run`
shards        the same run as idempotent shards, on local processes or Ray
ablations     notebook 03's arms on 02's tasks: channels, Fisher choices, static, budgets
taskrows      its per-task CSV store (resume, repair, set-aside archives); analysis: summaries
measure       one measured step (FlopCounterMode, saved bytes); table2: notebook 04's table
results       `write_table`: a CSV and its JSON sidecar; stats: mean and paired 95% CIs
plots/        the figures: adaptation accuracy, layer choices, episode sizes, frozen
              accuracy, meta-training before/after and notebook 01's learning curves
findings      what the committed tables say, as sentences (notebooks' last section)
report        notebook 05: the paper's tables beside ours, the claims table, the README block
params, reproduce, bench, bench_batched, kernelspec   notebook parameter checks, `make reproduce`,
              `make bench`, `make throughput`
"""
