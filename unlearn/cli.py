"""Command line: ``unlearn {models,methods,eval,bench,report,tune,export,tofu-aggregate,score}`` (also ``python -m unlearn``)."""

from __future__ import annotations

import argparse
import json
import sys

from unlearn import __version__, options
from unlearn.tiers import default_model, is_tiny


def cmd_models(args) -> int:
    from unlearn.models import PRESETS

    for name, fn in PRESETS.items():
        print(f"{name:14s} {(fn.__doc__ or '').strip()}")
    print("any hub id (e.g. Qwen/Qwen3-4B) or local folder also works; --quant 4bit loads NF4 + LoRA")
    return 0


def cmd_methods(args) -> int:
    from unlearn.methods import get_method, method_names

    for name in method_names():
        print(f"{name:12s} {get_method(name).description}")
    return 0


def cmd_tofu_aggregate(args) -> int:
    from unlearn.benchmarks.tofu.metrics import aggregate, read_log_dir

    result = aggregate(read_log_dir(args.logdir), read_log_dir(args.retain) if args.retain else None)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in result.items():
            print(f"{k:26s} {v:.6g}")
    return 0


def cmd_score(args) -> int:
    """Smoke command: greedy answer and answer log-prob with the chosen model."""
    from unlearn.models import load_model
    from unlearn.scoring import generate, score_answers

    from unlearn.numerics import resolve_device

    lm = load_model(args.model, device=resolve_device(args.device))
    answer = generate(lm.model, lm.tokenizer, [args.question], max_new_tokens=args.max_new_tokens)[0]
    res = score_answers(lm.model, lm.tokenizer, [(args.question, answer)])
    print(f"Q: {args.question}\nA: {answer}\nmean NLL of the answer: {res.mean_nll[0]:.4f} over {res.n_tokens[0]} tokens")
    return 0


def cmd_eval(args) -> int:
    from unlearn.eval_job import format_metrics, run_eval, write_eval

    subjects = options.names_in(args.subjects) if args.subjects else None
    result = run_eval(args.benchmark, args.split, args.model, adapter=args.adapter, protocol=args.protocol,
                      compat=args.compat, precision=args.precision, device=args.device, quant=args.quant,
                      data_dir=args.data_dir, max_rows=args.max_rows, subjects=subjects, progress=not args.json,
                      target=args.target, gold=args.gold)
    written = write_eval(result, args.logs) if args.logs else []
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k not in ("logs", "per_question")}, indent=1, allow_nan=True))
    else:
        print(format_metrics(result))
        if written:
            print("wrote " + ", ".join(str(p) for p in written) + " and TOFU-format logs")
    return 0


def cmd_bench(args) -> int:
    from unlearn.bench import BenchArgs, run_bench
    from unlearn.methods import parse_overrides

    split = lambda s: None if s is None else options.names_in(s)  # noqa: E731
    result = run_bench(BenchArgs(benchmarks=split(args.benchmarks), methods=split(args.methods), splits=split(args.splits),
                                 model=args.model, quant=args.quant, max_steps=args.max_steps, dry_run=args.dry_run,
                                 output_dir=args.output_dir, data_dir=args.data_dir, device=args.device, seed=args.seed,
                                 seeds=args.seeds, force=args.force, overrides=parse_overrides(args.set), precision=args.precision,
                                 data=args.data, protocol=args.protocol, compat=args.compat, tuned=args.tuned,
                                 robustness=args.robustness, shard=args.shard, cells=split(args.cell),
                                 list_cells=args.list_cells, executor=args.executor, workers=args.workers,
                                 address=args.address,
                                 cpus_per_cell=1 if args.cpus_per_cell is None else args.cpus_per_cell,
                                 gpu_fraction=args.gpu_fraction,
                                 log_to=split(args.log_to) or []), log=print)
    if result["failed"]:  # the other cells finished and are in the outputs; exit 1 says the grid is incomplete
        print(f"unlearn: {len(result['failed'])} cell(s) stopped: "
              + "; ".join(f"{f['benchmark']}/{f['split']}/{f['method']}" for f in result["failed"])
              + " (see run.failed in benchmark_results.json); rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_log(args) -> int:
    from unlearn.trackers import log_results, read_results_doc

    doc, folder = read_results_doc(args.results)
    log_results(options.names_in(args.to), doc, folder)
    return 0


def cmd_report(args) -> int:
    from unlearn.html_report import report_runs

    path = report_runs(args.run_dirs, args.out)
    print(f"wrote {path}")
    return 0


def cmd_tune(args) -> int:
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.tune import choices_path, load_grids, run_tune, to_markdown

    methods = options.names_in(args.methods) if args.methods else None
    grids = load_grids(args.grid)
    model = args.model or default_model(args.dry_run)
    bench = BENCHMARKS.get(args.benchmark)(model, data_dir=args.data_dir, device=args.device, dry_run=args.dry_run,
                                           precision=args.precision, protocol=args.protocol, compat=args.compat,
                                           progress=not args.quiet, robustness=False)  # not part of the rule
    split = args.split or bench.tune_split  # a named one is checked by its type (options.tuning_split)
    with options.data_dir_read(args.data_dir, model, sources=bench.data_sources):
        bench.identity(split)  # the tuning split's data, read before any model loads
    if split in bench.splits:
        print(f"warning: tuning on {split}, an evaluated split: its cells will replay the tuning trials (in sample); "
              f"the default, {bench.tune_split}, forgets authors no evaluated split contains", file=sys.stderr)
    result = run_tune(bench, methods, split, grids, args.retain_min, args.out)
    print(to_markdown(result))
    print(f"rule: {result['rule']}\nwrote {args.out} (every trial) and {choices_path(args.out)} (the chosen settings); "
          f"apply with: unlearn bench --tuned {choices_path(args.out)}")
    return 0


def cmd_export(args) -> int:
    from unlearn.export import EXPORT_FILE, export_from_args
    from unlearn.methods import parse_overrides

    record = export_from_args(args.cell, args.out, model=args.model, data_dir=args.data_dir, quant=args.quant,
                              device=args.device, precision=args.precision, protocol=args.protocol,
                              dry_run=args.dry_run, seed=args.seed, overrides=parse_overrides(args.set),
                              tuned=args.tuned, progress=not args.quiet)
    summary = ", ".join(f"{k} {v:.3f}" for k, v in record["summary"].items() if isinstance(v, float))
    print(f"exported {record['benchmark']}/{record['method']}/{record['split']} ({record['model']['name']}) to {args.out}: "
          f"{summary}; how it was made: {args.out}/{EXPORT_FILE}")
    differs = (record.get("replayed_from") or {}).get("summary_differs")
    if differs:
        print("warning: the rerun's summary differs from the recorded cell's: "
              + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in differs.items()), file=sys.stderr)
    return 0


DEVICE_HELP = "auto (default: CUDA when present, else CPU), cpu, cuda or cuda:N"


PRECISION_HELP = ("auto (default): bf16 autocast only where the hardware runs bf16 natively (CUDA, AMX or AVX512-BF16 "
                  "CPUs), else fp32; the full protocol scores in fp32 either way; the tiny tier stays fp32 unless bf16 "
                  "is asked for")


def add_protocol_args(p, default: str | None) -> None:
    p.add_argument("--protocol", choices=["full", "reduced", "standard"], default=default,
                   help="full: the published protocol (TOFU: 300 rows, 200 new tokens, target trained on the real retain "
                        "split); reduced: the CPU dry run's (TOFU: 40/10/10/10 rows, 48 tokens; WMDP: the memorised "
                        "protocol on 8 questions per subject); standard: WMDP's published one (forget corpora, GPU)"
                        + ("" if default else "; default: reduced for --dry_run, full otherwise"))
    p.add_argument("--compat", choices=["tofu", "open-unlearning"], default="tofu",
                   help="metric conventions: tofu (TOFU's definitions; default) or open-unlearning (its scored span, "
                        "attention mask, rows, ES and Min-K details; unlearn/benchmarks/tofu/README.md)")


def add_quant_arg(p) -> None:
    p.add_argument("--quant", choices=["4bit"], default=None, help="4bit: the base loaded in NF4 by bitsandbytes (QLoRA: needs LoRA adapters)")


def add_dry_run_arg(p) -> None:
    p.add_argument("--dry_run", "--dry-run", action="store_true", help="the dry run's tier (SmolLM2, reduced protocol)")


def add_settings_args(p) -> None:
    """A method's settings: --set, and --tuned (an `unlearn tune` output; --set wins over it)."""
    p.add_argument("--set", action="append", type=options.setting, metavar="METHOD.FIELD=VALUE",
                   help="override a method hyperparameter")
    p.add_argument("--tuned", metavar="FILE", type=options.tuned_file,
                   help="apply the settings an `unlearn tune` run chose (--set wins over them); recorded in the results")


def add_quiet_arg(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_run_args(p) -> None:
    """Where a run's data and arithmetic come from: --data-dir, --device, --precision."""
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", type=options.folder, default=None,
                   help="a folder holding the benchmarks' data (layouts: unlearn/benchmarks/<name>/README.md); an "
                        "error when the run reads nothing under it")
    p.add_argument("--device", type=options.device, default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto", help=PRECISION_HELP)


def parser() -> argparse.ArgumentParser:
    """Every option has a declared type (unlearn/options.py), choices, or is a flag; tests/test_cli_options.py
    walks the subcommands to hold it."""
    p = options.Parser(prog="unlearn", description=__doc__)
    p.add_argument("--version", action="version", version=f"unlearn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list model presets").set_defaults(fn=cmd_models)
    sub.add_parser("methods", help="list unlearning methods").set_defaults(fn=cmd_methods)
    a = sub.add_parser("tofu-aggregate", help="TOFU aggregates from per-question logs (TOFU's format)")
    a.add_argument("logdir", type=options.folder)
    a.add_argument("--retain", type=options.folder, help="log folder of the retain-only model (for Forget Quality)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(fn=cmd_tofu_aggregate)
    s = sub.add_parser("score", help="answer one question with a model (smoke test)")
    s.add_argument("question", type=options.nonempty_text)
    s.add_argument("--model", type=options.model, default="smollm2-135m")
    s.add_argument("--device", type=options.device, default="auto", help=DEVICE_HELP)
    s.add_argument("--max-new-tokens", type=options.positive_int, default=32)
    s.set_defaults(fn=cmd_score)
    e = sub.add_parser("eval", help="evaluate a model on a benchmark split without unlearning")
    e.add_argument("--benchmark", type=options.benchmark, default="tofu",
                   help="tofu (a split, TOFU's metrics), muse (VerbMem, KnowMem, the Min-K%% AUC), wmdp (accuracy per "
                        "subject and MMLU's, as lm-evaluation-harness) or unsafe (compliance, over-refusal, regeneration)")
    e.add_argument("--split", type=options.split, default=None,
                   help="the benchmark's split (default its first: TOFU forget01, MUSE news, unsafe synthetic)")
    e.add_argument("--subjects", type=options.subjects,
                   help="WMDP's sets, comma-separated, among bio,chem,cyber,mmlu (default all four; "
                        "mmlu is 14,042 questions under --protocol full)")
    e.add_argument("--model", type=options.model, default="smollm2-135m", help="preset, hub id or folder")
    e.add_argument("--adapter", type=options.adapter_folder, help="LoRA adapter folder (PEFT) applied on top of --model")
    e.add_argument("--target", type=options.reference_model, default=None,
                   help="with --gold (tofu, muse): the model before unlearning; the result adds the model's forget "
                        "efficacy, retain performance and MIA against these two, with intervals, as a cell records them")
    e.add_argument("--gold", type=options.reference_model, default=None,
                   help="with --target: a model trained without the forget set (retrain), the reference of forget "
                        "efficacy, Forget Quality, the MIA gap and PrivLeak")
    add_quant_arg(e)
    add_protocol_args(e, default="full")
    e.add_argument("--max-rows", "--max_rows", dest="max_rows", type=options.positive_int, default=None,
                   help="score only the first N rows of every split (a quick look; not a published number)")
    add_run_args(e)
    e.add_argument("--logs", metavar="DIR", type=options.output_folder,
                   help="write TOFU-format logs and eval_summary.json there (open-unlearning conventions: also its "
                        "TOFU_EVAL.json / TOFU_SUMMARY.json)")
    e.add_argument("--json", action="store_true", help="print the result as JSON (no progress bars)")
    e.set_defaults(fn=cmd_eval)
    b = sub.add_parser("bench", help="run the benchmark grid and write outputs/")
    b.add_argument("--benchmarks", type=options.benchmarks, default=None,
                   help="comma-separated; default every registered one (tofu, muse, wmdp, unsafe); dry run: tofu (its "
                        "MUSE slice: tofu,muse)")
    b.add_argument("--methods", type=options.methods,
                   help="comma-separated; default all (dry run: finetune,grad_ascent,dsu,iwap,trou)")
    b.add_argument("--splits", type=options.splits,
                   help="comma-separated, of any benchmark run; default all (dry run: forget01, news)")
    b.add_argument("--model", type=options.model, help="preset, hub id or folder; default tiny-qwen3 (dry run: smollm2-135m)")
    add_quant_arg(b)
    b.add_argument("--max_steps", "--max-steps", type=options.positive_int, default=None)
    add_dry_run_arg(b)
    b.add_argument("--output_dir", "--output-dir", type=options.output_folder, default="outputs")
    add_run_args(b)
    add_protocol_args(b, default=None)
    b.add_argument("--data", choices=["auto", "real", "synthetic"], default="auto",
                   help="auto (default): real TOFU (--data-dir, $UNLEARN_DATA_DIR, the embedded copy, the hub in "
                        "that order) for real models, synthetic authors for tiny-qwen3")
    b.add_argument("--seed", type=options.non_negative_int, default=0, help="the first seed (default 0)")
    b.add_argument("--seeds", type=options.positive_int, default=1,
                   help="run every cell with N seeds (--seed, --seed + 1, ...; each trains its own target and gold); "
                        "the tables give mean +- sd over seeds beside the bootstrap intervals (default 1)")
    b.add_argument("--force", action="store_true", help="recompute finished cells")
    add_settings_args(b)
    b.add_argument("--robustness", action=argparse.BooleanOptionalAction, default=None,
                   help="relearning attack and regeneration leakage per cell (default: on, off in the dry run)")
    b.add_argument("--list-cells", "--list_cells", dest="list_cells", action="store_true",
                   help="print the grid as JSON (cell keys, what each needs, whether it is done) and stop")
    b.add_argument("--shard", metavar="i/N", type=options.shard,
                   help="run every N-th cell from the i-th (0-based): N processes on a shared output folder and cache "
                        "cover the grid once (a Slurm array)")
    b.add_argument("--cell", metavar="KEY[,KEY]", type=options.cell_keys,
                   help="run only these cells (keys or key prefixes from --list-cells)")
    b.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local (default): this machine, in --workers processes; ray: the cells as Ray tasks after the "
                        "models they need (pip install 'unlearn-eval[ray]')")
    b.add_argument("--workers", type=options.local_only(options.positive_int), default=None,
                   help="local: worker processes on this machine (default: one per core on a CPU run, else 1; 1: cell "
                        "after cell in this process); N > 1: the targets and golds, then the cells, in N processes of "
                        "cores / N torch threads each, with the same cell files")
    b.add_argument("--address", type=options.ray_only(options.token),
                   help="ray: the cluster to join (default: start a local one)")
    b.add_argument("--cpus-per-cell", "--cpus_per_cell", dest="cpus_per_cell", type=options.ray_only(options.positive_int),
                   default=None, help="ray: CPUs (torch threads) per cell task (default 1)")
    b.add_argument("--gpu-fraction", "--gpu_fraction", dest="gpu_fraction", type=options.ray_only(options.fraction),
                   default=None, help="ray on CUDA: the share of a GPU per cell (default: a 10 GiB cap over the GPU's memory)")
    b.add_argument("--log-to", "--log_to", dest="log_to", type=options.trackers, metavar="mlflow,wandb",
                   help="also log the finished grid to these trackers: one run for the grid, one per cell (settings, "
                        "metrics, dynamics as steps, the report and the JSON as artifacts); mlflow: "
                        "$MLFLOW_TRACKING_URI, else OUTPUT_DIR/mlflow.db; wandb: $WANDB_MODE (offline works without "
                        "network). Optional extras: pip install 'unlearn-eval[mlflow]' / '[wandb]'")
    b.set_defaults(fn=cmd_bench)
    lg = sub.add_parser("log", help="log a finished run's results to experiment trackers (what bench --log-to does)")
    lg.add_argument("results", type=options.results, help="a results folder or its benchmark_results.json")
    lg.add_argument("--to", required=True, type=options.trackers, metavar="mlflow,wandb", help="the trackers")
    lg.set_defaults(fn=cmd_log)

    x = sub.add_parser("export", help="rerun one cell and write its unlearned model as a plain Hugging Face folder",
                       description="Writes the unlearned model of a cell (LoRA merged, IWAP's masks folded into the "
                                   "weights) with its tokenizer and unlearn_export.json (settings, data, summary), so "
                                   "that e.g. `lm_eval --model hf --model_args pretrained=DIR --tasks wmdp_bio` runs on "
                                   "it unchanged. Cells keep no weights, so the cell is rerun (deterministic).")
    x.add_argument("cell", type=options.cell,
                   help="BENCHMARK/METHOD/SPLIT (e.g. wmdp/rmu/synthetic) or a cell file from `unlearn bench` "
                        "(outputs/cells/*.json: its model, settings and seed are replayed)")
    x.add_argument("--out", required=True, type=options.new_folder, help="a new (or empty) folder")
    x.add_argument("--model", type=options.model,
                   help="preset, hub id or folder; default tiny-qwen3 (dry run: smollm2-135m; a cell file's own)")
    add_quant_arg(x)
    add_dry_run_arg(x)
    add_run_args(x)
    x.add_argument("--protocol", choices=["full", "reduced", "standard"], default=None)
    x.add_argument("--seed", type=options.non_negative_int, default=0)
    add_settings_args(x)
    add_quiet_arg(x)
    x.set_defaults(fn=cmd_export)

    r = sub.add_parser("report", help="rebuild report.html from results (no model needed); several runs: compared cell by cell")
    r.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", type=options.results,
                   help="an output folder of `unlearn bench` (or its benchmark_results.json)")
    r.add_argument("--out", type=options.output_file,
                   help="the page to write (default: RUN_DIR/report.html for one run, ./report.html for several)")
    r.set_defaults(fn=cmd_report)
    t = sub.add_parser("tune", help="tune every method the same declared way on the tune split (authors no evaluated "
                                    "split contains)",
                       description="Runs a small grid per method (lr x epochs where they matter, plus the method's "
                                   "main knob: NPO/SimNPO beta, GradDiff alpha, RMU lr and beta, DSU forget_lr, lambda "
                                   "and retain_tol, IWAP p and retain_tol, TROU lr, delta and retain_weight) on --split "
                                   "(default `tune`: authors in no evaluated forget set, see --split), "
                                   "and chooses by one rule for all: the highest forget efficacy (3 decimals) with retain "
                                   "performance >= --retain-min; ties go to fewer unlearning tokens, then higher retain performance, "
                                   "then grid order. Trials are written to --out as they finish (a rerun resumes). "
                                   "Apply the choice unchanged to other splits with `unlearn bench --tuned FILE`. "
                                   "finetune and retrain are not tuned (baseline and gold).")
    t.add_argument("--benchmark", default="tofu", choices=["tofu"])
    t.add_argument("--model", type=options.model, help="preset, hub id or folder; default tiny-qwen3 (dry run: smollm2-135m)")
    t.add_argument("--grid", metavar="FILE", type=options.grid_file,
                   help='JSON {method: {field: [values]}} replacing the default grids; "3x" in an lr field means 3 '
                        "times the tier's unlearning lr")
    t.add_argument("--methods", type=options.tunable_methods,
                   help="comma-separated; default every tunable method (with --grid: the file's methods)")
    t.add_argument("--split", type=options.tuning_split, default=None,
                   help="the split tuned on (default tune: generated authors on the synthetic tier, the last "
                        "retain_perturbed author on real TOFU; an evaluated split is allowed, with a warning)")
    t.add_argument("--retain-min", "--retain_min", dest="retain_min", type=options.proportion, default=0.9,
                   help="the least retain performance (the model's retain utility over the target's) a chosen "
                        "setting keeps, in [0, 1] (default 0.9)")
    t.add_argument("--out", type=options.output_file, default="outputs/tuning.json")
    add_dry_run_arg(t)
    add_run_args(t)
    add_protocol_args(t, None)
    add_quiet_arg(t)
    t.set_defaults(fn=cmd_tune)
    return p


def uses_tiny_tier(args) -> bool:
    """The tiny tier's numbers are pinned to the same CPU kernels as the tests (unlearn/numerics.py)."""
    model = getattr(args, "model", None)
    if args.command == "export" and model is None and args.cell.endswith(".json"):
        try:  # a cell file names its model
            model = json.loads(open(args.cell).read())["model"]["name"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # export_from_args reports the bad file
    if args.command in ("bench", "tune", "export") and model is None:
        model = default_model(args.dry_run)
    return is_tiny(model)


def main(argv: list[str] | None = None) -> int:
    """The exit status: 0, 1 (a grid with stopped cells), or 2 with one line `unlearn: error: ...` for any input
    that cannot be run, before any model is loaded or any file written."""
    p = parser()
    try:
        args = p.parse_args(argv)
    except options.UsageError as err:
        print(f"unlearn: error: {err}", file=sys.stderr)
        return 2
    if uses_tiny_tier(args):
        from unlearn.numerics import pin_numerics, set_threads

        pin_numerics(strict=False)  # before anything imports torch: same numbers as pytest evals
        set_threads()
    from unlearn.models import ModelUnavailable
    from unlearn.registry import PluginError

    try:
        options.check_args(p, args)  # the names the registries decide: after the pins (they import torch)
        return args.fn(args)
    except (options.UsageError, ModelUnavailable, PluginError) as err:
        print(f"unlearn: error: {err}", file=sys.stderr)
        return 2
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, ModuleNotFoundError, NotImplementedError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"unlearn: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
