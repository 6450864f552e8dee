"""`make bench-batched`: tasks per second, one task per launch vs K tasks per launch (`batched.py`).

Paper-size tasks of random images (by default 10 ways x 10 shots = 100 support images, 10
queries per class, 40 steps), ImageNet weights, on CUDA when present, else this CPU. For
FullTrain and TinyTrain (its scheme from the real Fisher pass and selection at the model's
budgets, made once per task beforehand and timed apart, since it runs one task at a time both ways):

- one task per launch: `finetune.run_task` (the sparse engine), task after task;
- batched: `batched.fine_tune_many`, K tasks per call.

Both include the query evaluation. Printed, all measured in this one run: tasks/s each way and
their ratio, and the paper grid's projected hours on this device: 3 backbones x 9 domains x 10
methods x 200 tasks = 54,000 fine-tuning runs at the mean of the FullTrain and TinyTrain rates,
TinyTrain's selection included (validation runs, 4 LRs x 5 episodes per arm and domain, not counted).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from .nets import checkpoints
from . import profiles
from .training import schemes
from .training.batched import fine_tune_many
from .training.finetune import initial_state, run_task
from .methods import Context, get
from .runtime import CL, device, to_channels_last

GRID = 3 * 9 * 10 * 200


def _tasks(n: int, ways: int, shots: int, queries: int, g: torch.Generator) -> list[tuple]:
    def images(k):
        return to_channels_last(torch.rand(k, 3, 128, 128, generator=g) * 2 - 1)
    y = torch.arange(ways).repeat_interleave(shots)
    yq = torch.arange(ways).repeat_interleave(queries)
    return [(images(len(y)), y, images(len(yq)), yq) for _ in range(n)]


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mcunet-5fps")
    ap.add_argument("--tasks", type=int, default=16, help="K: tasks per batched launch (and tasks timed)")
    ap.add_argument("--ways", type=int, default=10)
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--steps", type=int, default=profiles.settings("paper", "adapt")["steps"])
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args(argv)
    dev = device()
    net = checkpoints.create(args.model, pretrained=True).backbone.to(dev).to(memory_format=CL).eval()
    state = initial_state(net)
    tasks = _tasks(args.tasks, args.ways, args.shots, args.queries, torch.Generator().manual_seed(0))
    kib, macs = profiles.budgets(args.model)
    ctx = Context(args.model, kib, macs)
    tiny = get("TinyTrain")
    sel = []
    tiny_schemes = []
    for t in tasks:
        net.load_state_dict(state)
        s, sec = tiny.timed_scheme(net, t[0].to(dev), t[1].to(dev), ctx)
        tiny_schemes.append(s)
        sel.append(sec)
    select_s = statistics.median(sel[1:] or sel)       # the first pays one-off kernel set-up
    plans = {"FullTrain": [schemes.full_train(net.conv_shapes())] * len(tasks), "TinyTrain": tiny_schemes}
    name = torch.cuda.get_device_name() if dev == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model} on {name}: {args.tasks} tasks of {args.ways} ways x {args.shots} shots "
          f"({args.ways * args.shots} support, {args.ways * args.queries} queries), {args.steps} steps")
    out = {}
    for method, sch in plans.items():
        lrs, seeds = [args.lr] * len(tasks), list(range(len(tasks)))
        fine_tune_many(net, state, sch[:2], tasks[:2], 1, lrs[:2], seeds[:2])       # warm-up, both paths
        run_task(net, state, sch[0], *tasks[0], 1, args.lr, seed=0)
        _sync()
        t0 = time.perf_counter()
        for k, t in enumerate(tasks):
            run_task(net, state, sch[k], *t, args.steps, args.lr, seed=k)
        _sync()
        one = len(tasks) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        fine_tune_many(net, state, sch, tasks, args.steps, lrs, seeds)
        _sync()
        many = len(tasks) / (time.perf_counter() - t0)
        extra = select_s if method == "TinyTrain" else 0.0
        out[method] = dict(one=one, batched=many, with_selection=1 / (1 / many + extra))
        print(f"  {method:<9} one task per launch {one:7.2f} tasks/s   batched (K={args.tasks}) {many:7.2f} tasks/s"
              f"   RATIO batched/one = {many / one:.2f}"
              + (f"   (+ selection {select_s:.2f} s/task: {out[method]['with_selection']:.2f} tasks/s)"
                 if extra else ""))
    for way in ("one", "batched"):
        rate = statistics.mean([out["FullTrain"][way], 1 / (1 / out["TinyTrain"][way] + select_s)])
        print(f"paper grid ({GRID:,} runs), {way}: {GRID / rate / 3600:.1f} h on this device "
              f"({rate:.2f} tasks/s; goal < 1 h: about 15 tasks/s)")
    return out


if __name__ == "__main__":
    main()
