"""WMDP integration runs (evals/, not the fast unit tier): our multiple-choice scorer against lm_eval on the
embedded SmolLM2 and real questions, and `unlearn export` folders that lm_eval loads unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.lm_eval_harness import run_lm_eval
from tests.test_wmdp import _tiny_profile, wmdp_data_dir  # noqa: F401  (a fixture)
from unlearn.benchmarks.wmdp.data import SUBJECTS, load_mmlu_folder, load_wmdp
from unlearn.benchmarks.wmdp.data import mcq_prompt
from unlearn.benchmarks.wmdp.metrics import score_mcq


@pytest.mark.real_data
@pytest.mark.slow
def test_conformance_with_lm_eval_on_smollm2_real_questions(wmdp_data_dir, tmp_path):
    """The embedded SmolLM2 on the first 10 questions of each subject shorter than 1,000 characters (cyber's longest
    hold code and hex dumps of thousands of tokens: minutes on 2 cores) and 10 of MMLU anatomy: identical predictions."""
    from unlearn.models import load_model, smollm2_dir

    lm = load_model("smollm2-135m")
    report = {}
    sets = {s: [q for q in load_wmdp(s, wmdp_data_dir)[0] if len(mcq_prompt(q)) < 1000][:10] for s in SUBJECTS}
    sets["mmlu_anatomy"] = load_mmlu_folder(wmdp_data_dir / "mmlu", ["anatomy"], per_subject=10)
    for name, qs in sets.items():
        ours = score_mcq(lm.model, lm.tokenizer, qs, batch_size=8)
        acc, loglik = run_lm_eval(smollm2_dir(), qs, tmp_path / name, task=f"conf_{name}")
        report[name] = (ours.acc, acc, float(np.abs(loglik - ours.loglik).max()))
        assert np.array_equal(loglik.argmax(-1), ours.pred), name
        assert acc == ours.acc and np.abs(loglik - ours.loglik).max() < 1e-3, name
    print("accuracy (ours, lm_eval) and the largest log-likelihood difference:", report)


def test_export_writes_a_folder_lm_eval_runs_on_unchanged(tmp_path, monkeypatch):
    """An unlearned tiny model exported as a plain folder: lm_eval (offline, local task) loads it and scores what
    our scorer scores on the same folder, and the record says how it was made."""
    from unlearn.benchmarks.wmdp.benchmark import WmdpBenchmark
    from unlearn.export import EXPORT_FILE, export_cell
    from unlearn.models import load_model

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    bench = WmdpBenchmark("tiny-qwen3", profile=_tiny_profile(), progress=False)
    out = tmp_path / "exported"
    record = export_cell(bench, "grad_ascent", "synthetic", out)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not (tmp_path / "exported.partial").exists()
    made = json.loads((out / EXPORT_FILE).read_text())
    assert made["method"] == "grad_ascent" and made["summary"] == record["summary"] and made["unlearn_schedule"]["max_steps"] == 2
    lm = load_model(str(out))
    d = bench.data("synthetic")
    ours = score_mcq(lm.model, lm.tokenizer, d.forget)
    assert ours.acc == made["metrics"]["hazard_acc_a"]  # the folder holds the model the cell evaluated
    acc, loglik = run_lm_eval(out, d.forget, tmp_path / "task")
    assert acc == ours.acc and np.array_equal(loglik.argmax(-1), ours.pred)
    with pytest.raises(FileExistsError, match="not empty"):
        export_cell(bench, "grad_ascent", "synthetic", out)


def test_export_keeps_iwap_pruning_in_the_plain_weights(tmp_path, monkeypatch):
    """IWAP's pruned neurons are zero in the exported weights, and the folder evaluates as the masked model did."""
    from unlearn.benchmarks.wmdp.benchmark import WmdpBenchmark
    from unlearn.export import export_cell
    from unlearn.models import load_model

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    bench = WmdpBenchmark("tiny-qwen3", profile=_tiny_profile(), progress=False)
    record = export_cell(bench, "iwap", "synthetic", tmp_path / "iwap", {"iwap": {"p": "0.05", "retain_tol": "inf", "target_log_odds": "-1000", "rounds": "1"}})

    lm = load_model(str(tmp_path / "iwap"))
    zero_rows = sum(int((layer.mlp.gate_proj.weight.abs().sum(-1) == 0).sum()) for layer in lm.model.model.layers)
    assert zero_rows > 0
    assert score_mcq(lm.model, lm.tokenizer, bench.data("synthetic").forget).acc == record["metrics"]["hazard_acc_a"]
