"""The numerics pins (unlearn/numerics.py) hold in this test process and make the CPU's other code paths
compute bit for bit alike; precision and device resolution."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearn import numerics
from unlearn.numerics import fingerprint, pins_disabled, resolve_device, resolve_precision

ROOT = Path(__file__).resolve().parent.parent
pinned_only = pytest.mark.skipif(pins_disabled(), reason="UNLEARN_NUMERICS=native: the pins are off")

# What an AVX2-only CPU leaves MKL and oneDNN to choose from, forced on a bigger CPU.
AVX2_ONLY = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

TRAIN_TINY = """
import hashlib, json, torch
from unlearn.benchmarks.tofu.data import synthetic_tofu
from unlearn.models import load_model
from unlearn.scoring import encode_qa
from unlearn.train import TrainConfig, nll_loss, train
torch.set_num_threads(2)
lm = load_model("tiny-qwen3")
rows = synthetic_tofu("forget10", n_authors=4, seed=0).full[:24]
ex = [encode_qa(lm.tokenizer, r.question, r.answer) for r in rows]
train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=3e-3, epochs=3, batch_size=8, progress=False),
      retain=ex, loss_fn=nll_loss)
blob = b"".join(p.detach().numpy().tobytes() for p in lm.model.parameters())
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                  "weights": hashlib.sha256(blob).hexdigest()[:16]}))
"""


def _run(code: str, extra_env: dict, tmp_path=None) -> dict:
    env = {**os.environ, **extra_env, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pinned_only
def test_pins_took_effect_in_this_process():
    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
    assert os.environ["MKL_CBWR"] == "AVX2,STRICT" and torch.get_num_threads() == numerics.THREADS


def test_nudge_moves_every_weight_by_at_most_k_ulps_and_is_seeded():
    """The perturbation that stands in for another CPU (evals/test_perturbation.py): whole ulps, bounded, seeded."""
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Linear(32, 4))

    a, b, c = model(), model(), model()
    before = [p.detach().clone() for p in a.parameters()]
    moved = numerics.nudge_ulps(a, 2, seed=1)
    numerics.nudge_ulps(b, 2, seed=1)
    numerics.nudge_ulps(c, 2, seed=2)
    n = sum(p.numel() for p in a.parameters())
    assert 0.6 * n < moved < n  # 4 of 5 draws in [-2, 2] move
    for old, new in zip(before, a.parameters()):
        ulp = torch.nextafter(old.abs(), torch.full_like(old, float("inf"))) - old.abs()
        assert torch.all((new - old).abs() <= 2 * ulp * 1.0001) and not torch.equal(old, new)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


@pinned_only
def test_avx2_only_code_paths_give_the_same_fingerprint():
    code = "import json; from unlearn.numerics import fingerprint; print(json.dumps(fingerprint()))"
    assert _run(code, AVX2_ONLY) == fingerprint()


def test_pin_after_torch_import_is_refused_unless_already_pinned(monkeypatch):
    monkeypatch.delenv("UNLEARN_NUMERICS", raising=False)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    with pytest.raises(numerics.NumericsPinError, match="imported before"):
        numerics.pin_numerics(strict=True)
    assert numerics.pin_numerics(strict=False) == {}


def test_native_switch_turns_pins_off(monkeypatch):
    monkeypatch.setenv("UNLEARN_NUMERICS", "native")
    assert numerics.pin_numerics() == {}


def test_precision_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(numerics, "native_bf16", lambda device: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(numerics, "native_bf16", lambda device: True)
    assert resolve_precision("auto", "cpu") == "bf16" and resolve_precision(None, "cpu") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_native_bf16_follows_the_cpu_flags():
    """Read from the CPU's own flags, not from the call native_bf16 makes: torch's oneDNN check (ideep's
    bf16 type support) asks x86 for AVX-512 BW, VL and DQ, or AVX-NE-CONVERT."""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        flags = {w for line in f if line.startswith("flags") for w in line.split(":", 1)[1].split()}
    assert numerics.native_bf16("cpu") == ({"avx512bw", "avx512vl", "avx512dq"} <= flags or "avx_ne_convert" in flags)


def test_device_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device(None) == "cpu"
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
