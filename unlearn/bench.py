"""The grid runner behind ``unlearn bench``: benchmarks x methods x splits, one result file per cell
written as soon as the cell finishes, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import re
import json
import os
import platform
import shutil
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from unlearn.benchmarks import BENCHMARKS
from unlearn.methods import method_names, validate_overrides
from unlearn.numerics import numerics_info, numerics_tag
from unlearn.options import data_dir_read, shard_of
from unlearn.cells import bench_kwargs, compute_cell, read_cell
from unlearn.executors import run_on_processes, run_on_ray
from unlearn.html_report import write_report
from unlearn.provenance import git_commit, source_version
from unlearn.report import results_doc, to_markdown, write_outputs
from unlearn.tiers import default_model

DRY_RUN_METHODS = ["finetune", "grad_ascent", "dsu", "iwap", "trou", "retrain"]
# TOFU only: MUSE's dry-run slice (--benchmarks tofu,muse) and WMDP's (--benchmarks tofu,wmdp) each cost more of
# the dry run's budget than they tell, and on the generated stand-in a checkout without a MUSE folder runs MUSE's
# does not separate methods (their walls and tables: docs/guide.md, "The dry run in detail")
DRY_RUN_BENCHMARKS = ("tofu",)
# what the dry run's table must show to be worth reading: the gold forgets as far as a membership
# test can tell (MIA AUC within 0.1 of 0.5) and some method forgets at half the gold's distance while keeping
# most of the target's utility; point values, so a line, not a significance test
SEPARATION = {"gold_mia_within": 0.1, "efficacy": 0.5, "retain": 0.8}

DISTRIBUTION = "unlearn-eval"  # the name pip knows this project by (the import package is unlearn)
# an output folder with less free space than this is refused before any training: a full TOFU cell file with its
# per-question logs is a few MB, the plots and tables less
MIN_FREE_BYTES = 64 * 2**20


@dataclass
class BenchArgs:
    benchmarks: list[str] | None = None  # None: every registered benchmark
    methods: list[str] | None = None
    splits: list[str] | None = None
    model: str | None = None
    quant: str | None = None
    max_steps: int | None = None
    dry_run: bool = False
    output_dir: str = "outputs"
    data_dir: str | None = None
    device: str = "auto"  # auto: CUDA when present, else CPU
    precision: str = "auto"  # auto: bf16 where the hardware has it natively, else fp32
    data: str = "auto"  # auto | real | synthetic
    protocol: str | None = None  # full | reduced; None: reduced for the dry run, full otherwise
    compat: str = "tofu"  # evaluation conventions: tofu | open-unlearning
    seed: int = 0  # the first seed
    seeds: int = 1  # how many seeds (seed, seed + 1, ...): every cell once per seed; the tables give mean +- sd
    force: bool = False
    overrides: dict = field(default_factory=dict)
    tuned: str | None = None  # an `unlearn tune` output: its chosen settings, under any --set overrides
    robustness: bool | None = None  # relearning attack + regeneration leakage; None: the profile's (dry run: off)
    progress: bool = True
    shard: str | None = None  # "i/N": run the i-th of N deterministic shares of the grid (0-based)
    cells: list[str] | None = None  # run only these cells (keys, or key prefixes such as tofu-forget01-npo)
    list_cells: bool = False  # print the grid (keys, dependencies, done or not) instead of running it
    executor: str = "local"  # local: this machine (``workers`` processes, or this one); ray: Ray tasks (unlearn.executors)
    # local: worker processes (> 1: unlearn.executors.run_on_processes); None: one per core on a CPU run (the
    # CLI's default), else 1
    workers: int | None = 1
    address: str | None = None  # ray: the cluster to join (None starts a local one)
    cpus_per_cell: int = 1  # ray: the CPUs each cell asks for (its torch threads)
    gpu_fraction: float | None = None  # ray: the share of a GPU each cell asks for (None: from a 10 GiB cap)
    log_to: list[str] = field(default_factory=list)  # trackers the finished grid is logged to (unlearn.trackers)
    # None = each benchmark's documented profile; tests shrink it with a TOFU Profile or {benchmark: profile}
    profile: object = None


def default_workers(args: BenchArgs) -> int:
    """``--workers`` when not given: on a CPU run with the local executor ``unlearn.numerics.CORES`` worker
    processes (2, the project's machines: there two 1-thread processes do 1.4-1.6x the work of one 2-thread
    process, docs/lab/measurements.md); otherwise 1 (a GPU run, Ray)."""
    from unlearn.numerics import CORES, resolve_device

    if args.executor != "local":
        return 1
    device = resolve_device(args.device) if args.device in (None, "auto") else str(args.device)
    return CORES if device == "cpu" else 1


def resolve(args: BenchArgs) -> BenchArgs:
    """Fill dry-run defaults and validate every name and number before any work starts (nothing half-written)."""
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max_steps {args.max_steps}: must be a positive number of optimiser steps")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed}: must be a non-negative integer")
    if args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: must be a positive number of seeds")
    if args.shard is not None:
        parse_shard(args.shard)
    if args.executor not in ("local", "ray"):
        raise ValueError(f"--executor {args.executor}: valid: local, ray")
    if args.workers is None:
        args.workers = default_workers(args)
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: must be >= 1")
    if args.workers > 1 and args.executor != "local":
        raise ValueError(f"--workers {args.workers}: used only with --executor local (Ray places its tasks itself)")
    if args.workers > 1 and str(args.device).startswith("cuda"):
        raise ValueError(f"--workers {args.workers}: worker processes are for CPU runs; to share a GPU between cells "
                         "use --executor ray with --gpu-fraction")
    if args.cpus_per_cell < 1:
        raise ValueError(f"--cpus-per-cell {args.cpus_per_cell}: must be >= 1")
    if args.gpu_fraction is not None and not 0 < args.gpu_fraction <= 1:
        raise ValueError(f"--gpu-fraction {args.gpu_fraction}: must be in (0, 1]")
    for flag, names in (("--benchmarks", args.benchmarks), ("--methods", args.methods), ("--splits", args.splits)):
        if names is None:
            continue
        if not names:
            raise ValueError(f"{flag} names nothing; give a comma-separated list (or leave it out for the default)")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{flag} names {', '.join(twice)} more than once")
    if not args.benchmarks:  # the dry run: TOFU (DRY_RUN_BENCHMARKS); otherwise every benchmark
        default = list(DRY_RUN_BENCHMARKS) if args.dry_run else BENCHMARKS.names()
        # with --splits: the benchmarks that have a named split (--splits forget10: TOFU; --dry_run --splits news:
        # MUSE's slice); none: the unknown-split error below lists every valid one
        named = [b for b in BENCHMARKS.names() if set(args.splits or ()) & set(BENCHMARKS.get(b).splits)]
        args.benchmarks = named or default
    for b in args.benchmarks:
        BENCHMARKS.get(b)
    if args.protocol == "standard" and set(args.benchmarks) != {"wmdp"}:
        raise ValueError("--protocol standard is WMDP's (forget corpora); valid for the others: full, reduced")
    valid = method_names()
    if args.methods is None:
        args.methods = DRY_RUN_METHODS if args.dry_run else valid
    for m in args.methods:
        if m not in valid:
            from unlearn.methods import METHODS

            raise KeyError(METHODS.unknown_message(m))
    if "retrain" not in args.methods:
        args.methods = list(args.methods) + ["retrain"]  # the gold row is always reported
    if args.model is None:
        args.model = default_model(args.dry_run)
    if args.tuned:
        from unlearn.tune import tuned_overrides

        chosen = tuned_overrides(args.tuned)
        merged = {m: dict(v) for m, v in chosen.items()}
        for m, fields in args.overrides.items():  # --set wins over the tuned settings
            merged.setdefault(m, {}).update(fields)
        args.overrides = merged
    validate_overrides(args.overrides)
    if args.splits:  # each split names one benchmark's split; every benchmark asked for must get one
        known = {b: BENCHMARKS.get(b).splits for b in args.benchmarks}
        bad = [s for s in args.splits if not any(s in v for v in known.values())]
        if bad:
            raise ValueError(f"unknown split(s) {', '.join(bad)} for {', '.join(args.benchmarks)}; valid: "
                             + "; ".join(f"{b}: {', '.join(v)}" for b, v in known.items()))
        empty = [b for b, v in known.items() if not set(args.splits) & set(v)]
        if empty:
            raise ValueError(f"--splits names no split of {', '.join(empty)}; valid: "
                             + "; ".join(f"{b}: {', '.join(known[b])}" for b in empty))
    return args


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N."""
    try:
        return shard_of(text)
    except ValueError as err:
        raise ValueError(f"--shard {err}") from None


def select(grid: list[tuple], keys: list[str], args: BenchArgs) -> list[int]:
    """Indices of the grid cells this process runs: all, the --cell ones, or its --shard (every N-th cell in
    grid order, so N processes with the same command and shards 0..N-1 cover the grid exactly once)."""
    chosen = list(range(len(grid)))
    if args.cells:  # a key, or the start of keys up to a dash: tofu-forget01-npo, tofu-forget01, tofu
        match = lambda k, c: k == c or k.startswith(c + "-")  # noqa: E731
        unknown = [c for c in args.cells if not any(match(k, c) for k in keys)]
        if unknown:
            raise ValueError(f"--cell {', '.join(unknown)}: no such cell in this grid; `--list-cells` prints the keys")
        chosen = [j for j in chosen if any(match(keys[j], c) for c in args.cells)]
    if args.shard:
        i, n = parse_shard(args.shard)
        chosen = [j for j in chosen if j % n == i]
    return chosen


def check_output_dir(out: Path) -> None:
    """Fail before any model is loaded when ``out`` cannot take the run's files: not a folder, read-only, or
    (nearly) full. A probe file is written, flushed to disk and removed."""
    where = f"output folder '{out}'"
    if out.exists() and not out.is_dir():
        raise ValueError(f"{where} is a file, not a folder; choose another with --output_dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".unlearn-write-probe-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(out).free
    except OSError as err:
        why = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}.get(err.errno, err.strerror)
        raise ValueError(f"{where} cannot be written ({why}); nothing was run. Free it or choose another with "
                         "--output_dir") from None
    if free < MIN_FREE_BYTES:
        raise ValueError(f"{where} has {free / 2**20:.1f} MiB free, under the {MIN_FREE_BYTES // 2**20} MiB a run needs "
                         "for its cells, tables and plots; nothing was run. Free space or choose another with --output_dir")


# modules that only present or route results, or check the command line: editing them leaves every cell's numbers
# as they were
PRESENTATION = ("__main__.py", "cli.py", "export.py", "html_report.py", "options.py", "report.py")


@functools.lru_cache(maxsize=None)
def code_version(root: Path | None = None) -> str:
    """Hash of the source that decides a cell's numbers: every module of the package but the presentation ones,
    and the tiers' tuned settings (``data/tuned/*.json``). Part of the cell key, so results computed by other
    code are recomputed, not reused; derived from the files, never bumped by hand."""
    return source_version(root, exclude=PRESENTATION)


def data_hash(runner, split: str) -> str:
    """Content hash of everything a cell of ``split`` reads from its data (training, forget and evaluation rows):
    a data file edited between two runs gives its cells another key, so they are recomputed, not reused."""
    return hashlib.sha256(repr(runner.data(split)).encode()).hexdigest()[:16]


def splits_for(args: BenchArgs, bench) -> list[str]:
    """The splits of ``bench`` the run covers: those named in --splits, else its dry-run split(s) or all."""
    if args.splits:
        return [s for s in args.splits if s in bench.splits]
    return list(bench.dry_run_splits) if args.dry_run else list(bench.splits)


def arithmetic_tag(device: str) -> str:
    """The numerics tag without the thread count and the device index: the kind of arithmetic (CPU kernel family
    and pins, or the GPU model, and torch), so every worker of a grid computes the same cell keys."""
    return re.sub(r"\|threads=\d+", "", numerics_tag(device))


def cell_key(args: BenchArgs, bench: str, split: str, method: str, runner, data_digest: str | None = None) -> str:
    """Identity of a finished cell file: everything that decides its numbers. ``runner`` (the benchmark object)
    gives the precision that ``auto`` resolved to, the data the cell reads and the device's kind of arithmetic;
    with the code version, a rerun on other hardware, other data or other code never reuses cells computed
    another way. Not the device string or thread count: a cell run with ``--device cuda:1`` is found by a
    later ``--device auto`` run on the same kind of GPU, and every worker of a sharded grid agrees on keys.
    ``data_digest``: :func:`data_hash` of the split, when the caller has it (one per split, not per cell)."""
    ident = {"bench": bench, "split": split, "method": method, "model": args.model, "quant": args.quant,
             "max_steps": args.max_steps, "dry_run": args.dry_run, "seed": args.seed, "data_dir": args.data_dir,
             "overrides": args.overrides.get(method, {}), "data": args.data, "data_hash": data_digest or data_hash(runner, split),
             "code": code_version(), "arithmetic": arithmetic_tag(runner.device), "precision": runner.precision,
             "protocol": runner.profile.protocol.name, "compat": getattr(runner.profile.protocol, "compat", None),
             "robustness": (dataclasses.asdict(runner.profile.robustness)
                            if getattr(runner.profile, "robustness", None) else None)}
    if bench != "tofu":  # only TOFU has a conventions switch
        ident.pop("compat")
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    return f"{bench}-{split}-{method}-{digest}"


def run_info(args: BenchArgs, protocol: str, benches: dict) -> dict:
    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    commit = git_commit()
    first = next(iter(benches.values()))
    return {"model": args.model, "quant": args.quant, "dry_run": args.dry_run, "max_steps": args.max_steps,
            "seed": args.seed, "device": first.device, "precision": first.precision,
            "numerics": numerics_info(first.device), "protocol": protocol, "git_commit": commit,
            "data": {b: bench.data_sources() for b, bench in benches.items()},
            "python": platform.python_version(), "packages": {p: version(p) for p in
                                                              (DISTRIBUTION, "torch", "transformers", "peft", "accelerate", "bitsandbytes")}}


def separation_lines(cells: list[dict]) -> list[str]:
    """Per benchmark split with a gold row: whether its table separates methods by ``SEPARATION``, and why."""
    rule = (f"gold MIA AUC within {SEPARATION['gold_mia_within']} of 0.5, and a method at forget efficacy >= "
            f"{SEPARATION['efficacy']} with retain performance >= {SEPARATION['retain']}")
    lines = []
    for (b, s) in dict.fromkeys((c["benchmark"], c["split"]) for c in cells):
        rows = {c["method"]: c.get("summary") or {} for c in cells if (c["benchmark"], c["split"]) == (b, s)}
        gold = rows.pop("retrain", None)
        if gold is None or gold.get("mia_auc") is None:
            continue
        calibrated = abs(gold["mia_auc"] - 0.5) <= SEPARATION["gold_mia_within"]
        forgetting = [f"{m} {v['forget_efficacy']:.3f} at {v['retain_performance']:.3f}" for m, v in sorted(rows.items())
                      if (v.get("forget_efficacy") or 0) >= SEPARATION["efficacy"]
                      and (v.get("retain_performance") or 0) >= SEPARATION["retain"]]
        verdict = "separates methods" if calibrated and forgetting else "does not separate methods"
        lines.append(f"{b} {s}: the table {verdict} ({rule}): gold MIA AUC {gold['mia_auc']:.3f}; "
                     + (", ".join(forgetting) if forgetting else "no method meets both bars"))
    return lines


def run_bench(args: BenchArgs, log=print) -> dict:
    """Run the grid, once per seed (``--seed`` .. ``--seed + --seeds - 1``; the seed fixes the target's and the
    gold's training as well as the unlearning run). A cell whose loss turns NaN or inf is recorded under
    ``run.failed`` (with the step, in the error) and the other cells go on; its file is not written, so a rerun
    tries it again."""
    args = resolve(args)
    out = Path(args.output_dir)
    check_output_dir(out)
    start = time.time()
    cells, failed, listing, partial = [], [], [], False
    for seed in range(args.seed, args.seed + args.seeds):
        one = dataclasses.replace(args, seed=seed)
        got = _run_seed(one, out, log)
        cells += got["cells"]
        failed += got["failed"]
        listing += got["listing"]
        partial = partial or got["partial"]
        benches, protocol = got["benches"], got["protocol"]
    if args.list_cells:
        log(json.dumps(listing, indent=1))
        return {"cells": [], "failed": [], "paths": {}, "run": {}, "listing": listing}
    if partial:  # a share of the grid: its cells are written; the tables belong to the whole grid
        log(f"{len(cells)} cells done here ({len(failed)} stopped); the same command without "
            "--shard/--cell writes the tables once every share has finished")
        return {"cells": cells, "failed": failed, "paths": {}, "run": {}}
    info = run_info(args, protocol, benches)
    info["seeds"] = list(range(args.seed, args.seed + args.seeds))
    info["wall_s"] = round(time.time() - start, 1)
    info["notes"] = sorted({n for c in cells for n in c.get("notes", []) if n})
    info["failed"] = failed
    if args.tuned:
        tuning = json.loads(Path(args.tuned).read_text())
        info["tuning"] = {"file": str(args.tuned), "rule": tuning.get("rule"), "identity": tuning.get("identity"),
                          "chosen": {m: e.get("chosen") for m, e in tuning["methods"].items()}}
    info["method_overrides"] = {b: bench.profile.method_overrides for b, bench in benches.items()}
    paths = write_outputs(cells, out, info)
    paths["html"] = write_report(results_doc(cells, info), out / "report.html", title=f"{args.model} ({out})")
    log(to_markdown(cells, {"model": args.model, "protocol": protocol, "wall_s": info["wall_s"],
                            "precision": info["precision"], "data": "; ".join(s for v in info["data"].values() for s in v)},
                    failed))
    if args.dry_run:
        for line in separation_lines(cells):
            log(line)
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.log_to:
        from unlearn.trackers import log_results

        log_results(args.log_to, results_doc(cells, info), out, log)
    return {"cells": cells, "failed": failed, "paths": paths, "run": info}


def _run_seed(args: BenchArgs, out: Path, log) -> dict:
    """The grid of one seed (``args.seed``): its cells in grid order, the stopped ones, and the grid's listing."""
    cell_dir = out / "cells"
    failed, protocol = [], ""
    grid = []
    benches = {}
    for b in args.benchmarks:
        bench = BENCHMARKS.get(b)(args.model, **bench_kwargs(args, b))
        benches[b] = bench
        protocol = "; ".join(filter(None, [protocol, bench.profile.protocol.describe()]))
        for s in splits_for(args, bench):
            grid += [(b, s, m) for m in args.methods]
    with data_dir_read(args.data_dir, args.model, args.data, lambda: [s for b in benches.values() for s in b.data_sources()]):
        digests = {(b, s): data_hash(benches[b], s) for b, s, _ in grid}
    keys = [cell_key(args, b, s, m, benches[b], digests[b, s]) for b, s, m in grid]
    if args.list_cells:
        listing = [{"key": k, "benchmark": b, "split": s, "method": m, "seed": args.seed,
                    "done": (cell_dir / f"{k}.json").is_file(),
                    "needs": [f"{b}:target:{s}", f"{b}:gold:{s}"]} for k, (b, s, m) in zip(keys, grid)]
        return {"cells": [], "failed": [], "listing": listing, "partial": False, "benches": benches, "protocol": protocol}
    chosen = select(grid, keys, args)
    todo = []  # (grid index, why the file on disk cannot be reused, or None)
    finished: dict[int, dict] = {}
    for j in chosen:
        (b, s, m), path = grid[j], cell_dir / f"{keys[j]}.json"
        cell, why = read_cell(path) if path.is_file() and not args.force else (None, None)
        if cell is not None:
            log(f"skip {b}/{s}/{m}: finished earlier ({path}); --force recomputes")
            finished[j] = cell
        else:
            todo.append((j, why))
    if args.executor == "ray":
        results = run_on_ray(args, grid, keys, todo, cell_dir, out, log)
    elif args.workers > 1 and todo:
        results = run_on_processes(args, grid, keys, todo, cell_dir, out, log)
    else:
        results = {}
        with tqdm(total=len(todo), desc="cells", disable=not args.progress) as bar:
            for j, why in todo:
                b, s, m = grid[j]
                bar.set_postfix_str(f"{b}/{s}/{m}")
                results[j] = compute_cell(benches[b], b, s, m, args, cell_dir / f"{keys[j]}.json", why, out)
                log(results[j][2])
                bar.update(1)
    for j, (state, value, _line) in results.items():
        if state == "failed":
            failed.append(value)
        else:
            finished[j] = value
    cells = [finished[j] for j in chosen if j in finished]  # grid order, whatever order the cells finished in
    return {"cells": cells, "failed": failed, "listing": [], "partial": len(chosen) < len(grid), "benches": benches,
            "protocol": protocol}

