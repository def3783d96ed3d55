"""Gate a method from its own repository, for real: a fresh virtual environment gets this package (built from the
checkout, not linked to it) and the example repository ``tests/plugin_example`` (a method package with an
``unlearn.methods`` entry point, its ``unlearn-expectations.toml``), and ``pytest -p unlearn.gate`` runs there on
the tiny tier's TOFU forget01 cells of its real method (``example_npo``) and of its planted bug (``example_noop``,
the target returned unchanged). The real method must pass its rows, the planted bug must fail its forget-efficacy
row, and the snapshots must land in the example repository's ``__snapshots__``.

The environment reuses this one's installed dependencies (a path entry to its site-packages) and the model cache,
so the target and gold are the ones the TOFU cells of this run use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.tofu


def _run(cmd: list, cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory):
    """(python of a fresh venv holding this package and the example repository, a copy of that repository, env)."""
    from unlearn.cache import cache_root

    if os.environ.get("UNLEARN_NUMERICS") == "native":
        pytest.skip("the gate pins the numerics; this run does not")
    tmp = tmp_path_factory.mktemp("gate")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, transformers, pip, ...
    src = tmp / "unlearn-eval"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "unlearn", src / "unlearn", ignore=shutil.ignore_patterns("__pycache__"))
    repo = tmp / "example"
    shutil.copytree(ROOT / "tests" / "plugin_example", repo, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"))
           and k not in ("PYTHONPATH", "COV_CORE_SOURCE")}
    env["PYTEST_XDIST_WORKER_COUNT"] = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")  # the same torch threads
    env["UNLEARN_CACHE_DIR"] = str(cache_root())
    if env.get("UNLEARN_DATA_DIR"):  # the same folder from the example repository's working directory
        env["UNLEARN_DATA_DIR"] = str(Path(env["UNLEARN_DATA_DIR"]).resolve())
    for what in (src, repo):
        res = _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", what], tmp, env)
        assert res.returncode == 0, res.stdout + res.stderr
    where = _run([py, "-c", "import unlearn, unlearn_example_method, unlearn.gate.snapshots as s; "
                            "print(unlearn.__file__, s.TOLERANCES.is_file())"], repo, env)
    # installed, not the checkout, with its package data (the tier's tolerances the snapshots match within)
    assert where.returncode == 0 and str(site) in where.stdout and "True" in where.stdout, where.stdout + where.stderr
    return py, repo, env


def test_the_gate_passes_the_real_method_and_fails_the_planted_noop(user_repo):
    py, repo, env = user_repo
    junit = repo / "junit.xml"
    res = _run([py, "-m", "pytest", "-p", "unlearn.gate", "-p", "no:cacheprovider", "-m", "tofu", "-k", "forget01",
                "--unlearn-methods", "example_npo,example_noop", "--unlearn-set", "example_npo.lr=3x",
                "--snapshot-update", f"--junitxml={junit}", "-rA"], repo, env)
    out = res.stdout + res.stderr
    assert "unlearn.gate: methods example_npo, example_noop on tiny-qwen3; expectations: " \
           f"{repo / 'unlearn-expectations.toml'}" in out, out
    outcome = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kids = {child.tag for child in case}
        outcome[case.get("name")] = "failed" if kids & {"failure", "error"} else "skipped" if "skipped" in kids else "passed"
    rows = lambda m: {k: v for k, v in outcome.items() if k.startswith(f"test_row[tofu-forget01-{m}-")}  # noqa: E731
    assert rows("example_npo") == {"test_row[tofu-forget01-example_npo-forget_efficacy]": "passed",
                                   "test_row[tofu-forget01-example_npo-retain_performance]": "passed"}, out
    noop = rows("example_noop")
    assert noop["test_row[tofu-forget01-example_noop-forget_efficacy]"] == "failed", out
    assert "example_noop on tofu/forget01: forget_efficacy=0" in out and "(row from the default bar)" in out, out
    assert set(noop) == {f"test_row[tofu-forget01-example_noop-{r}]"
                         for r in ("forget_efficacy", "retain_performance", "mia_gap")}
    assert res.returncode == 1, out  # a failing row fails the repository's CI
    snaps = list((repo / "__snapshots__" / "unlearn").rglob("*.ambr"))
    assert len(snaps) == 1 and "test_snapshot[tofu-forget01-example_npo]" in snaps[0].read_text(), snaps


def test_a_checkpoint_is_gated_on_its_evaluation_with_its_logs_kept(user_repo, data_dir):
    """``--unlearn-checkpoint``: no unlearning, the rows of [wmdp.checkpoint] on the embedded SmolLM2's WMDP-bio
    accuracy (the first 8 questions of the data folder's copy). Each row's outcome must be what its bootstrap interval
    says (a bar below every possible value passes, one above fails, a metric the evaluation lacks fails naming the
    ones it has), and the per-question log lands in unlearn-logs/."""
    import json

    import numpy as np

    from unlearn.gate.verdicts import decide
    from unlearn.intervals import mean_interval

    if not data_dir or not (Path(data_dir) / "wmdp").is_dir():
        pytest.skip("WMDP questions not found: set UNLEARN_DATA_DIR (or --data-dir) to a folder with wmdp/")
    py, repo, env = user_repo
    bars = repo / "checkpoint-bars.toml"
    bars.write_text('[wmdp.checkpoint]\nwmdp_bio_acc = ">= 0"\nwmdp_bio_acc_norm = "<= 1.5"\n'
                    'wmdp_bio_nope = "<= 1"\n')
    bars_fail = repo / "checkpoint-fail.toml"
    bars_fail.write_text('[wmdp.checkpoint]\nwmdp_bio_acc = ">= 1.01"\n')
    junit = repo / "checkpoint.xml"
    res = _run([py, "-m", "pytest", "-p", "unlearn.gate", "-p", "no:cacheprovider", "-m", "wmdp",
                "--unlearn-checkpoint", "smollm2-135m", "--unlearn-expectations", bars, "--unlearn-max-rows", "8",
                "--unlearn-data-dir", Path(data_dir).resolve(), f"--junitxml={junit}", "-rA"], repo, env)
    out = res.stdout + res.stderr
    outcome = {c.get("name"): "failed" if {k.tag for k in c} & {"failure", "error"} else
               "skipped" if "skipped" in {k.tag for k in c} else "passed" for c in ET.parse(junit).getroot().iter("testcase")}
    log = json.loads((repo / "unlearn-logs" / "wmdp-all.json").read_text())
    pq = log["per_question"]["wmdp_bio"]
    assert len(pq["pred"]) == 8 and log["model"] == "smollm2-135m", log.keys()
    acc = float(np.mean(np.array(pq["pred"]) == np.array(pq["answer"])))
    assert log["metrics"]["wmdp_bio_acc"] == pytest.approx(acc)
    assert decide(acc, mean_interval([float(p == a) for p, a in zip(pq["pred"], pq["answer"])]), ">=", 0) == "pass"
    assert outcome["test_checkpoint[wmdp-all-checkpoint-wmdp_bio_acc]"] == "passed", out
    assert outcome["test_checkpoint[wmdp-all-checkpoint-wmdp_bio_acc_norm]"] == "passed", out
    assert outcome["test_checkpoint[wmdp-all-checkpoint-wmdp_bio_nope]"] == "failed", out
    assert "wmdp.checkpoint.wmdp_bio_nope: the evaluation has no such metric; its metrics: wmdp_bio_acc, " \
           "wmdp_bio_acc_norm" in out, out
    assert res.returncode == 1, out
    res = _run([py, "-m", "pytest", "-p", "unlearn.gate", "-p", "no:cacheprovider", "-m", "wmdp",
                "--unlearn-checkpoint", "smollm2-135m", "--unlearn-expectations", bars_fail, "--unlearn-max-rows", "8",
                "--unlearn-data-dir", Path(data_dir).resolve()], repo, env)
    assert res.returncode == 1 and f"wmdp_bio_acc={acc:.4g} [" in res.stdout and "(want >= 1.01)" in res.stdout, \
        res.stdout + res.stderr


@pytest.fixture(scope="module")
def real_tofu_models():
    """(target, gold) folders: tiny-qwen3 trained with the tiny tier's TOFU target recipe on the embedded real
    TOFU: the target on the forget01 authors and on the first 8 rows of each set the checkpoint rows are scored on
    beside them (retain, real authors, world facts: every Model Utility term above 0), the gold on those rows
    alone, in as many steps. Built once and cached like every target (requested after ``user_repo``, which skips a
    run without the numerics pins)."""
    import dataclasses

    from unlearn.benchmarks.tofu.benchmark import TofuBenchmark
    from unlearn.benchmarks.tofu.data import find_tofu_source, load_tofu
    from unlearn.models import load_model
    from unlearn.train import finetuned_model_dir

    d = load_tofu("forget01", find_tofu_source(None)[0])
    kept = [(r.question, r.answer) for rows in (d.retain_train, d.retain_eval, d.real_authors, d.world_facts)
            for r in rows[:8]]
    full = kept + [(r.question, r.answer) for r in d.forget]
    cfg = dataclasses.replace(TofuBenchmark("tiny-qwen3", progress=False).profile.target, progress=False)
    build = lambda rows, kind, c: finetuned_model_dir(kind, "tiny-qwen3", rows, c,  # noqa: E731
                                                      lambda: load_model("tiny-qwen3", device="cpu"))
    # the gold takes as many steps as the target (its rows are fewer, its epochs more)
    gold_cfg = dataclasses.replace(cfg, epochs=round(cfg.epochs * len(full) / len(kept)))
    return build(full, "gate-target", cfg), build(kept, "gate-gold", gold_cfg)


def test_a_checkpoint_is_measured_against_the_target_and_gold_it_names(user_repo, real_tofu_models):
    """``--unlearn-target T --unlearn-gold G``: a [tofu.checkpoint] table's cell rows (forget efficacy, Forget
    Quality) are measured against the two models on the checkpoint's rows and decided as a method's rows are. The
    gold as the checkpoint forgets everything the target knew: efficacy exactly 1 (on every bootstrap draw), Forget
    Quality 1 (its truth ratios are the gold's); the target itself as the checkpoint (a planted no-op unlearning)
    must fail its efficacy row, with 0 on every draw. The judged numbers must equal the summary formula applied to
    the three models' own `unlearn eval` metrics."""
    import json

    from unlearn.benchmarks.base import summary_columns
    from unlearn.eval_job import run_eval

    py, repo, env = user_repo
    target, gold = real_tofu_models
    bars = repo / "checkpoint-tofu.toml"
    bars.write_text('[tofu.checkpoint]\nforget_efficacy = ">= 0.5"\nforget_quality = ">= 0.05"\n'
                    'forget_rouge = "<= 1"\n')

    def gate(checkpoint, logs: str):
        junit = repo / f"{logs}.xml"
        res = _run([py, "-m", "pytest", "-p", "unlearn.gate", "-p", "no:cacheprovider", "-m", "tofu", "-k", "forget01",
                    "--unlearn-checkpoint", checkpoint, "--unlearn-target", target, "--unlearn-gold", gold,
                    "--unlearn-expectations", bars, "--unlearn-max-rows", "8", "--unlearn-logs", repo / logs,
                    f"--junitxml={junit}", "-rA"], repo, env)
        outcome = {c.get("name"): "failed" if {k.tag for k in c} & {"failure", "error"} else
                   "skipped" if "skipped" in {k.tag for k in c} else "passed"
                   for c in ET.parse(junit).getroot().iter("testcase")}
        log = repo / logs / "tofu-forget01.json"
        assert log.is_file(), res.stdout[-4000:] + res.stderr[-4000:]  # the evaluation ran
        return res, outcome, json.loads(log.read_text())

    row = "test_checkpoint[tofu-forget01-checkpoint-{}]".format
    res, outcome, gold_log = gate(gold, "gold-logs")
    out = res.stdout + res.stderr
    assert f"against target {target} and gold {gold}" in out, out
    judged = gold_log["judged"]
    assert judged["summary"]["forget_efficacy"] == 1.0 and judged["intervals"]["ci"]["forget_efficacy"] == [1.0, 1.0]
    assert judged["metrics"]["forget_quality"] == pytest.approx(1.0)
    assert outcome == {row("forget_efficacy"): "passed", row("forget_quality"): "passed",
                       row("forget_rouge"): "passed"}, out
    assert res.returncode == 0, out

    res, outcome, log = gate(target, "target-logs")
    out = res.stdout + res.stderr
    assert log["judged"]["summary"]["forget_efficacy"] == 0.0, log["judged"]
    assert outcome[row("forget_efficacy")] == "failed" and res.returncode == 1, out
    assert "forget_efficacy=0 [0, 0] (want >= 0.5): the interval misses the bar" in out, out

    # the judged summary is the summary formula on the models' own evaluations of the same rows (the gold's retain
    # performance is its Model Utility over the target's)
    own = {name: run_eval("tofu", "forget01", str(path), max_rows=8, progress=False)["metrics"]
           for name, path in (("target", target), ("gold", gold))}
    want = summary_columns(own["target"]["forget_rouge"], own["gold"]["forget_rouge"], own["gold"]["forget_rouge"],
                           own["target"]["model_utility"], own["gold"]["model_utility"],
                           own["gold"]["mia_min_k_plus_plus_auc"])
    assert judged["summary"] == pytest.approx(want) and 0 < want["retain_performance"] != 1
