"""``unlearn bench --executor ray``: the grid's cells as Ray tasks (install the ``ray`` extra).

The grid is a small dependency graph: each benchmark split's target and gold models are tasks, and every cell
of the split is a task that Ray starts once both are built. A cell task builds its benchmark exactly as the
local executor does (``unlearn.cells.bench_kwargs``) and runs the same ``compute_cell``, so it writes the same
cell file under the same lock: a rerun, local or on Ray, resumes from whatever finished. A worker that dies
mid-cell loses that cell only (Ray retries the task on another worker); a cell that fails is reported with its
error and the others go on.

Resources: each task asks for ``--cpus-per-cell`` CPUs (its torch threads) and, on CUDA, ``--gpu-fraction`` of
a GPU (default: what a 10 GiB cap is of the first GPU's memory, so several capped cells share one large GPU;
each task caps its own process to that share). Workers get the numerics pins in their environment before
torch loads, so the tiny tier computes the same bits as the local executor.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

GIB = 2**30
CELL_CAP_BYTES = 10 * GIB  # the research target's budget: one cell fits in 10 GiB (docs/guide.md, GPU tier)
RETRIES = 2  # a cell task is retried this many times when its worker process dies


def worker_env(cpus: int) -> dict[str, str]:
    """Environment for Ray's worker processes: the numerics pins with this many threads, and the cache and data
    folders the driver uses."""
    from unlearn.numerics import PINS, pins_disabled

    env = {} if pins_disabled() else {**PINS, "OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus)}
    for name in ("UNLEARN_CACHE_DIR", "UNLEARN_DATA_DIR", "UNLEARN_NUMERICS", "HF_HUB_OFFLINE"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def start_ray(address: str | None = None, num_cpus: int | None = None, cpus_per_cell: int = 1) -> None:
    """Join the cluster at ``address``, or start a local Ray instance (``num_cpus``: its CPUs, default all). Its
    workers run at the normal priority (Ray's default niceness would let any other process on the machine take
    the cores from the cells) with the numerics pins in their environment."""
    import ray

    os.environ.setdefault("RAY_worker_niceness", "0")  # read by the raylet this call starts
    ray.init(address=address, num_cpus=None if address else num_cpus,
             runtime_env={"env_vars": worker_env(cpus_per_cell)}, include_dashboard=False, log_to_driver=False,
             configure_logging=False)


def gpu_share(args) -> float:
    """The GPU fraction a cell asks for: --gpu-fraction, else the 10 GiB cap over the first GPU's memory."""
    if not str(args.device).startswith(("cuda", "auto")):
        return 0.0
    import torch

    if not torch.cuda.is_available():
        return 0.0
    if args.gpu_fraction is not None:
        return args.gpu_fraction
    return min(1.0, CELL_CAP_BYTES / torch.cuda.get_device_properties(0).total_memory)


def _in_worker(args, cpus: int, gpu: float):
    """A task's process: its thread count, and on CUDA the device Ray assigned and the memory cap."""
    import dataclasses

    import torch

    torch.set_num_threads(cpus)
    if gpu > 0:
        torch.cuda.set_per_process_memory_fraction(min(1.0, gpu), 0)
        return dataclasses.replace(args, device="cuda", progress=False)  # Ray's CUDA_VISIBLE_DEVICES: one GPU
    return dataclasses.replace(args, progress=False)


def _shared_gold(b: str) -> bool:
    """One target and one main gold for every split of ``b`` (MUSE's; each step's gold is built by its cell), or a
    gold per split."""
    from unlearn.benchmarks import BENCHMARKS

    return not BENCHMARKS.get(b).models_per_split


def _runner(args, b: str, cpus: int, gpu: float):
    """(args as a worker runs them, benchmark ``b`` built as the local executor builds it) in a task's process."""
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.cells import bench_kwargs

    args = _in_worker(args, cpus, gpu)
    return args, BENCHMARKS.get(b)(args.model, **bench_kwargs(args, b))


def build_models(args, b: str, s: str, cpus: int, gpu: float) -> str:
    """Train (or find in the cache) the target and gold models of benchmark ``b``'s split ``s``."""
    _, runner = _runner(args, b, cpus, gpu)
    runner.target_dir(s)
    runner.gold_dir(s)
    return f"{b}:{s}"


def run_one(args, b: str, s: str, m: str, path: str, why: str | None, out: str, cpus: int, gpu: float,
            *_models: str) -> tuple[str, dict, str]:
    """One cell in a Ray worker: ``unlearn.cells.compute_cell``, as the local executor runs it."""
    from unlearn.cells import compute_cell

    args, runner = _runner(args, b, cpus, gpu)
    return compute_cell(runner, b, s, m, args, Path(path), why, Path(out))


def run_on_ray(args, grid: list[tuple], keys: list[str], todo: list[tuple[int, str | None]], cell_dir: Path,
               out: Path, log) -> dict[int, tuple[str, dict, str]]:
    """Run ``todo`` (grid indices, with why an existing file is not reused) as Ray tasks; {index: result}."""
    try:
        import ray
    except ImportError:
        raise ModuleNotFoundError("--executor ray needs Ray: pip install 'unlearn-eval[ray]' (or pip install ray)") from None
    from tqdm.auto import tqdm

    cpus, gpu = args.cpus_per_cell, gpu_share(args)
    started_here = not ray.is_initialized()
    if started_here:
        start_ray(args.address, cpus_per_cell=cpus)
    try:
        build = ray.remote(num_cpus=cpus, num_gpus=gpu, max_retries=RETRIES)(build_models)
        cell = ray.remote(num_cpus=cpus, num_gpus=gpu, max_retries=RETRIES)(run_one)
        models, pending = {}, {}
        for j, why in todo:
            b, s, m = grid[j]
            dep = (b, "all" if _shared_gold(b) else s)
            if dep not in models:
                models[dep] = build.remote(args, b, s, cpus, gpu)
            ref = cell.remote(args, b, s, m, str(cell_dir / f"{keys[j]}.json"), why, str(out), cpus, gpu, models[dep])
            pending[ref] = j
        results: dict[int, tuple[str, dict, str]] = {}
        failed = 0
        with tqdm(total=len(pending), desc="cells (ray)", disable=not args.progress) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
                for ref in ready:
                    j = pending.pop(ref)
                    b, s, m = grid[j]
                    try:
                        results[j] = ray.get(ref)
                    except Exception as err:  # noqa: BLE001  (a cell's own error, retries spent: reported, not fatal)
                        message = str(err).strip().splitlines()[-1][:500] if str(err).strip() else type(err).__name__
                        results[j] = ("failed", {"benchmark": b, "split": s, "method": m, "error": message},
                                      f"FAILED {b}/{s}/{m}: {message}; the other cells go on")
                    failed += results[j][0] == "failed"
                    log(results[j][2])
                    bar.update(1)
                bar.set_postfix_str(f"left {len(pending)}, failed {failed}")
        return results
    finally:
        if started_here:
            ray.shutdown()
            time.sleep(0.5)  # let Ray's processes exit before the driver reads what they wrote


# ---------------------------------------------------------------- the order of a worker pool's cells
EXHAUSTIVE = 4096  # assignments tried one by one up to this many (workers ** tasks); beyond, longest first


def plan_assignment(loads: list[float], costs: list[float]) -> list[int]:
    """A worker for each task (an index into ``loads``, the work each worker already has) such that the last
    worker finishes as early as possible: every assignment is tried when there are few (a handful of cells on 2
    workers, where longest-first can be a whole cell late: costs 1.6, 1.25, 1, 1, 1 on two workers end at 3.25
    longest first, at 3.0 as 1.6 + 1.25 against 1 + 1 + 1), else longest first to the least loaded. Ties go to the
    first assignment found, so the plan depends on the costs only."""
    n, w = len(costs), len(loads)
    if n == 0:
        return []
    if w ** n <= EXHAUSTIVE:
        best, best_key = None, None
        for assign in itertools.product(range(w), repeat=n):
            finish = list(loads)
            for t, k in enumerate(assign):
                finish[k] += costs[t]
            key = sorted(finish, reverse=True)
            if best_key is None or key < best_key:
                best, best_key = assign, key
        return list(best)
    finish, out = list(loads), [0] * n
    for t in sorted(range(n), key=lambda t: (-costs[t], t)):
        k = min(range(w), key=lambda k: (finish[k], k))
        out[t], finish[k] = k, finish[k] + costs[t]
    return out


def pick_next(busy: list[float], costs: list[float]) -> int:
    """The task (index into ``costs``) that a worker free now should start, given the other workers' remaining
    work ``busy`` (0 for a worker whose end is not estimated: it counts as free too): the longest task of the
    plan's (``plan_assignment``) list for a free worker, the free list with the most work when several are free,
    so that a worker that frees up later gets the shorter list."""
    loads = [0.0, *busy]
    assign = plan_assignment(loads, costs)
    totals = [loads[k] + sum(c for c, a in zip(costs, assign) if a == k) for k in range(len(loads))]
    mine = max((k for k in range(len(loads)) if loads[k] == 0.0), key=lambda k: (totals[k], -k))
    tasks = [t for t, a in enumerate(assign) if a == mine] or list(range(len(costs)))
    return max(tasks, key=lambda t: (costs[t], -t))


# ---------------------------------------------------------------- worker processes on one machine (--workers N)
def _process_train(args, b: str, split: str, kind: str, cpus: int) -> str:
    """A worker process's model task: train (or find in the cache) benchmark ``b``'s target (``kind`` "target")
    or split ``split``'s gold."""
    _, runner = _runner(args, b, cpus, 0.0)
    (runner.target_dir if kind == "target" else runner.gold_dir)(split)
    return f"{b}:{kind}:{split}"


def _process_reference(args, b: str, splits: list[str], kind: str, cpus: int) -> str:
    """A worker process's reference task: the trained target's or gold's evaluation on each of ``splits``
    (cached beside the model), queued as soon as the model exists, ahead of the cells: it runs beside the first
    cell's unlearning (TOFU's cells read it after unlearning; a cell that reads it sooner waits on the cache's
    lock and then reads the file)."""
    _, runner = _runner(args, b, cpus, 0.0)
    for s in splits:
        try:
            runner.reference_eval(kind, s)
        except NotImplementedError:  # a protocol without this model (WMDP's standard one has no gold): the cells say so
            pass
    return f"{b}:{kind}:{','.join(splits)}"


def _process_cells(args, b: str, cells: list, out: str, cpus: int) -> list:
    """A worker process's cell task: ``cells`` ([(grid index, split, method, path, why)]) of benchmark ``b`` in
    order, on one benchmark object (so a method's MUSE news, news-scal and news-sust cells share their first step,
    as in one process); [(grid index, result)]."""
    from unlearn.cells import compute_cell

    args, runner = _runner(args, b, cpus, 0.0)
    return [(j, compute_cell(runner, b, s, m, args, Path(path), why, Path(out))) for j, s, m, path, why in cells]


def run_on_processes(args, grid: list[tuple], keys: list[str], todo: list[tuple[int, str | None]], cell_dir: Path,
                     out: Path, log) -> dict[int, tuple[str, dict, str]]:
    """Run ``todo`` in ``args.workers`` worker processes of ``CORES // workers`` torch threads each (one machine):
    first every benchmark's target and each split's gold as separate tasks (a target and a gold train side by
    side), each trained model's reference evaluation as a task of its own, then one task per benchmark and
    method (its splits in grid order, one benchmark object) once the models it needs are trained. Each cell is
    ``compute_cell`` as the local executor runs it, under the same lock, so a rerun resumes from whatever
    finished; {grid index: result}. A cell task is handed out only when a worker is free, the one
    ``pick_next`` chooses from the tier's cell costs (``Tier.cell_costs``, in seconds once a cell has finished),
    so that the workers finish together; the order changes no cell."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    from unlearn.numerics import CORES
    from unlearn.tiers import run_tier

    cpus = max(1, CORES // args.workers)  # e.g. 2 cores, 2 workers: one thread each (1.4-1.6x one 2-thread process)
    groups: dict[tuple[str, str], list] = {}
    for j, why in todo:
        b, s, m = grid[j]
        groups.setdefault((b, m), []).append((j, s, m, str(cell_dir / f"{keys[j]}.json"), why))
    splits = {b: list(dict.fromkeys(s for bb, s, _m in grid if bb == b)) for b, _ in groups}  # grid order, once each
    tier = run_tier(args.model, args.dry_run, args.protocol)
    cost = {g: tier.cell_cost(g[1]) * len(cells) for g, cells in groups.items()}  # in a plain cell's time
    started: dict = {}  # cell group -> when its task was handed out
    spent = [0.0, 0.0]  # finished cell groups: seconds, cost (their ratio turns costs into seconds)

    def left(what: str, key, now: float) -> float:  # a running task's remaining work, in a plain cell's time
        if what != "cells":
            return 0.0  # a model or reference task: not estimated
        if not spent[0]:
            return cost[key]  # no cell has finished yet: no rate to scale by
        return max(0.0, cost[key] - (now - started[key]) * spent[1] / spent[0])

    def gold_split(b: str, s: str) -> str:  # the split whose gold task builds the gold that split ``s`` reads
        return splits[b][0] if _shared_gold(b) else s

    model_tasks = [(b, own, "target") for b, own in splits.items()]  # (b, splits to evaluate on, kind)
    model_tasks += [(b, [s], "gold") for b, own in splits.items() for s in dict.fromkeys(gold_split(b, s) for s in own)]
    # the workers' thread count, read by torch and MKL when each worker starts (spawned: nothing of this process
    # is inherited but its environment)
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({k: str(cpus) for k in saved})
    results: dict[int, tuple[str, dict, str]] = {}
    try:
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as pool, \
                tqdm(total=len(todo), desc=f"cells ({args.workers} workers)", disable=not args.progress) as bar:
            pending = {pool.submit(_process_train, args, b, ss[0], kind, cpus): ("models", (b, ss, kind))
                       for b, ss, kind in model_tasks}
            built: set = set()
            waiting = dict(groups)

            def ready(b: str, m: str) -> bool:
                need = {(b, splits[b][0], "target")} | {(b, gold_split(b, s), "gold") for _j, s, *_ in groups[b, m]}
                return need <= built

            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    what, key = pending.pop(fut)
                    if what == "models":
                        fut.result()  # a model that cannot be trained stops the grid, as in one process
                        b, ss, kind = key
                        built.add((b, ss[0], kind))
                        pending[pool.submit(_process_reference, args, b, ss, kind, cpus)] = ("reference", key)
                    elif what == "reference":
                        fut.result()  # an evaluation that fails would fail every cell of its split: stop here too
                    else:
                        for j, result in fut.result():
                            results[j] = result
                            log(result[2])
                            bar.update(1)
                        spent[0] += time.monotonic() - started[key]
                        spent[1] += cost[key]
                # a cell task only when a worker is free (model and reference tasks first, as queued), the one that
                # makes the workers finish together by the estimates
                while len(pending) < args.workers:
                    options = [g for g in waiting if ready(*g)]
                    if not options:
                        break
                    now = time.monotonic()
                    busy = [left(what, key, now) for what, key in pending.values()]
                    b, m = options[pick_next(busy, [cost[g] for g in options])]
                    started[b, m] = now
                    task = pool.submit(_process_cells, args, b, waiting.pop((b, m)), str(out), cpus)
                    pending[task] = ("cells", (b, m))
            if waiting:  # every model task finished, so every cell should have been ready
                raise RuntimeError(f"cells whose models were never built: {sorted(waiting)}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return results
