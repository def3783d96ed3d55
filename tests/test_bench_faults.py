"""Faults a grid run meets, tried on ``unlearn bench``'s runner with a stand-in benchmark (no model): an output
folder that cannot take the files, a loss that turns NaN in one cell, a data file edited between runs, cell files
damaged or of another schema version, and results files that ``read_results`` refuses by name."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import unlearn.bench
from unlearn.bench import BenchArgs, run_bench
from unlearn.benchmarks import BENCHMARKS
from unlearn.cli import main
from unlearn.report import SCHEMA_VERSION, ResultsError, read_results
from unlearn.train import check_finite


@dataclass
class FakeData:
    rows: list[str]
    source: str = "fake"


class FakeBench:
    """Registered as benchmark 'fake': one split, data read from ``FakeBench.data_file``; ``nan_method``'s
    cell stops the way the training loop stops on a non-finite loss; ``ran`` lists the cells computed."""

    splits = ("s1",)
    dry_run_splits = ("s1",)
    data_file: Path | None = None
    nan_method: str | None = None
    ran: list = []

    def __init__(self, model, **kwargs):
        self.model, self.kwargs = model, kwargs
        self.precision, self.device = "fp32", "cpu"
        self.profile = SimpleNamespace(protocol=SimpleNamespace(name="fake", describe=lambda: "fake protocol"),
                                       robustness=None, method_overrides={})

    def data(self, split):
        return FakeData(FakeBench.data_file.read_text().splitlines())

    def data_sources(self):
        return ["fake"]

    def run_cell(self, method, split, overrides):
        FakeBench.ran.append(method)
        if method == FakeBench.nan_method:
            check_finite(torch.tensor(float("nan")), 3, method)  # what the loop raises, step and all
        score = len(self.data(split).rows) / 10
        return {"benchmark": "fake", "method": method, "split": split,
                "summary": {"forget_efficacy": score, "retain_performance": 1.0,
                            "mia_auc": 0.5 + self.kwargs.get("seed", 0) / 100}, "metrics": {}}


def register_fake(monkeypatch, tmp_path, cls: type = FakeBench) -> Path:
    """``cls`` (FakeBench or a subclass) registered as benchmark 'fake' for the test, its data file written."""
    data = tmp_path / "rows.txt"
    data.write_text("a\nb\nc\n")
    monkeypatch.setitem(BENCHMARKS._items, "fake", cls)
    monkeypatch.setattr(FakeBench, "data_file", data)
    monkeypatch.setattr(FakeBench, "nan_method", None)
    monkeypatch.setattr(FakeBench, "ran", [])
    return data


@pytest.fixture
def fake(monkeypatch, tmp_path):
    data = register_fake(monkeypatch, tmp_path)
    return SimpleNamespace(data=data, out=tmp_path / "out",
                           args=lambda **kw: BenchArgs(benchmarks=["fake"], methods=["grad_ascent", "npo"],
                                                       output_dir=str(tmp_path / "out"), progress=False, **kw))


def _quiet(*_):
    pass


# ---------------------------------------------------------------- output folder
def _fail_open(code):
    def fake_open(*_a, **_k):
        raise OSError(code, {errno.EROFS: "Read-only file system", errno.ENOSPC: "No space left on device"}[code])

    return fake_open


@pytest.mark.parametrize("fault,expected", [
    ("file", "is a file, not a folder"),
    ("read-only", "cannot be written (read-only file system)"),
    ("full", "cannot be written (no space left on the device)"),
    ("nearly-full", "MiB free, under the 64 MiB a run needs"),
])
def test_unusable_output_folder_fails_before_any_training(fault, expected, fake, monkeypatch, capsys):
    out = fake.out
    if fault == "file":
        out.write_text("not a folder")
    elif fault == "read-only":  # the tests may run as root, for whom chmod does not stop a write
        monkeypatch.setattr(unlearn.bench, "open", _fail_open(errno.EROFS), raising=False)
    elif fault == "full":
        monkeypatch.setattr(unlearn.bench, "open", _fail_open(errno.ENOSPC), raising=False)
    else:
        monkeypatch.setattr(unlearn.bench.shutil, "disk_usage", lambda _p: SimpleNamespace(free=5 * 2**20))
    assert main(["bench", "--benchmarks", "fake", "--methods", "npo", "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    named = "argument --output_dir/--output-dir: " if fault == "file" else "output folder "  # a file: by the option's type
    assert err.startswith("unlearn: error: " + named) and str(out) in err and "\n" not in err, err
    assert expected in err, err
    assert FakeBench.ran == []
    assert not out.is_dir() or [p.name for p in out.iterdir()] == []  # no probe left behind


def test_read_only_folder_really_refused(fake, tmp_path):
    """The real thing where the permission bits bind (not as root)."""
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: permission bits do not stop root's writes (the monkeypatched case covers it)")
    fake.out.mkdir()
    fake.out.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="cannot be written"):
            run_bench(fake.args(), log=_quiet)
    finally:
        fake.out.chmod(0o755)


# ---------------------------------------------------------------- a NaN loss in one cell
def test_nan_loss_stops_its_cell_and_the_grid_goes_on(fake, monkeypatch, capsys):
    FakeBench.nan_method = "npo"
    # one process: the fake benchmark is registered in this one (a worker process would not know it)
    argv = ["bench", "--benchmarks", "fake", "--methods", "grad_ascent,npo", "--output_dir", str(fake.out), "--workers", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("unlearn: 1 cell(s) stopped: fake/s1/npo"), err
    assert FakeBench.ran == ["grad_ascent", "npo", "retrain"]  # retrain ran after the failure
    doc = read_results(fake.out)
    assert [c["method"] for c in doc["cells"]] == ["grad_ascent", "retrain"]
    (stop,) = doc["run"]["failed"]
    assert stop["method"] == "npo" and "loss became nan at optimiser step 3" in stop["error"]
    md = (fake.out / "results.md").read_text()
    assert "fake/s1/npo: npo: loss became nan at optimiser step 3" in md
    assert len(list((fake.out / "cells").glob("*.json"))) == 2  # the stopped cell left no file
    FakeBench.nan_method, FakeBench.ran = None, []  # fixed: the rerun computes only the stopped cell
    assert main(argv) == 0
    assert FakeBench.ran == ["npo"]
    assert read_results(fake.out)["run"]["failed"] == []


# ---------------------------------------------------------------- data edited between runs
def test_data_file_changed_between_runs_recomputes_its_cells(fake):
    first = run_bench(fake.args(), log=_quiet)
    FakeBench.ran = []
    run_bench(fake.args(), log=_quiet)
    assert FakeBench.ran == []  # unchanged data: every cell reused
    fake.data.write_text("a\nb\nc\nd\n")
    again = run_bench(fake.args(), log=_quiet)
    assert FakeBench.ran == ["grad_ascent", "npo", "retrain"]
    assert [c["summary"]["forget_efficacy"] for c in first["cells"]] == [0.3] * 3
    assert [c["summary"]["forget_efficacy"] for c in again["cells"]] == [0.4] * 3


def test_tofu_cell_key_follows_the_content_of_every_data_file(real_data_dir, tmp_path):
    """An edit in a training file and one in an evaluation-only file each change the real TOFU key."""
    from unlearn.bench import data_hash
    from unlearn.benchmarks import TofuBenchmark
    from unlearn.benchmarks.tofu.data import parse_json_text

    folder = tmp_path / "data" / "tofu"
    folder.mkdir(parents=True)
    for f in (real_data_dir / "tofu").glob("*.json"):
        (folder / f.name).write_bytes(f.read_bytes())

    def key():
        return data_hash(TofuBenchmark("smollm2-135m", data_dir=str(tmp_path / "data"), dry_run=True), "forget01")

    before = key()
    assert key() == before
    seen = {before}
    for name in ("forget01_perturbed.json", "world_facts_perturbed.json"):
        path = folder / name
        text = path.read_text()
        rows = parse_json_text(path, text)
        rows[0]["answer"] += " (edited)"
        path.write_text(json.dumps(rows))
        seen.add(key())
        path.write_text(text)
    assert len(seen) == 3 and key() == before


# ---------------------------------------------------------------- damaged cell files
@pytest.mark.parametrize("damage,why", [
    (lambda p: p.write_text(p.read_text()[:20]), "unreadable (JSONDecodeError"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "schema_version": 2})),
     "written by schema version 2, this version writes"),
    (lambda p: p.write_text("[1, 2]"), "written by schema version list"),
], ids=["truncated", "older-schema", "not-a-cell"])
def test_damaged_cell_file_is_recomputed_not_loaded(damage, why, fake):
    first = run_bench(fake.args(), log=_quiet)
    npo = next(p for p in (fake.out / "cells").glob("*.json") if "-npo-" in p.name)
    damage(npo)
    FakeBench.ran, lines = [], []
    again = run_bench(fake.args(), log=lines.append)
    assert FakeBench.ran == ["npo"]
    assert any(line.startswith("recompute fake/s1/npo: ") and why in line for line in lines), lines
    assert again["cells"] == first["cells"]
    assert json.loads(npo.read_text())["schema_version"] == SCHEMA_VERSION


# ---------------------------------------------------------------- results files
@pytest.mark.parametrize("text,expected", [
    (None, "no such results file"),
    ('{"schema_version": 3, "run": {', "not valid JSON"),
    ('{"schema_version": 1, "run": {}, "cells": []}', "schema version 1, this version of unlearn reads"),
    ('{"run": {}, "cells": []}', "not an `unlearn bench` results file"),
    ('[]', "not an `unlearn bench` results file"),
    ('{"schema_version": SV, "run": {}, "cells": [{"method": "npo"}]}', "cells[0] lacks benchmark, split, summary"),
], ids=["absent", "truncated", "other-schema", "no-version", "not-an-object", "cell-without-fields"])
def test_results_file_that_cannot_be_read_is_named(text, expected, tmp_path):
    path = tmp_path / "benchmark_results.json"
    if text is not None:
        path.write_text(text.replace("SV", str(SCHEMA_VERSION)))
    with pytest.raises(ResultsError) as err:
        read_results(tmp_path)
    assert str(path) in str(err.value) and expected in str(err.value), err.value


def test_results_of_this_version_read_back(fake):
    run_bench(fake.args(), log=_quiet)
    doc = read_results(fake.out / "benchmark_results.json")
    assert doc["schema_version"] == SCHEMA_VERSION and len(doc["cells"]) == 3


# ---------------------------------------------------------------- an adapter for another base model
def test_adapter_for_another_base_model_is_refused_by_name(tmp_path, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from unlearn.models.tiny import TINY_CONFIG

    other = Qwen3ForCausalLM(Qwen3Config(**{**TINY_CONFIG, "hidden_size": 96, "intermediate_size": 128}, vocab_size=300))
    adapter = tmp_path / "adapter"
    get_peft_model(other, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    assert main(["eval", "--model", "tiny-qwen3", "--adapter", str(adapter), "--max-rows", "1",
                 "--logs", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"unlearn: error: --adapter {adapter}: made for another base model, it does not fit 'tiny-qwen3'"), err
    assert "size mismatch" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("text,expected", [('{"benchmark": "tofu", ', "not a readable cell file"),
                                           ("[]", "a JSON object is expected"),
                                           ('{"benchmark": "tofu"}', "field 'method' missing")])
def test_export_of_a_damaged_cell_file_names_it(text, expected, tmp_path, capsys):
    cell = tmp_path / "tofu-forget01-npo-0123456789.json"
    cell.write_text(text)
    assert main(["export", str(cell), "--out", str(tmp_path / "exported")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"unlearn: error: {cell}: ") and expected in err and "\n" not in err, err


def test_two_runs_on_one_folder_compute_each_cell_once(fake, monkeypatch):
    """Two `unlearn bench` runs started together on one output folder: each cell is computed by one of
    them (a lock per cell; the other waits and reuses the file), and both report the same cells."""
    import threading
    import time

    slow = FakeBench.run_cell

    def run_cell(self, method, split, overrides):
        time.sleep(0.3)  # long enough for the other run to reach the same cell
        return slow(self, method, split, overrides)

    monkeypatch.setattr(FakeBench, "run_cell", run_cell)
    results = [None, None]

    def go(i):
        results[i] = run_bench(fake.args(), log=_quiet)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(FakeBench.ran) == ["grad_ascent", "npo", "retrain"]
    assert results[0]["cells"] == results[1]["cells"]
    assert len(read_results(fake.out)["cells"]) == 3


def test_code_version_follows_the_source_that_decides_numbers(tmp_path, fake, monkeypatch):
    """Editing a module that computes (or a tuned settings file) changes the version; editing the report or the
    CLI does not. A new version recomputes every cell."""
    from unlearn.bench import code_version

    root = tmp_path / "pkg"
    (root / "data" / "tuned").mkdir(parents=True)
    for name, text in (("train.py", "lr = 1\n"), ("report.py", "x = 1\n"), ("cli.py", "y = 1\n"),
                       ("data/tuned/tiny.json", "{}")):
        (root / name).write_text(text)
    versions = [code_version(root)]
    for name, text in (("report.py", "x = 2\n"), ("cli.py", "y = 2\n"), ("train.py", "lr = 2\n"),
                       ("data/tuned/tiny.json", '{"npo": 1}')):
        (root / name).write_text(text)
        code_version.cache_clear()
        versions.append(code_version(root))
    assert versions[0] == versions[1] == versions[2] != versions[3] != versions[4]
    run_bench(fake.args(), log=_quiet)
    FakeBench.ran = []
    monkeypatch.setattr(unlearn.bench, "code_version", lambda: "other code")
    run_bench(fake.args(), log=_quiet)
    assert FakeBench.ran == ["grad_ascent", "npo", "retrain"]


def test_reference_evaluations_follow_the_evaluation_source_not_the_methods(tmp_path, monkeypatch):
    """Cached target/gold evaluations are keyed by a hash of the evaluation source (derived, never bumped by hand):
    editing a metric or the scoring changes it, editing a method or a tier's tuned settings does not; a changed
    key computes the evaluation again instead of reading the old file."""
    import dataclasses
    from types import SimpleNamespace

    import unlearn.benchmarks.base as base
    from unlearn.provenance import source_version

    root = tmp_path / "pkg"
    for name in ("methods/npo.py", "scoring/answers.py", "benchmarks/tofu/metrics.py", "bench.py", "data/tuned/t.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("v = 1\n")
    version = lambda: source_version(root, exclude=base.NOT_EVALUATION)  # noqa: E731
    first = version()
    for name in ("methods/npo.py", "bench.py", "data/tuned/t.json"):
        (root / name).write_text("v = 2\n")
    assert version() == first
    (root / "scoring/answers.py").write_text("v = 2\n")
    second = version()
    assert second != first
    (root / "benchmarks/tofu/metrics.py").write_text("v = 2\n")
    assert version() not in (first, second)

    @dataclasses.dataclass(frozen=True)
    class Proto:
        name: str = "p"

    class Tiny(base.Benchmark):
        name, splits = "tiny", ("s",)
        evaluated = 0

        def make_profile(self, *args):
            return SimpleNamespace(protocol=Proto(), note="", lora=None)

        def identity(self, split):
            return {"hash": "data"}

        def target_dir(self, split):
            return tmp_path

        def load(self, path, adapters=True):
            return None

        def evaluate(self, lm, split):
            Tiny.evaluated += 1
            return {"n": Tiny.evaluated}

    monkeypatch.setattr(base, "evaluation_code_version", lambda: "code-a")
    assert Tiny("m", device="cpu").reference_eval("target", "s") == {"n": 1}
    assert Tiny("m", device="cpu").reference_eval("target", "s") == {"n": 1}  # read back from the file
    monkeypatch.setattr(base, "evaluation_code_version", lambda: "code-b")
    assert Tiny("m", device="cpu").reference_eval("target", "s") == {"n": 2}  # other code: computed again


# ---------------------------------------------------------------- scale-out pieces: list, shard, one cell
def test_shards_cover_the_grid_exactly_once_and_the_full_run_writes_the_tables(fake):
    FakeBench.splits = FakeBench.dry_run_splits = ("s1", "s2")
    try:
        listing = run_bench(fake.args(list_cells=True), log=_quiet)["listing"]
        assert len(listing) == 6 and not any(c["done"] for c in listing)
        assert listing[0]["needs"] == ["fake:target:s1", "fake:gold:s1"]
        ran = []
        for i in range(3):
            FakeBench.ran = []
            out = run_bench(fake.args(shard=f"{i}/3"), log=_quiet)
            assert out["paths"] == {} and not (fake.out / "benchmark_results.json").exists()
            ran += FakeBench.ran
        assert sorted(ran) == sorted(["grad_ascent", "npo", "retrain"] * 2)  # each cell once, by one shard
        assert all(c["done"] for c in run_bench(fake.args(list_cells=True), log=_quiet)["listing"])
        FakeBench.ran = []
        whole = run_bench(fake.args(), log=_quiet)  # every cell finished: nothing recomputed, tables written
        assert FakeBench.ran == [] and len(read_results(fake.out)["cells"]) == 6 == len(whole["cells"])
    finally:
        FakeBench.splits = FakeBench.dry_run_splits = ("s1",)


def test_one_cell_by_key_or_prefix(fake, capsys):
    keys = [c["key"] for c in run_bench(fake.args(list_cells=True), log=_quiet)["listing"]]
    npo = next(k for k in keys if "-npo-" in k)
    run_bench(fake.args(cells=[npo]), log=_quiet)
    assert FakeBench.ran == ["npo"]
    FakeBench.ran = []
    run_bench(fake.args(cells=["fake-s1-grad_ascent"]), log=_quiet)
    assert FakeBench.ran == ["grad_ascent"]
    assert main(["bench", "--benchmarks", "fake", "--output_dir", str(fake.out), "--cell", "fake-s9"]) == 2
    assert "--cell fake-s9: no such cell in this grid" in capsys.readouterr().err


def test_cell_keys_ignore_the_device_index_and_thread_count(fake, monkeypatch):
    """A cell computed with --device cuda:1 is found by a later --device auto (cuda) run, and workers with other
    thread counts agree on keys; another GPU model or CPU kernel family does not."""
    import unlearn.bench as bench

    tags = {"cuda": "cuda:NVIDIA H200|torch 2.13", "cuda:1": "cuda:NVIDIA H200|torch 2.13",
            "cpu": "cpu:AVX2|MKL_CBWR=AVX2|threads=1|torch 2.13", "cpu2": "cpu:AVX2|MKL_CBWR=AVX2|threads=2|torch 2.13",
            "cuda:0": "cuda:NVIDIA A100|torch 2.13"}
    monkeypatch.setattr(bench, "numerics_tag", lambda device: tags[device])
    args = bench.resolve(fake.args())

    def key(device):
        runner = FakeBench("tiny-qwen3")
        runner.device = device
        return bench.cell_key(args, "fake", "s1", "npo", runner)

    assert key("cuda") == key("cuda:1") and key("cpu") == key("cpu2")
    assert len({key("cuda"), key("cpu"), key("cuda:0")}) == 3


# ---------------------------------------------------------------- several seeds
def test_seeds_run_every_cell_once_per_seed_and_the_tables_give_mean_and_sd(fake):
    got = run_bench(fake.args(seed=1, seeds=3), log=_quiet)
    assert FakeBench.ran == ["grad_ascent", "npo", "retrain"] * 3
    assert [c["seed"] for c in got["cells"]] == [1] * 3 + [2] * 3 + [3] * 3
    assert len(list((fake.out / "cells").glob("*.json"))) == 9  # the seed is in every cell's key
    assert got["run"]["seeds"] == [1, 2, 3]
    md = (fake.out / "results.md").read_text()
    # MIA AUC 0.51, 0.52, 0.53 over the seeds: mean 0.52, sample sd 0.01
    assert "| npo | 0.300 ± 0.000 | 1.000 ± 0.000 | 0.520 ± 0.010 |" in md, md
    assert "$\\pm$" in (fake.out / "results_table.tex").read_text()
    FakeBench.ran = []
    run_bench(fake.args(seed=1, seeds=2), log=_quiet)  # seeds 1 and 2 are finished cells: nothing runs
    assert FakeBench.ran == []
    with pytest.raises(ValueError, match="--seeds 0"):
        run_bench(fake.args(seeds=0), log=_quiet)
