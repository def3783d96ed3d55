"""The CI workflows people copy (.github/workflows): valid against GitHub's workflow schema (check-jsonschema's
vendored copy, offline), and running what this checkout has: the CPU job .ci/run (the README's test command),
the GPU job .ci/gpu on a self-hosted runner labelled `gpu`, JUnit XML from pytest in both."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _check_jsonschema() -> list[str]:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(exe).exists():
        pytest.skip("check-jsonschema is not installed (the test extra has it: pip install -e '.[test]')")
    return [exe, "--builtin-schema", "vendor.github-workflows"]


def test_workflows_follow_githubs_schema_and_a_broken_one_does_not(tmp_path):
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "gpu.yml"]
    res = subprocess.run(_check_jsonschema() + [str(p) for p in WORKFLOWS], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    broken = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    del broken["jobs"]["cpu"]["runs-on"]  # a job with nowhere to run
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    res = subprocess.run(_check_jsonschema() + [str(tmp_path / "broken.yml")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "runs-on" in res.stdout + res.stderr, res.stdout + res.stderr


def _steps(name: str) -> tuple[dict, list[dict]]:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    (job,) = doc["jobs"].values()
    return job, job["steps"]


def test_the_cpu_job_runs_the_readme_command_and_keeps_junit_xml():
    job, steps = _steps("ci.yml")
    runs = [s for s in steps if "run" in s]
    assert [s["run"].strip() for s in runs] == [".ci/run"]
    assert "--junitxml=reports/junit-cpu.xml" in runs[0]["env"]["PYTEST_ADDOPTS"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "reports/junit-cpu.xml" and upload["if"] == "always()"
    assert job["timeout-minutes"] >= 90  # .ci/run's own limit
    readme = (ROOT / "README.md").read_text()
    ci_run = (ROOT / ".ci" / "run").read_text()
    command = ci_run.strip().splitlines()[-1]
    assert command.startswith("python -m pytest") and command.removeprefix("python -m ") in readme


def test_the_gpu_job_runs_ci_gpu_on_a_self_hosted_gpu_runner():
    job, steps = _steps("gpu.yml")
    assert set(job["runs-on"]) == {"self-hosted", "gpu"}
    assert any(s.get("run", "").strip() == ".ci/gpu" for s in steps)
    assert "gpu" in yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"]
    for script in (".ci/run", ".ci/gpu"):
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
