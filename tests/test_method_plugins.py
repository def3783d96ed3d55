"""A method from another package plugs in through the ``unlearn.methods`` entry-point group: listed, configurable
with --set, tunable with its own grid, run by the shared loop; a broken plugin is named, not skipped. The
package is ``tests/plugin_example`` (one module), installed for the test as a distribution on a path entry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install(site: Path, entry: str) -> dict:
    """A distribution whose metadata declares ``entry`` in the unlearn.methods group, as pip would leave it."""
    info = site / "unlearn_example_method-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unlearn-example-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[unlearn.methods]\n{entry}\n")
    path = os.pathsep.join([str(site), str(ROOT / "tests" / "plugin_example"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path}


def run(env, *code_or_args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_plugin_method_is_listed_configured_tuned_and_run(tmp_path):
    env = install(tmp_path / "site", "example_scaled_ga = unlearn_example_method")
    listed = run(env, "-m", "unlearn", "methods")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert set(names[-3:]) == {"example_scaled_ga", "example_npo", "example_noop"}, names  # the module's three, after ours
    assert names[:3] == ["retrain", "finetune", "grad_ascent"]
    assert "example plugin: gradient ascent scaled" in listed.stdout
    code = """
from tests.helpers import examples, tiny
from unlearn.benchmarks.tofu.data import synthetic_tofu
from unlearn.bench import BenchArgs, resolve
from unlearn.methods import UnlearnContext, make_config, run_method
from unlearn.scoring import score_examples
from unlearn.train import TrainConfig
from unlearn.tune import default_grids

args = resolve(BenchArgs(methods=["example_scaled_ga"], overrides={"example_scaled_ga": {"scale": "2"}}))
assert args.methods == ["example_scaled_ga", "retrain"], args.methods
assert make_config("example_scaled_ga", args.overrides).scale == 2.0
assert default_grids()["example_scaled_ga"] == {"lr": ["1x", "3x"], "scale": ["0.5", "1"]}
lm, data = tiny(), synthetic_tofu('forget10', 4)
forget = examples(lm, data.forget)
nll = lambda: float(score_examples(lm.model, forget, lm.tokenizer.pad_token_id).mean_nll.mean())
before = nll()
ctx = UnlearnContext(lm=lm, forget=forget, retain=examples(lm, data.retain_train),
                     schedule=TrainConfig(lr=1e-3, max_steps=3, batch_size=8, progress=False))
run_method("example_scaled_ga", ctx, make_config("example_scaled_ga", args.overrides))
print(before, nll())
assert nll() > before + 0.1, (before, nll())
"""
    res = run(env, "-c", code)
    assert res.returncode == 0, res.stderr[-3000:]
    bad = run(env, "-m", "unlearn", "bench", "--methods", "example_scaled_ga", "--set", "example_scaled_ga.nope=1")
    assert bad.returncode == 2 and "unknown field 'nope' for method 'example_scaled_ga'" in bad.stderr, bad.stderr
    negative = run(env, "-m", "unlearn", "bench", "--methods", "example_scaled_ga", "--set", "example_scaled_ga.scale=-1")
    assert negative.returncode == 2 and "example_scaled_ga.scale=-1.0: must be > 0" in negative.stderr, negative.stderr


def test_broken_plugin_is_named_not_skipped(tmp_path):
    env = install(tmp_path / "site", "broken = no_such_module_for_unlearn")
    res = run(env, "-m", "unlearn", "methods")
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("unlearn: error: method plugin 'broken' (no_such_module_for_unlearn, entry point group "
                          "'unlearn.methods') failed to load: ModuleNotFoundError"), err


def test_broken_benchmark_plugin_is_named_not_skipped(tmp_path):
    env = install(tmp_path / "site", "broken = no_such_module_for_unlearn")
    entry = next((tmp_path / "site").glob("*.dist-info")) / "entry_points.txt"
    entry.write_text("[unlearn.benchmarks]\nbroken = no_such_module_for_unlearn\n")  # a benchmark plugin, not a method
    res = run(env, "-m", "unlearn", "eval", "--benchmark", "tofu", "--max-rows", "1")
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("unlearn: error: benchmark plugin 'broken' (no_such_module_for_unlearn, entry point group "
                          "'unlearn.benchmarks') failed to load: ModuleNotFoundError"), err
