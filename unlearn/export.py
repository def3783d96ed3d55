"""``unlearn export CELL_OR_RUN --out DIR``: the unlearned model of one cell as a plain Hugging Face folder
(safetensors + tokenizer + ``unlearn_export.json`` saying how it was made), so that other tools run on it
unchanged, e.g. ``lm_eval --model hf --model_args pretrained=DIR --tasks wmdp_bio,wmdp_chem,wmdp_cyber,mmlu``.

Cells do not keep model weights (a grid of them would be gigabytes), so export reruns the cell: unlearning is
deterministic under the same settings and seed. CELL_OR_RUN is either ``BENCHMARK/METHOD/SPLIT`` (with the
same options as ``unlearn bench``) or a cell file that ``unlearn bench`` wrote (``outputs/cells/*.json``), whose
recorded model, method settings, schedule and seed are replayed; the rerun's summary is compared with the
recorded one and any difference is reported in the JSON (and printed), never hidden.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from unlearn import __version__
from unlearn.options import data_dir_read
from unlearn.tiers import default_model

EXPORT_FILE = "unlearn_export.json"


def parse_spec(spec: str) -> tuple[str, str, str]:
    parts = spec.split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"cell {spec!r}: expected BENCHMARK/METHOD/SPLIT (e.g. wmdp/rmu/synthetic) or a cell JSON file")
    return parts[0], parts[1], parts[2]


def replay_overrides(cell: dict, bench) -> dict[str, dict[str, str]]:
    """``--set``-style overrides that reproduce a recorded cell's method config and schedule on ``bench``'s profile
    (only the fields that differ from the profile's)."""
    from unlearn.benchmarks.base import method_settings, schedule_record

    method = cell["method"]
    cfg, sched = method_settings(method, bench.profile.method_overrides, None)
    out: dict[str, str] = {}
    for k, v in (cell.get("method_config") or {}).items():
        if dataclasses.asdict(cfg).get(k) != v:
            out[k] = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    have = schedule_record(bench.profile.unlearn, sched)
    for k in ("lr", "epochs"):
        want = (cell.get("unlearn_schedule") or {}).get(k)
        if want is not None and have.get(k) != want:
            out[k] = str(want)
    return {method: out} if out else {}


def save_plain(lm, out: Path) -> None:
    """Save ``lm`` as a plain folder: LoRA merged and IWAP's masks folded into the weights."""
    from unlearn.benchmarks.base import fold_into_weights

    model = fold_into_weights(lm)
    model.save_pretrained(out, safe_serialization=True)
    lm.tokenizer.save_pretrained(out)


def export_cell(bench, method: str, split: str, out: str | Path, overrides: dict | None = None,
                recorded: dict | None = None) -> dict:
    """Rerun ``method`` on ``split`` of ``bench`` (a benchmark object), save the unlearned model to ``out``;
    returns the export record (also written to ``out/unlearn_export.json``)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out {out} exists and is not empty; choose a new folder")
    if method == "retrain":  # the gold model itself: its folder, copied
        gold = Path(bench.gold_dir(split))
        cell = bench.run_cell(method, split, overrides)
        shutil.copytree(gold, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("eval-*.json", "*.tmp"))
    else:
        saved = {}

        def sink(lm):
            tmp = out.with_name(out.name + ".partial")
            if tmp.exists():
                shutil.rmtree(tmp)
            save_plain(lm, tmp)
            saved["dir"] = tmp

        bench.model_sink = sink
        try:
            cell = bench.run_cell(method, split, overrides)
        finally:
            bench.model_sink = None
        if "dir" not in saved:
            raise RuntimeError(f"{bench.__class__.__name__} produced no model for {method}/{split}")
        if out.exists():
            out.rmdir()
        saved["dir"].rename(out)  # complete or absent: an interrupted export leaves no half folder at --out
    record = {"unlearn_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "benchmark": cell["benchmark"], "method": method, "split": split, "model": cell["model"],
              "method_config": cell["method_config"], "unlearn_schedule": cell["unlearn_schedule"],
              "protocol": cell["protocol"], "protocol_name": cell.get("protocol_name"), "data": cell["data"],
              "precision": cell["precision"], "summary": cell["summary"],
              "metrics": {k: v for k, v in cell["metrics"].items() if isinstance(v, (int, float)) or v is None},
              "notes": cell.get("notes", []),
              "weights": "plain full-precision weights: LoRA merged, IWAP's pruned atoms zeroed"}
    if recorded is not None:
        diff = {k: (recorded["summary"].get(k), v) for k, v in cell["summary"].items()
                if recorded["summary"].get(k) != v}
        record["replayed_from"] = {"summary": recorded["summary"], "summary_differs": diff}
    (out / EXPORT_FILE).write_text(json.dumps(record, indent=1, allow_nan=True))
    return record


def export_from_args(spec: str, out: str, *, model: str | None = None, data_dir: str | None = None,
                     quant: str | None = None, device: str = "auto", precision: str = "auto",
                     protocol: str | None = None, dry_run: bool = False, seed: int = 0,
                     overrides: dict | None = None, tuned: str | None = None, progress: bool = True) -> dict:
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.methods import validate_overrides

    recorded = None
    if spec.endswith(".json"):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"cell file {spec} not found")
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{spec}: not a readable cell file ({err}); rerun `unlearn bench` to rewrite it") from None
        if not isinstance(recorded, dict):
            raise ValueError(f"{spec}: not a cell file written by `unlearn bench` (a JSON object is expected)")
        for key in ("benchmark", "method", "split", "model", "method_config"):
            if key not in recorded:
                raise ValueError(f"{spec}: field {key!r} missing: not a cell file written by `unlearn bench`")
        bench_name, method, split = recorded["benchmark"], recorded["method"], recorded["split"]
        model = model or recorded["model"]["name"]
        quant = quant or recorded["model"].get("quant")
        seed = (recorded.get("unlearn_schedule") or {}).get("seed", seed)
        dry_run = dry_run or (recorded.get("protocol_name") in ("reduced", "memorised-reduced"))
    else:
        bench_name, method, split = parse_spec(spec)
    merged: dict = {}
    if tuned:
        from unlearn.tune import tuned_overrides

        merged = {m: dict(v) for m, v in tuned_overrides(tuned).items()}
    bench_cls = BENCHMARKS.get(bench_name)
    if split not in bench_cls.splits:
        raise ValueError(f"unknown split {split!r} for {bench_name}; valid: {', '.join(bench_cls.splits)}")
    model = model or default_model(dry_run)
    bench = bench_cls(model, data_dir=data_dir, quant=quant, device=device, dry_run=dry_run, seed=seed,
                      progress=progress, precision=precision, protocol=protocol, robustness=False)
    if recorded is not None:
        merged = replay_overrides(recorded, bench)
    for m, fields in (overrides or {}).items():
        merged.setdefault(m, {}).update(fields)
    validate_overrides(merged)
    with data_dir_read(data_dir, model, sources=bench.data_sources):
        bench.identity(split)  # the cell's data, read before any model loads
    return export_cell(bench, method, split, out, merged, recorded)
