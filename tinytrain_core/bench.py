"""`make bench`: speed ratios measured in one process, so machine load cancels out.

1. One training step of FullTrain vs one of TinyTrain (its default-budget scheme), both through
   the sparse engine, mcunet-5fps, batch 25, channels_last: forward, cosine-ProtoNet loss,
   backward, Adam step. Median of REPS interleaved repetitions after warm-up. Target <= 0.4.
2. A whole TinyTrain task as `adapt` runs it (Fisher pass + selection, then `steps` fine-tuning
   steps on support + augmented pseudo-queries): the share of the Fisher pass and selection in
   the task's time. Target <= 15%.
3. End to end, on the same tasks (the default profile's test episodes when built, else random
   images of that size), one thread, interleaved: a TinyTrain task (selection + fine-tuning +
   evaluation, with the exact frozen-prefix cache) against a FullTrain task, and TinyTrain
   without the cache. Target TinyTrain/FullTrain <= 0.25.
4. Issue 23's two speed-ups (`--speedups` runs only this part), one thread, interleaved, medians:
   a FullTrain task (`run_task`: fine-tuning + evaluation) through the sparse engine against the
   same task by plain autograd (`full_autograd=True`, `training/dense.py`), one default test
   episode per repetition; and DiffAugment's translation of a 15 x 3 x 128 x 128 batch (the default
   profile's support cap) by the former padded gather against the slices (`data.loading.translate`).
5. `--pin-cost` (only this part): what the CPU kernel pin (`tinytrain_core.CPU_PIN`, AVX2) costs on a machine
   that has more: two worker processes, one pinned and one on the machine's best kernels
   (ATEN_CPU_CAPABILITY=avx512 ONEDNN_MAX_CPU_ISA=AVX512_CORE MKL_CBWR=AUTO), run the same FullTrain and
   TinyTrain tasks of the default size, one thread each, taking turns; the ratio of medians.
Run with GLIBC_TUNABLES set (the Makefile exports it): glibc's allocator otherwise dominates.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from .data.loading import finetune_draws, translate
from .nets import checkpoints
from . import profiles
from .training import schemes
from .training.costs import scheme_costs
from .training.finetune import initial_state, run_task, train_scheme
from .training.heads import CosineHead, prototypes
from .methods import Context, get
from .runtime import CL, one_thread, to_channels_last
from .training.sparse import SparseEngine


def _step_timer(net, scheme, x, y):
    engine = SparseEngine(net, scheme)
    head = CosineHead()
    opt = torch.optim.Adam(engine.parameters() + list(head.parameters()), lr=1e-4)

    def step():
        t0 = time.perf_counter()
        f = engine(x)
        loss = F.cross_entropy(head(f, prototypes(f, y)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mcunet-5fps")
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--ways", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=profiles.settings("default", "adapt")["steps"])
    ap.add_argument("--tasks", type=int, default=6, help="tasks of the end-to-end comparison")
    ap.add_argument("--pin-cost", action="store_true", help="only part 5: the CPU kernel pin's cost")
    ap.add_argument("--speedup-reps", type=int, default=5, help="repetitions of part 4 (issue 23's speed-ups)")
    ap.add_argument("--speedups", action="store_true", help="run part 4 only")
    args = ap.parse_args(argv)
    if args.pin_cost:
        return pin_cost(args.model, args.steps, args.reps)
    if "GLIBC_TUNABLES" not in os.environ:
        print("warning: GLIBC_TUNABLES is not set; run through `make bench` for representative timings")
    torch.manual_seed(0)
    net = checkpoints.create(args.model, pretrained=True).backbone.to(memory_format=CL).eval()
    state = initial_state(net)
    if args.speedups:
        return speedups(net, state, args.steps, args.speedup_reps)
    shapes = net.conv_shapes()
    x = to_channels_last(torch.rand(args.batch, 3, 128, 128) * 2 - 1)
    y = torch.arange(args.batch) % args.ways
    ctx = Context(args.model, profiles.MEMORY_KIB, profiles.COMPUTE_MACS)

    tiny = get("TinyTrain")
    net.load_state_dict(state)
    scheme, _ = tiny.timed_scheme(net, x, y, ctx)
    full = schemes.full_train(shapes)
    print(f"{args.model}, batch {args.batch}, channels_last, {torch.get_num_threads()} threads")
    for s in (full, scheme):
        c = scheme_costs(shapes, s)
        print(f"  {s.name:<10} {len(s.trained_layers):>2} convs  backward {c.backward_macs / 1e6:6.2f} M "
              f"MACs/sample, {c.memory_kib:7.1f} KiB (tiny_training_int8)")

    timers = {}
    for s in (full, scheme):
        net.load_state_dict(state)
        timers[s.name] = _step_timer(net, s, x, y)
    times = {k: [] for k in timers}
    for _ in range(2):                       # warm-up
        for t in timers.values():
            t()
    for _ in range(args.reps):               # interleaved, so load changes hit both alike
        for k, t in timers.items():
            times[k].append(t())
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med[scheme.name] / med[full.name]
    print(f"step time (median of {args.reps}): FullTrain {med[full.name]:.3f} s, "
          f"TinyTrain {med[scheme.name]:.3f} s")
    verdict = "PASS" if ratio <= 0.4 else "FAIL"
    print(f"RATIO TinyTrain/FullTrain step = {ratio:.3f}  (target <= 0.4: {verdict})")

    select_times = []
    for _ in range(3):   # the first Fisher pass of a process pays oneDNN's one-off set-up, so: median
        net.load_state_dict(state)
        scheme, s = tiny.timed_scheme(net, x, y, ctx)
        select_times.append(s)
    select_s = statistics.median(select_times)
    net.load_state_dict(state)
    t1 = time.perf_counter()
    train_scheme(net, scheme, x, y, args.steps, 1e-3, seed=0)    # augment: the 'finetune' pseudo-queries
    train_s = time.perf_counter() - t1
    share = select_s / (select_s + train_s)
    print(f"task: Fisher + selection {select_s:.2f} s (median of 3), {args.steps} fine-tuning steps {train_s:.2f} s "
          f"(support {args.batch} + {args.batch} pseudo-queries)")
    verdict = "PASS" if share <= 0.15 else "FAIL"
    print(f"SHARE of selection in the task = {100 * share:.1f}%  (target <= 15%: {verdict})")
    paper_steps = profiles.settings("paper", "adapt")["steps"]
    if args.steps != paper_steps:
        long = select_s / (select_s + train_s * paper_steps / args.steps)
        print(f"  (with the paper profile's {paper_steps} steps, extrapolated: {100 * long:.1f}%)")
    net.load_state_dict(state)
    end_to_end(net, state, ctx, args.steps, args.tasks)
    speedups(net, state, args.steps, args.speedup_reps)
    return ratio, share


def _bench_tasks(n: int):
    """n tasks of the default profile's size: its test episodes when built, else random images."""
    from . import data
    domains = data.target_domains("default")
    if domains:
        cfg = data.episode_config("default", **profiles.settings("default", "adapt")["episode"])
        eps = [e for d in domains for e in data.sample_episodes(d, "test", 1, cfg, seed=0, profile="default")][:n]
        return [data.episode_tensors(e, channels_last=True) for e in eps], f"{len(eps)} default test episodes"
    g = torch.Generator().manual_seed(0)

    def images(k):
        return to_channels_last(torch.rand(k, 3, 128, 128, generator=g) * 2 - 1), torch.arange(k) % 5
    return [(*images(15), *images(50)) for _ in range(n)], f"{n} random 5-way tasks (15 support, 50 queries)"


def end_to_end(net, state, ctx, steps: int, n_tasks: int) -> float:
    """Part 3 of the module docstring; returns TinyTrain/FullTrain."""
    tasks, what = _bench_tasks(n_tasks)
    full, tiny = get("FullTrain"), get("TinyTrain")
    total = {"FullTrain": 0.0, "TinyTrain": 0.0, "TinyTrain, no cache": 0.0}
    with one_thread():
        for t in tasks:
            for name, method, cache in (("FullTrain", full, True), ("TinyTrain", tiny, True),
                                        ("TinyTrain, no cache", tiny, False)):
                t0 = time.perf_counter()
                net.load_state_dict(state)
                scheme, _ = method.timed_scheme(net, t[0], t[1], ctx)
                run_task(net, state, scheme, *t, steps, 1e-3, seed=0, cache=cache)
                total[name] += time.perf_counter() - t0
    ratio = total["TinyTrain"] / total["FullTrain"]
    print(f"end to end, {what}, {steps} steps, one thread: FullTrain {total['FullTrain']:.1f} s, TinyTrain "
          f"{total['TinyTrain']:.1f} s, TinyTrain without the prefix cache {total['TinyTrain, no cache']:.1f} s")
    print(f"RATIO TinyTrain/FullTrain task = {ratio:.3f}  (target <= 0.25: {'PASS' if ratio <= 0.25 else 'FAIL'}); "
          f"cache speed-up of TinyTrain {total['TinyTrain, no cache'] / total['TinyTrain']:.2f}x")
    return ratio


UNPINNED = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AUTO"}


def _task_worker(conn, model: str, steps: int):
    """A process that times one task per request: ('FullTrain' | 'TinyTrain', task index) -> s."""
    from .runtime import cpu_kernels
    torch.set_num_threads(1)
    net = checkpoints.create(model, pretrained=True).backbone.to(memory_format=CL).eval()
    state, (tasks, _) = initial_state(net), _bench_tasks(3)
    ctx = Context(model, profiles.MEMORY_KIB, profiles.COMPUTE_MACS)
    conn.send(cpu_kernels()["aten_cpu_capability"])
    while (job := conn.recv()) is not None:
        method, i = get(job[0]), job[1]
        t0 = time.perf_counter()
        net.load_state_dict(state)
        scheme, _ = method.timed_scheme(net, tasks[i][0], tasks[i][1], ctx)
        run_task(net, state, scheme, *tasks[i], steps, 1e-3, seed=0)
        conn.send(time.perf_counter() - t0)


def pin_cost(model: str, steps: int, reps: int) -> dict:
    """Part 5 of the module docstring; returns {method: pinned / unpinned median task time}."""
    import multiprocessing
    from . import CPU_PIN
    ctx_mp, workers = multiprocessing.get_context("spawn"), {}
    for label, env in (("pinned", CPU_PIN), ("unpinned", UNPINNED)):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)                     # a spawned child starts with this environment
        parent, child = ctx_mp.Pipe()
        proc = ctx_mp.Process(target=_task_worker, args=(child, model, steps), daemon=True)
        proc.start()
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        workers[label] = (proc, parent, parent.recv())
    print("kernels: " + ", ".join(f"{k} {w[2]}" for k, w in workers.items()))
    times = {(lab, m): [] for lab in workers for m in ("FullTrain", "TinyTrain")}
    for r in range(reps + 1):                       # round 0: warm-up, not counted
        for m in ("FullTrain", "TinyTrain"):
            for lab, (_, conn, _) in workers.items():
                conn.send((m, r % 3))
                took = conn.recv()
                if r:
                    times[(lab, m)].append(took)
    for proc, conn, _ in workers.values():
        conn.send(None)
        proc.join()
    out = {}
    for m in ("FullTrain", "TinyTrain"):
        pinned, free = (statistics.median(times[(lab, m)]) for lab in ("pinned", "unpinned"))
        out[m] = pinned / free
        print(f"{m} task ({steps} steps, one thread, median of {reps}): pinned {pinned:.2f} s, "
              f"unpinned {free:.2f} s -> RATIO pinned/unpinned = {out[m]:.3f}")
    return out
def _padded_gather(x, dy, dx):
    """DiffAugment's translation before issue 23 (pad by one, clamp, whole-batch gather), kept
    only to time `translate` against; `tests/test_translation.py` checks the two agree bit for bit."""
    n, _, h, w = x.shape
    rows = (torch.arange(h)[None, :] + dy[:, None]).clamp(-1, h) + 1
    cols = (torch.arange(w)[None, :] + dx[:, None]).clamp(-1, w) + 1
    out = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], rows[:, :, None],
                                                     cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous(memory_format=CL)


def _timed_pair(slow, fast, swap: bool) -> tuple[float, float]:
    """(slow(), fast()) wall times, run in the order given by `swap`, so drift hits both alike."""
    t = {}
    for name, f in ((("fast", fast), ("slow", slow)) if swap else (("slow", slow), ("fast", fast))):
        t0 = time.perf_counter()
        f()
        t[name] = time.perf_counter() - t0
    return t["slow"], t["fast"]


def speedups(net, state, steps: int, reps: int) -> tuple[float, float]:
    """Part 4 of the module docstring; returns the median ratios (engine / autograd FullTrain task,
    gather / slice translation)."""
    tasks, what = _bench_tasks(reps)
    full = schemes.full_train(net.conv_shapes())

    def task(k, on):
        return lambda: run_task(net, state, full, *tasks[k], steps, 1e-3, seed=k, full_autograd=on)
    g = torch.Generator().manual_seed(0)
    x = to_channels_last(torch.rand(15, 3, 128, 128, generator=g) * 2 - 1)
    d = finetune_draws(15, 128, 128, g, p=1.0)
    with one_thread():
        for on in (False, True):      # warm-up: oneDNN's one-off set-up of each path
            run_task(net, state, full, *tasks[0], 1, 1e-3, full_autograd=on)
        pairs = [_timed_pair(task(r % len(tasks), False), task(r % len(tasks), True), r % 2 == 1) for r in range(reps)]
        moves = [_timed_pair(lambda: _padded_gather(x, d["dy"], d["dx"]), lambda: translate(x, d["dy"], d["dx"]),
                             r % 2 == 1) for r in range(10 * reps + 4)][4:]
    task_ratio = statistics.median(a / b for a, b in pairs)
    move_ratio = statistics.median(a / b for a, b in moves)
    print(f"issue 23, one thread, {what}, {steps} steps: FullTrain task engine "
          f"{statistics.median(a for a, _ in pairs):.1f} s, autograd {statistics.median(b for _, b in pairs):.1f} s "
          f"(medians of {reps})")
    print(f"RATIO FullTrain task engine/autograd = {task_ratio:.2f} (median of {reps} per-task ratios; "
          f"each: {', '.join(f'{a / b:.2f}' for a, b in pairs)})")
    print(f"RATIO translation gather/slices (15 x 3 x 128 x 128) = {move_ratio:.1f} (median of {len(moves)}; "
          f"{statistics.median(a for a, _ in moves) * 1e3:.2f} ms vs {statistics.median(b for _, b in moves) * 1e3:.2f} ms)")
    return task_ratio, move_ratio


if __name__ == "__main__":
    main()
