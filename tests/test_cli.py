"""The command line: version, listings and clear errors."""

import pytest

from unlearn import __version__
from unlearn.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-qwen3" in out and "smollm2-135m" in out and "Qwen/Qwen3-4B" in out


def test_methods_lists_all_with_descriptions(capsys):
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and all(len(line.split(None, 1)) == 2 for line in lines)


def test_tofu_aggregate_missing_folder(capsys, tmp_path):
    assert main(["tofu-aggregate", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["tofu-aggregate", str(tmp_path)]) == 2
    assert "eval_log_forget.json" in capsys.readouterr().err


def test_unreachable_hub_model_is_one_clear_line():
    """Offline (HF_HUB_OFFLINE=1, so no retries): one line that says the hub cannot be reached, no traceback."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "unlearn", "score", "hi", "--model", "no-such-org/no-such-model",
                          "--device", "cpu"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "warn" not in ln.lower()]
    assert lines == [lines[-1]] and "Traceback" not in res.stderr, res.stderr
    assert "cannot load model 'no-such-org/no-such-model'" in lines[-1] and "cannot be reached" in lines[-1]


def test_hub_errors_say_which():
    from huggingface_hub.errors import LocalEntryNotFoundError

    from unlearn.models import explain_hub_error

    class RepositoryNotFoundError(OSError):
        pass

    missing = OSError("x is not a local folder")
    missing.__cause__ = RepositoryNotFoundError("404 Client Error")
    assert "no such repository" in str(explain_hub_error("org/x", missing))
    offline = OSError("We couldn't connect to 'https://huggingface.co'")
    offline.__cause__ = LocalEntryNotFoundError("not cached")
    assert "cannot be reached" in str(explain_hub_error("org/x", offline))


@pytest.mark.parametrize("option", [["--precision", "fp16"], ["--data", "hub"]])
def test_bench_rejects_bad_choices(option, capsys):
    assert main(["bench", *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"unlearn: error: argument {option[0]}") and option[1] in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv,tiny", [(["bench"], True), (["bench", "--dry_run"], False),
                                       (["bench", "--model", "tiny-qwen3", "--dry_run"], True),
                                       (["bench", "--model", "smollm2-135m"], False), (["models"], False)])
def test_cli_pins_numerics_for_the_tiny_tier(argv, tiny):
    from unlearn.cli import parser, uses_tiny_tier

    assert uses_tiny_tier(parser().parse_args(argv)) is tiny


def test_eval_rejects_a_folder_that_is_not_an_adapter(capsys, tmp_path):
    assert main(["eval", "--model", "tiny-qwen3", "--adapter", str(tmp_path), "--max-rows", "1"]) == 2
    assert "adapter_config.json" in capsys.readouterr().err


def test_eval_runs_every_registered_benchmark_muse_included(capsys, tmp_path, monkeypatch):
    import json

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    assert main(["eval", "--benchmark", "muse", "--model", "tiny-qwen3", "--max-rows", "2", "--device", "cpu",
                 "--json", "--logs", str(tmp_path / "muse")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "muse" and out["split"] == "news" and "synthetic" in out["data"]
    assert {"verbmem_f", "knowmem_f", "knowmem_r", "privleak_min_k_auc", "mia_min_k_auc"} <= set(out["metrics"])
    assert all(0 <= out["metrics"][k] <= 1 for k in ("verbmem_f", "knowmem_f", "knowmem_r", "mia_min_k_auc"))
    assert (tmp_path / "muse" / "eval_summary.json").is_file() and (tmp_path / "muse" / "report.html").is_file()


def test_eval_against_a_target_and_a_gold_adds_the_cells_measures(capsys, monkeypatch):
    """The same model as checkpoint, target and gold: the MIA gap is exactly 0, PrivLeak 0 and forget efficacy
    undefined (the target knows nothing the gold does not), each as a cell of `unlearn bench` would record it."""
    import json
    import math

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    argv = ["eval", "--benchmark", "muse", "--model", "tiny-qwen3", "--max-rows", "2", "--device", "cpu"]
    assert main([*argv, "--json", "--target", "tiny-qwen3", "--gold", "tiny-qwen3"]) == 0
    out = json.loads(capsys.readouterr().out)
    judged = out["judged"]
    assert (judged["target"], judged["gold"]) == ("tiny-qwen3", "tiny-qwen3")
    assert set(judged["summary"]) == {"forget_efficacy", "retain_performance", "mia_auc"}
    assert math.isnan(judged["summary"]["forget_efficacy"])
    retain = judged["summary"]["retain_performance"]  # undefined where the target has no KnowMem-retain score
    assert math.isnan(retain) if out["metrics"]["knowmem_r"] == 0 else retain == 1.0
    auc = out["metrics"]["privleak_min_k_auc"]  # PrivLeak is undefined where the gold's AUC is 0
    assert judged["metrics"]["privleak"] == 0 if auc > 0 else math.isnan(judged["metrics"]["privleak"])
    assert judged["metrics"]["mia_gap"] == 0
    assert judged["summary"]["mia_auc"] == out["metrics"]["mia_min_k_plus_plus_auc"]
    assert main([*argv, "--target", "tiny-qwen3"]) == 2
    assert "--target and --gold go together" in capsys.readouterr().err
    assert main(["eval", "--benchmark", "wmdp", "--model", "tiny-qwen3", "--target", "tiny-qwen3", "--gold",
                 "tiny-qwen3"]) == 2
    assert "--benchmark wmdp has no comparison with a target and a gold (those that have: tofu, muse)" \
        in capsys.readouterr().err


def test_eval_names_the_valid_benchmarks_and_rejects_subjects_outside_wmdp(capsys):
    assert main(["eval", "--benchmark", "tofuu", "--model", "tiny-qwen3"]) == 2
    assert "valid benchmarks: tofu, muse, wmdp, unsafe" in capsys.readouterr().err
    assert main(["eval", "--benchmark", "tofu", "--model", "tiny-qwen3", "--subjects", "chem"]) == 2
    assert "argument --subjects: chem: the subjects are WMDP's question sets" in capsys.readouterr().err


def test_worker_processes_by_default_on_a_cpu_run_only(monkeypatch):
    """`unlearn bench` without --workers: one worker process per core on a CPU run with the local executor (two
    1-thread processes beat one 2-thread process on 2 cores); a GPU run and Ray keep 1; a given number is kept."""
    import torch

    from unlearn.bench import BenchArgs, default_workers
    from unlearn.numerics import CORES

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_workers(BenchArgs(workers=None)) == CORES == 2
    assert default_workers(BenchArgs(workers=None, device="cpu")) == CORES
    assert default_workers(BenchArgs(workers=None, executor="ray")) == 1
    assert default_workers(BenchArgs(workers=None, device="cuda")) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_workers(BenchArgs(workers=None)) == 1
