"""The main job's runner: resume after SIGKILL gives the same results; output schema, LaTeX, PNG."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unlearn.benchmarks import Profile, TofuBenchmark
from unlearn.benchmarks.muse.benchmark import MuseBenchmark, MuseProfile, MuseProtocol
from unlearn.benchmarks.tofu.protocol import EvalProtocol
from unlearn.report import SCHEMA_VERSION
from unlearn.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def tofu_profile():
    """The TOFU job's recipe (the job and the gold row's re-evaluation both build it): 4 synthetic authors."""
    return Profile(target=TrainConfig(lr=3e-3, epochs=10, batch_size=16, progress=False),
                   unlearn=TrainConfig(lr=1e-3, max_steps=2, batch_size=8, progress=False), lora=None,
                   protocol=EvalProtocol(max_new_tokens=8), synthetic_authors=4, use_real_data=False)


RUN = """
import sys
from evals.test_main_job import tofu_profile
from unlearn.bench import BenchArgs, run_bench
run_bench(BenchArgs(benchmarks=["tofu"], methods=["grad_ascent", "npo"], splits=["forget10"], output_dir=sys.argv[1],
                    profile=tofu_profile(), progress=False, overrides={"npo": {"beta": "0.2"}}))
"""


def _env(tmp_path):
    return {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def gold_evaluated_again(bench, cell: dict, cache: Path) -> dict:
    """The gold model that ``cell`` (a retrain row) names, loaded from the job's cache folder ``cache`` and evaluated
    here: not the job's cached reference evaluation, which the row and every row's references read."""
    folder = cache / cell["model"]["gold"]
    assert json.loads((folder / "recipe.json").read_text())["kind"].endswith("gold"), folder  # not the target's
    return bench.evaluate(bench.load(folder, adapters=False), cell["split"])


def _run(out, env):
    return subprocess.run([sys.executable, "-c", RUN, str(out)], env=env, capture_output=True, text=True, timeout=600)


def _comparable(path):
    doc = json.loads((path / "benchmark_results.json").read_text())
    cells = sorted(doc["cells"], key=lambda c: c["method"])
    for c in cells:
        for volatile in ("wall_s", "peak_memory_mb"):
            c.pop(volatile)
        if c.get("cost"):
            c["cost"].pop("unlearn_s")
    return doc, cells


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    res = _run(tmp / "straight", _env(tmp))
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp


def test_killed_run_resumes_to_identical_results(uninterrupted):
    tmp, env = uninterrupted, _env(uninterrupted)
    out = tmp / "killed"
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "cells").glob("*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = list((out / "cells").glob("*.json"))
    assert 1 <= len(stored) < 3, "the kill should land after the first cell and before the last"
    assert not (out / "benchmark_results.json").exists()
    res = _run(out, env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("skip tofu/forget10/") == len(stored)
    assert _comparable(out)[1] == _comparable(tmp / "straight")[1]


def test_results_schema_and_outputs(uninterrupted):
    out = uninterrupted / "straight"
    doc, cells = _comparable(out)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert {"model", "git_commit", "packages", "protocol", "wall_s"} <= set(doc["run"])
    assert doc["run"]["packages"]["torch"]
    assert [c["method"] for c in cells] == ["grad_ascent", "npo", "retrain"]
    for c in cells:
        assert {"benchmark", "method", "split", "summary", "metrics", "per_question", "method_config", "model", "data"} <= set(c)
        assert set(c["summary"]) == {"forget_efficacy", "retain_performance", "mia_auc"}
        assert {"model_utility", "forget_quality", "forget_rouge", "mia_min_k_plus_plus_auc"} <= set(c["metrics"])
        assert len(c["per_question"]["logs"]["forget"]["avg_gt_loss"]) == len(c["per_question"]["forget_extraction_strength"])
        assert c["data"]["hash"] and c["model"]["target"].startswith("target-")
    assert cells[1]["method_config"]["beta"] == 0.2  # the override reached the method
    # the summary is normalised against real references: the gold (retain-only) model's folder, evaluated again
    # here, gives the retrain row and every row's gold references (the same computation on the same model: equal up
    # to a GPU kernel's last bits), and it knows the forget authors less than the target trained on them
    gold, refs = cells[2], cells[2]["references"]
    bench = TofuBenchmark("tiny-qwen3", profile=tofu_profile(), device=gold["device"], progress=False)
    again = gold_evaluated_again(bench, gold, uninterrupted / "cache")["aggregates"]
    assert {k: gold["metrics"][k] for k in ("forget_rouge", "model_utility")} == pytest.approx(
        {k: again[k] for k in ("forget_rouge", "model_utility")}, rel=1e-6)
    assert refs["gold"] == pytest.approx({k: again[k] for k in refs["gold"]}, rel=1e-6)
    assert refs["gold"]["forget_rouge"] < refs["target"]["forget_rouge"] - 0.1, refs
    assert all(c["references"] == refs for c in cells)
    # the page: every cell's drill-down, with the target's answers beside the gold's and the method's
    page = (out / "report.html").read_text()
    assert page.count('<details class="drill"') == 3
    drill = json.loads(page.split('<script type="application/json" id="drill-data">')[1].split("</script>")[0])
    shared = drill["shared"]["tofu-forget10"]
    assert len(shared) == len(cells[0]["per_question"]["logs"]["forget"]["avg_gt_loss"])
    assert all(row[2] is not None and row[3] is not None for row in shared)  # target's and gold's answers
    png = (out / "forget_vs_retain.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "dynamics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # unlearning dynamics: before the first step, then per epoch, ending on the model that was evaluated (the
    # probe covers every forget row of this small split, so its last forget Prob is the evaluation's)
    assert cells[2]["dynamics"] is None and cells[2]["cost"] is None  # the gold row is not an unlearning run
    for c in cells[:2]:
        steps = [p["step"] for p in c["dynamics"]]
        assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 2
        assert c["dynamics"][-1]["forget_prob"] == pytest.approx(c["metrics"]["forget_prob"], abs=1e-5)
        assert c["dynamics"][-1]["forget_prob"] < c["dynamics"][0]["forget_prob"]
        assert c["cost"]["tokens"] > 0
    tex = (out / "results_table.tex").read_text()
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") and r"\toprule" in tex and r"\bottomrule" in tex
    assert "grad\\_ascent" in tex and "retrain (gold)" in tex
    assert "| retrain (gold) |" in (out / "results.md").read_text()


def _independent_aggregates(folder: Path) -> dict[str, float]:
    """The TOFU formulas (unlearn/benchmarks/tofu/README.md) written out again from the TOFU-format log files alone, without
    unlearn.metrics (the cell's numbers come from there): plain loops, math.exp, 9 / sum(1/x)."""
    import math

    files = {"retain": "eval_log.json", "real_authors": "eval_real_author_wo_options.json",
             "world_facts": "eval_real_world_wo_options.json", "forget": "eval_log_forget.json"}
    out, terms = {}, []
    for split, name in files.items():
        log = json.loads((folder / name).read_text())
        rows = sorted(log["avg_gt_loss"], key=int)
        probs, ratios = [], []
        for r in rows:
            p_true = math.exp(-log["avg_gt_loss"][r])
            perturbed = log["average_perturb_loss"][r]
            if split in ("real_authors", "world_facts"):
                p_true = p_true / (p_true + sum(math.exp(-x) for x in perturbed))
            probs.append(p_true)
            gm_perturbed = math.exp(-sum(perturbed) / len(perturbed))  # geometric mean of P(perturbed_j)
            ratio = gm_perturbed / math.exp(-log["avg_paraphrased_loss"][r])
            ratios.append(min(ratio, 1 / ratio) if split == "forget" else max(0.0, 1 - ratio))
        values = {"prob": sum(probs) / len(rows), "rouge": sum(log["rougeL_recall"][r] for r in rows) / len(rows),
                  "truth_ratio": sum(ratios) / len(rows)}
        out.update({f"{split}_{k}": v for k, v in values.items()})
        if split != "forget":
            terms += values.values()
    out["model_utility"] = 0.0 if min(terms) <= 0 else len(terms) / sum(1 / t for t in terms)
    return out


def test_cell_metrics_match_an_independent_computation_from_the_logs(uninterrupted):
    out = uninterrupted / "straight"
    for cell_file in sorted((out / "cells").glob("*.json")):
        cell = json.loads(cell_file.read_text())
        again = _independent_aggregates(out / "tofu_logs" / cell_file.stem)
        assert len(again) == 13
        for k, v in again.items():
            assert cell["metrics"][k] == pytest.approx(v, rel=1e-9, abs=1e-12), (cell_file.stem, k)


def test_bad_arguments_fail_before_any_output(tmp_path):
    for args in (["--methods", "npoo"], ["--splits", "forget02"], ["--benchmarks", "tofuu"], ["--set", "npo.bet=1"],
                 ["--protocol", "standard"]):
        res = subprocess.run([sys.executable, "-m", "unlearn", "bench", "--output_dir", str(tmp_path / "o"), *args],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert res.returncode == 2 and "valid" in res.stderr, (args, res.stderr)
        assert not (tmp_path / "o").exists()


def muse_profile():
    """The MUSE job's recipe (the job and the gold row's re-evaluation both build it): one gold for every step."""
    return MuseProfile(target=TrainConfig(lr=3e-3, epochs=3, batch_size=8, progress=False),
                       unlearn=TrainConfig(lr=1e-3, max_steps=1, batch_size=8, progress=False), lora=None,
                       protocol=MuseProtocol(name="tiny", verbmem_rows=2, verbmem_new_tokens=8, knowmem_rows=3,
                                             knowmem_new_tokens=4, privleak_rows=4),
                       use_real_data=False, step_golds=False, dynamics_rows=(2, 2))


MUSE_RUN = """
import sys
from evals.test_main_job import muse_profile
from unlearn.bench import BenchArgs, run_bench
run_bench(BenchArgs(benchmarks=["muse"], methods=["grad_ascent"], splits=["news", "news-sust"], output_dir=sys.argv[1],
                    profile={"muse": muse_profile()}, progress=False))
"""


def test_muse_in_the_main_job(tmp_path):
    """`unlearn bench --benchmarks muse`: cells with MUSE's criteria (every step of a sustainability cell), and
    tables and JSON that carry them, labelled with the synthetic corpus."""
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", MUSE_RUN, str(out)], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((out / "benchmark_results.json").read_text())
    cells = {(c["split"], c["method"]): c for c in doc["cells"]}
    assert set(cells) == {(s, m) for s in ("news", "news-sust") for m in ("grad_ascent", "retrain")}
    assert doc["run"]["data"]["muse"] == [cells["news", "retrain"]["data"]["source"]]
    assert "synthetic news (fictitious" in doc["run"]["data"]["muse"][0]
    for c in cells.values():
        assert c["benchmark"] == "muse" and set(c["summary"]) == {"forget_efficacy", "retain_performance", "mia_auc"}
        assert {"verbmem_f", "knowmem_f", "knowmem_r", "privleak", "mia_min_k_plus_plus_auc"} <= set(c["metrics"])
    sust = cells["news-sust", "grad_ascent"]
    assert [s["forget_texts"] for s in sust["metrics"]["steps"]] == [8, 8, 8, 8]  # four requests of 6 articles + 2 quizzes
    assert sust["metrics"]["steps"][-1]["metrics"] == {k: v for k, v in sust["metrics"].items() if k != "steps"}
    assert cells["news", "grad_ascent"]["dynamics"][0]["step"] == 0
    # news-sust's first request is the news cell's run (the same forget set from the same target): shared, not re-run
    assert sust["metrics"]["steps"][0]["metrics"] == cells["news", "grad_ascent"]["metrics"]
    assert any("shared by news" in n for n in sust["notes"]), sust["notes"]
    # every step of the retrain row is gold_1 (step_golds=False): its folder, evaluated again here, gives each step's
    # numbers (the row's PrivLeak, measured against the cached reference it was read from, is 0 by definition)
    gold = cells["news-sust", "retrain"]
    bench = MuseBenchmark("tiny-qwen3", profile=muse_profile(), device=gold["device"], progress=False)
    again = gold_evaluated_again(bench, gold, tmp_path / "cache")
    names = ("verbmem_f", "knowmem_f", "knowmem_r", "privleak_auc")
    for step in gold["metrics"]["steps"]:
        assert {k: step["metrics"][k] for k in names} == pytest.approx({k: again[k] for k in names}, rel=1e-6)
    md, tex = (out / "results.md").read_text(), (out / "results_table.tex").read_text()
    assert "## muse news-sust" in md and "verbmem_f | knowmem_f | knowmem_r | privleak" in md
    assert r"MUSE news-sust" in tex


WMDP_RUN = """
import sys
from unlearn.bench import BenchArgs, run_bench
from unlearn.benchmarks.wmdp.benchmark import WmdpProfile, WmdpProtocol
from unlearn.train import TrainConfig
profile = WmdpProfile(target=TrainConfig(lr=3e-3, epochs=2, batch_size=8, progress=False),
                      unlearn=TrainConfig(lr=1e-3, max_steps=1, batch_size=8, progress=False), lora=None,
                      protocol=WmdpProtocol(name="synthetic-test"), text_length=128,
                      synthetic=dict(n_agents=4, n_general=4), dynamics_rows=2)
run_bench(BenchArgs(benchmarks=["wmdp"], methods=["grad_ascent"], splits=["synthetic"], output_dir=sys.argv[1],
                    profile={"wmdp": profile}, progress=False))
"""


def test_wmdp_in_the_main_job(tmp_path):
    """`unlearn bench --benchmarks wmdp`: cells with hazard accuracy on A and B beside the summary, labelled with
    the synthetic domain in the JSON, the notes and the tables."""
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", WMDP_RUN, str(out)], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((out / "benchmark_results.json").read_text())
    cells = {c["method"]: c for c in doc["cells"]}
    assert set(cells) == {"grad_ascent", "retrain"}
    assert "synthetic fictitious hazardous domain" in doc["run"]["data"]["wmdp"][0]
    assert any("not the real questions" in n for n in doc["run"]["notes"])
    for c in cells.values():
        assert c["benchmark"] == "wmdp" and c["protocol_name"] == "synthetic" and c["data"]["kind"] == "synthetic"
        assert {"hazard_acc_a", "hazard_acc_b", "gold_hazard_acc_a", "utility_acc", "mia_min_k_plus_plus_auc"} <= set(c["metrics"])
    assert cells["grad_ascent"]["dynamics"][0]["step"] == 0
    md = (out / "results.md").read_text()
    assert "## wmdp synthetic" in md and "hazard_acc_a | hazard_acc_b | gold_hazard_acc_a | utility_acc | top_letter_share_utility" in md
