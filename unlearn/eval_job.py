"""``unlearn eval``: evaluate any model (preset, folder, hub id, optionally with a LoRA adapter folder) on
a benchmark split without unlearning; TOFU-format logs, and open-unlearning's per-question format when
its conventions are used (so the two tools' outputs can be diffed row by row)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from unlearn.benchmarks.tofu.metrics import normalised_prob, prob, truth_ratio_score, write_log_dir
from unlearn.options import data_dir_read

SUMMARY_FILE = "eval_summary.json"
OU_EVAL_FILE, OU_SUMMARY_FILE = "TOFU_EVAL.json", "TOFU_SUMMARY.json"
OU_PREFIX = {"forget": "forget", "retain": "retain", "real_authors": "ra", "world_facts": "wf"}


def load_for_eval(model: str, *, adapter: str | None = None, quant: str | None = None, device: str = "cpu"):
    """The model to evaluate: a preset, folder or hub id, with a LoRA adapter folder on top if given
    (merged into full-precision weights; kept as an adapter on a 4-bit base)."""
    from unlearn.benchmarks.base import merged_for_evaluation
    from unlearn.models import load_model

    lm = load_model(model, quant=quant, device=device)
    if adapter:
        from peft import PeftModel

        config = Path(adapter) / "adapter_config.json"
        if not config.is_file():
            raise FileNotFoundError(f"--adapter {adapter}: no adapter_config.json there (a PEFT LoRA folder is expected)")
        try:
            base = json.loads(config.read_text()).get("base_model_name_or_path")
        except (json.JSONDecodeError, AttributeError):
            raise ValueError(f"--adapter {adapter}: {config.name} is not a JSON object") from None
        try:
            lm.model = PeftModel.from_pretrained(lm.model, adapter)
        except (RuntimeError, ValueError, KeyError) as err:  # size mismatch, target modules absent from this model
            first = str(err).strip().splitlines()
            reason = next((x.strip() for x in first if "size mismatch" in x or "not found" in x), first[0] if first else "")
            made_for = f"made for base model {base!r}" if base else "made for another base model"
            raise ValueError(f"--adapter {adapter}: {made_for}, it does not fit {model!r} ({reason[:400]}); "
                             "give the model it was trained on with --model") from None
        lm = merged_for_evaluation(lm)
    return lm


def run_eval(benchmark: str = "tofu", split: str | None = None, model: str = "smollm2-135m", *,
             adapter: str | None = None, protocol: str = "full", compat: str = "tofu", precision: str = "auto",
             device: str = "auto", quant: str | None = None, data_dir: str | None = None, max_rows: int | None = None,
             subjects: list[str] | None = None, progress: bool = True, eval_protocol=None,
             target: str | None = None, gold: str | None = None) -> dict:
    """Evaluate without unlearning, through the benchmark registry: ``BENCHMARKS[benchmark]``'s ``eval_inputs``
    (data read and checked first, so a missing file fails before the model loads) and ``evaluate_model``.
    ``split``: the benchmark's (default its first); ``subjects``: WMDP's sets; ``max_rows`` caps every set (a
    quick look); ``eval_protocol`` replaces the named protocol entirely (tests).

    ``target`` and ``gold`` (together: the model before unlearning and one trained without the forget set, each a
    preset, folder or hub id) are evaluated on the same rows, and ``"judged"`` holds the model's cell measures
    against them (:meth:`unlearn.benchmarks.base.Benchmark.judge`: the summary columns with their intervals,
    Forget Quality, the MIA gap, PrivLeak), the same definitions a cell of ``unlearn bench`` records."""
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.numerics import numerics_info

    if (target is None) != (gold is None):
        raise ValueError("--target and --gold go together: the model before unlearning and one trained without the "
                         f"forget set (given: {'--target' if target else '--gold'} only)")
    bench = BENCHMARKS.get(benchmark)(model, data_dir=data_dir, quant=quant, device=device, precision=precision,
                                      protocol=protocol, compat=compat, progress=progress)
    if target is not None and not bench.judges_given_models():
        judged = [b for b in BENCHMARKS.names() if BENCHMARKS.get(b).judges_given_models()]
        raise ValueError(f"--target/--gold: {benchmark} has no comparison with a target and a gold (those that have: "
                         f"{', '.join(judged)})")
    split = split or bench.splits[0]
    with data_dir_read(data_dir, model, sources=bench.data_sources):
        inputs = bench.eval_inputs(split, max_rows=max_rows, subjects=subjects, eval_protocol=eval_protocol)
    start = time.time()
    lm = load_for_eval(model, adapter=adapter, quant=quant, device=bench.device)
    loaded = time.time()
    if target is None:
        result = bench.evaluate_model(lm, inputs)
    else:
        scored = bench.score_model(lm, inputs)
        del lm
        result = bench.eval_record(scored, inputs)
        refs = {kind: bench.score_model(load_for_eval(name, quant=quant, device=bench.device), inputs)
                for kind, name in (("target", target), ("gold", gold))}
        result["judged"] = {**bench.judge(split, scored, refs["target"], refs["gold"]), "target": target, "gold": gold}
    return {"benchmark": benchmark, "split": split, "model": model, "adapter": adapter, "quant": quant, **result,
            "device": bench.device, "numerics": numerics_info(bench.device), "load_s": round(loaded - start, 1),
            "wall_s": round(time.time() - loaded, 1)}


def write_eval(result: dict, folder: str | Path) -> list[Path]:
    """TOFU-format logs + a summary and ``report.html``; with open-unlearning conventions also that tool's two files."""
    from unlearn.html_report import eval_doc, write_report

    folder = Path(folder)
    if result["logs"] is None:  # WMDP: per-question log-likelihoods and predictions beside the summary
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUMMARY_FILE).write_text(json.dumps({k: v for k, v in result.items() if k != "logs"}, indent=1))
        return [folder / SUMMARY_FILE, write_report(eval_doc(result), folder / "report.html", title=result["model"])]
    write_log_dir(result["logs"], folder)
    summary = {k: v for k, v in result.items() if k not in ("logs", "per_question")}
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    paths = [folder / SUMMARY_FILE]
    if result["compat"] == "open-unlearning":
        per_q, agg = to_open_unlearning(result)
        (folder / OU_EVAL_FILE).write_text(json.dumps(per_q, indent=1))
        (folder / OU_SUMMARY_FILE).write_text(json.dumps(agg, indent=1))
        paths += [folder / OU_EVAL_FILE, folder / OU_SUMMARY_FILE]
    return paths + [write_report(eval_doc(result), folder / "report.html", title=result["model"])]


def _col(log: dict, key: str) -> list:
    return [log[key][k] for k in sorted(log[key], key=int)]


def _entry(values: list[dict], agg: float) -> dict:
    return {"agg_value": agg, "value_by_index": {str(i): v for i, v in enumerate(values)}}


def to_open_unlearning(result: dict) -> tuple[dict, dict]:
    """(per-question dict shaped like open-unlearning's TOFU_EVAL.json, its TOFU_SUMMARY.json aggregates).

    Its orientation is kept: Min-K scores are -(mean of the lowest k log-probs), and the MIA AUC takes the
    holdout as the positive class (the same number as ours, members scoring higher)."""
    out: dict = {}
    logs = result["logs"]
    for split, log in logs.items():
        p = OU_PREFIX[split]
        avg = np.array(_col(log, "avg_gt_loss"), float)
        pert = np.array(_col(log, "average_perturb_loss"), float)
        R = np.array(_col(log, "truth_ratio"), float)
        out[f"{p}_Q_A_Prob"] = _entry([{"prob": float(prob(a)), "avg_loss": float(a)} for a in avg], float(prob(avg).mean()))
        out[f"{p}_Q_A_PERT_Prob"] = _entry([{"prob": prob(r).tolist(), "avg_loss": r.tolist()} for r in pert],
                                           float(prob(pert).mean()))
        if split in ("forget", "retain"):
            para = np.array(_col(log, "avg_paraphrased_loss"), float)
            out[f"{p}_Q_A_PARA_Prob"] = _entry([{"prob": float(prob(a)), "avg_loss": float(a)} for a in para],
                                               float(prob(para).mean()))
        else:
            norm = normalised_prob(avg, pert)
            out[f"{p}_Q_A_Prob_normalised"] = _entry([{"prob": float(x)} for x in norm], float(norm.mean()))
        gens = _col(log, "generated_text")
        rouge = _col(log, "rougeL_recall")
        out[f"{p}_Q_A_ROUGE"] = _entry([{"rougeL_recall": r, "input": g[0], "generation": g[1], "ground_truth": g[2]}
                                        for r, g in zip(rouge, gens)], float(np.mean(rouge)))
        name = "forget_truth_ratio" if split == "forget" else f"{p}_Truth_Ratio"
        out[name] = _entry([{"score": float(r)} for r in R], truth_ratio_score(R, split == "forget"))
    pq = result["per_question"]
    es = pq["forget_extraction_strength"]
    out["extraction_strength"] = _entry([{"score": float(x)} for x in es], float(np.mean(es)))
    forget_mk = [-x for x in pq["mia_forget"]["min_k"]]
    hold_mk = [-x for x in pq["mia_holdout"]["min_k"]]
    auc = result["metrics"]["mia_min_k_auc"]
    out["mia_min_k"] = {"forget": _entry([{"score": x} for x in forget_mk], float(np.mean(forget_mk))),
                        "holdout": _entry([{"score": x} for x in hold_mk], float(np.mean(hold_mk))),
                        "auc": auc, "agg_value": auc}
    m = result["metrics"]
    summary = {"extraction_strength": m["extraction_strength"], "forget_Q_A_Prob": m.get("forget_prob"),
               "forget_Q_A_ROUGE": m.get("forget_rouge"), "forget_truth_ratio": m.get("forget_truth_ratio"),
               "model_utility": m.get("model_utility")}
    if "model_utility" in m:
        out["model_utility"] = {"agg_value": m["model_utility"]}
    return out, summary


def format_metrics(result: dict) -> str:
    lines = [f"{result['benchmark']} {result['split']} | {result['model']}" + (f" + {result['adapter']}" if result["adapter"] else ""),
             f"protocol: {result['protocol']}", f"data: {result['data']} | device: {result['device']}"]
    lines += [f"  {k:28s} {v:.6g}" for k, v in result["metrics"].items()]
    judged = result.get("judged")
    if judged:
        from unlearn.gate.verdicts import row_interval

        lines.append(f"against target {judged['target']} and gold {judged['gold']}:")
        for k, v in {**judged["summary"], **{k: judged["metrics"].get(k) for k in ("forget_quality", "mia_gap",
                                                                                  "privleak")}}.items():
            if v is not None:
                iv = row_interval(judged, k)
                lines.append(f"  {k:28s} {v:.6g}" + (f"  [{iv[0]:.4g}, {iv[1]:.4g}]" if iv else ""))
    lines.append(f"wall time: {result['wall_s']:.1f} s evaluating (+{result['load_s']:.1f} s loading)")
    return "\n".join(lines)


def _scalars(entry: dict) -> dict[str, dict[str, float]]:
    """{value name: {row: number}} of one open-unlearning metric entry (lists flattened per element)."""
    out: dict[str, dict[str, float]] = {}
    for row, v in entry.get("value_by_index", {}).items():
        for name, x in v.items():
            if isinstance(x, (int, float)):
                out.setdefault(name, {})[row] = float(x)
            elif isinstance(x, list) and all(isinstance(e, (int, float)) for e in x):
                for j, e in enumerate(x):
                    out.setdefault(name, {})[f"{row}.{j}"] = float(e)
    return out


def diff_open_unlearning(ours: dict, reference: dict) -> dict:
    """Per metric and value: the largest absolute difference over the rows both files hold (and which
    row), the largest difference relative to max(1, |reference|) (truth ratios R = P(wrong)/P(right) are
    unbounded: R ~ 100 on some real-author rows), and which greedy generations differ; rows only one
    file has are ignored."""
    report: dict = {"values": {}, "generations_differ": [], "rows_compared": 0}
    for metric, entry in ours.items():
        ref = reference.get(metric)
        if not isinstance(entry, dict) or not isinstance(ref, dict):
            continue
        pairs = [(metric, entry, ref)] if "value_by_index" in entry else \
            [(f"{metric}.{k}", entry[k], ref[k]) for k in ("forget", "holdout") if k in entry and k in ref]
        for name, e, r in pairs:
            mine, theirs = _scalars(e), _scalars(r)
            for value, rows in mine.items():
                common = [k for k in rows if k in theirs.get(value, {})]
                if not common:
                    continue
                diffs = {k: abs(rows[k] - theirs[value][k]) for k in common}
                nan = [k for k, d in diffs.items() if d != d]  # a NaN on either side is the worst difference
                worst = nan[0] if nan else max(common, key=diffs.__getitem__)
                scaled = float("nan") if nan else max(diffs[k] / max(1.0, abs(theirs[value][k])) for k in common)
                report["values"][f"{name}.{value}"] = {"max_abs_diff": diffs[worst], "max_scaled_diff": scaled,
                                                       "row": worst, "rows": len(common)}
            if name.endswith("_ROUGE"):
                for row, v in e["value_by_index"].items():
                    other = r["value_by_index"].get(row)
                    report["rows_compared"] += other is not None
                    if other is not None and v.get("generation") != other.get("generation"):
                        report["generations_differ"].append(f"{name}[{row}]")
    return report
