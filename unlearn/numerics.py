"""Reproducible float32 numbers on one machine (pinned kernels and threads), and a precision chosen from the hardware.

The tiny tier trains a model from scratch for about a thousand steps, so any difference in the last bit
of a kernel grows into a different model. CPUs of this project's machines come in two kinds (Intel Xeon
with AVX-512/AMX, AMD EPYC with AVX2 only), and torch picks different code for each: ATen's vectorised
kernels dispatch on the CPU capability and MKL's BLAS on the instruction set. :data:`PINS` makes both
take their AVX2 code paths, which every x86-64 machine of the project has, and fixes the thread count
(:func:`worker_threads`). The variables are read once, when torch (ATen) and MKL
initialise, so :func:`pin_numerics` must run before ``import torch``: the root ``conftest.py`` calls it
first thing, and the CLI calls it for the tiny tier before it imports anything that imports torch.

MKL runs in *strict* conditional numerical reproducibility (``MKL_CBWR=AVX2,STRICT``), MKL's documented mode
for bitwise-equal results across thread counts and alignments on its AVX2 branch. The pins do not make every CPU
compute alike: under them an Intel Xeon (AVX-512/AMX) and an AMD EPYC (AVX2) agree on a large GEMM and on the
elementwise kernels but not on small GEMMs (attention, a small layer's backward; :func:`fingerprint`, measured in
evals/README.md), and a thousand training steps grow that last-bit difference into another model. So the
evaluation suite does not rely on equal bits across CPUs: its verdicts and snapshots are built to survive another
CPU's rounding, and ``evals/test_perturbation.py`` proves it on one machine with :func:`nudge_ulps`. The pins still
make one machine reproducible (1 and 2 threads give the same weights: ``evals/test_numerics_training.py``).

oneDNN is left alone: float32 matmuls go to MKL (oneDNN only runs the bf16 autocast paths, which the
tiny tier never uses), and capping oneDNN at AVX2 would make bf16 emulated on CPUs that have it.
``UNLEARN_NUMERICS=native`` turns the pins off (faster on big CPUs; one machine is then reproducible only per thread count).
"""

from __future__ import annotations

import os
import sys

CORES = 2  # the project's machines: 2 cores, shared by the pytest-xdist workers when there are several


def worker_threads() -> int:
    """Torch threads per process: :data:`CORES` in one process, split between pytest-xdist workers
    (``pytest -n 2``: 1 each; xdist sets ``PYTEST_XDIST_WORKER_COUNT`` before any conftest is imported).
    Under the pins the tiny tier trains bit-identical weights and scores at 1 and 2 threads (the same
    fingerprint too; ``evals/test_numerics_training.py`` checks a training run), so the count is a
    matter of speed: on 2 cores two 1-thread workers do about 1.4-1.6x the work of one 2-thread process
    (``perf/threads_vs_workers.py``), while two 2-thread workers oversubscribe the cores (6x slower)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return max(1, CORES // max(1, workers))


THREADS = worker_threads()
PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels: the AVX2 build on every CPU
    # MKL's strict conditional numerical reproducibility on its AVX2 code path: the same bits on every CPU with
    # AVX2 at any thread count and alignment (without STRICT small GEMMs differed between CPU vendors)
    "MKL_CBWR": "AVX2,STRICT",
    "OMP_NUM_THREADS": str(THREADS),  # a fixed thread count (see worker_threads)
    "MKL_NUM_THREADS": str(THREADS),
}

class NumericsPinError(RuntimeError):
    pass


def pins_disabled() -> bool:
    return os.environ.get("UNLEARN_NUMERICS", "").lower() == "native"


def pin_numerics(strict: bool = True) -> dict[str, str]:
    """Set :data:`PINS` in the environment (before torch is imported); returns what was set.

    When torch is already imported the pins can no longer take effect: with ``strict`` that is an error
    naming the fix, unless the running capability already is AVX2 (pinned by the caller's environment).
    """
    if pins_disabled():
        return {}
    if "torch" in sys.modules:
        import torch

        cap = torch.backends.cpu.get_cpu_capability()
        if strict and (cap != "AVX2" or os.environ.get("MKL_CBWR") != PINS["MKL_CBWR"]):
            raise NumericsPinError(
                "torch was imported before the numerics pins were set (running ATen capability "
                f"{cap}, MKL_CBWR={os.environ.get('MKL_CBWR')}); set "
                + " ".join(f"{k}={v}" for k, v in PINS.items()) + " in the environment, or UNLEARN_NUMERICS=native")
        return {}
    for key, value in PINS.items():
        os.environ[key] = value
    return dict(PINS)


def set_threads() -> None:
    """Fix torch's intra-op thread count (called after torch is imported)."""
    if pins_disabled():
        return
    import torch

    torch.set_num_threads(THREADS)


def numerics_info(device: str = "cpu") -> dict:
    """What a result was computed with: CPU, ATen capability, pins, threads, bf16 support (in every output)."""
    import torch

    return {"cpu": cpu_name(), "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "pinned": {k: os.environ.get(k) for k in PINS if os.environ.get(k) == PINS[k]},
            "threads": torch.get_num_threads(), "native_bf16": native_bf16(device),
            "tag": numerics_tag(device)}


def numerics_tag(device: str = "cpu") -> str:
    """Short identity of the arithmetic a trained artefact came from; part of every cached model's recipe,
    so a target trained under other kernels (unpinned, another CPU capability, a GPU) is never reused."""
    import torch

    if str(device).startswith("cuda"):
        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}|torch {torch.__version__}"
    return (f"cpu:{torch.backends.cpu.get_cpu_capability()}|MKL_CBWR={os.environ.get('MKL_CBWR')}"
            f"|threads={torch.get_num_threads()}|torch {torch.__version__}")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# ---------------------------------------------------------------- precision and device
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES_HELP = "auto (CUDA when present, else CPU), cpu, cuda, cuda:N"


def native_bf16(device: str) -> bool:
    """True where bf16 runs in hardware: CUDA with bf16 support, or a CPU with AMX / AVX512-BF16
    (oneDNN's check). Elsewhere bf16 autocast is emulated (~15x slower than float32 on an AVX2 CPU)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str | None, device: str) -> str:
    """``auto`` -> bf16 where the hardware has it, fp32 otherwise; fp32/bf16 as asked."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def resolve_device(device: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` when a CUDA device is present, else ``cpu``; other names checked."""
    import torch

    device = device or "auto"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; valid: {DEVICES_HELP}")
    return device


# ---------------------------------------------------------------- another CPU's rounding, on this one
def nudge_ulps(module, ulps: int, seed: int = 1) -> int:
    """Move every floating-point parameter of ``module`` by a random whole number of ulps in [-ulps, ulps]
    (seeded; in place). Another CPU's kernels round differently in the last bits; a model trained from weights
    nudged this way stands in for one trained there, on any machine (evals/test_perturbation.py). Returns how
    many elements moved."""
    import torch

    g = torch.Generator().manual_seed(seed)
    moved = 0
    with torch.no_grad():
        for p in module.parameters():
            if not p.is_floating_point():
                continue
            steps = torch.randint(-ulps, ulps + 1, p.shape, generator=g)
            moved += int((steps != 0).sum())
            q = p.detach().clone()
            for _ in range(ulps):
                up = torch.nextafter(q, torch.full_like(q, float("inf")))
                down = torch.nextafter(q, torch.full_like(q, float("-inf")))
                q = torch.where(steps > 0, up, torch.where(steps < 0, down, q))
                steps = steps - steps.sign()
            p.copy_(q)
    return moved


# ---------------------------------------------------------------- fingerprint
def fingerprint() -> dict[str, str]:
    """One short hash per kernel family (GEMM, elementwise, attention, a 20-step training run), computed
    with the same recipe as the development team's standalone fingerprint script, so two machines (or two code paths) that
    print the same hashes compute those kernels bit for bit alike. Uses :data:`THREADS` threads."""
    import hashlib

    import torch

    def h(*tensors) -> str:
        return hashlib.sha256(b"".join(t.detach().contiguous().numpy().tobytes() for t in tensors)).hexdigest()[:12]

    torch.set_num_threads(THREADS)
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    a, b = r(257, 513), r(513, 129)
    out = {"torch": torch.__version__, "gemm": h(a @ b)}
    x = r(64, 1000)
    out["elementwise"] = h(torch.softmax(x, -1), torch.nn.functional.silu(x),
                           torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
    q, k, v = r(1, 4, 33, 32), r(1, 4, 33, 32), r(1, 4, 33, 32)
    out["attention"] = h(torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(96, 384), torch.nn.SiLU(), torch.nn.Linear(384, 50))
    opt = torch.optim.AdamW(mlp.parameters(), lr=1e-3)
    xs, ys = r(32, 96), torch.randint(0, 50, (32,), generator=g)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(mlp(xs), ys).backward()
        opt.step()
    out["training"] = h(*mlp.parameters())
    return out


if __name__ == "__main__":  # python -m unlearn.numerics: this process's fingerprint (pins from the environment)
    import json

    print(json.dumps({**fingerprint(), "aten": __import__("torch").backends.cpu.get_cpu_capability(),
                      "pins": {k: os.environ.get(k) for k in PINS}}))
