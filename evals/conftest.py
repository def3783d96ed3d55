"""evals/: cells on the default tiny tier run everywhere; any other --model is slow and reads real data.

Under pytest-xdist (``pytest -n 2 --dist loadgroup``, what ``.ci/run`` runs) the tests that read one cell go to
one worker (``evals/scheduling.py``), so each cell still unlearns and evaluates once. Trained models and
reference evaluations are shared between workers through the on-disk cache (file locks), and each worker starts by building the session's models that no other worker has claimed yet
(``_prebuild``), so the two workers train different targets and golds at the same time instead of one
waiting for the other's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BENCH_MARKS = ("tofu", "muse", "wmdp", "unsafe")
SESSION_BENCHES = pytest.StashKey[list]()  # the benchmarks whose cells the session runs


def pytest_collection_modifyitems(config, items):
    if config.getoption("--model") == "tiny-qwen3":
        return
    for item in items:
        if "evals" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.real_data)


def pytest_collection_finish(session):
    """The benchmarks whose cells this session runs (after -k / -m): what ``_prebuild`` may build."""
    session.config.stash[SESSION_BENCHES] = sorted({m for item in session.items for m in BENCH_MARKS
                                                     if item.get_closest_marker(m)})


def _bench_kwargs(request, data_dir) -> dict:
    opt = request.config.getoption
    model = opt("--model")
    return dict(data_dir=data_dir if model != "tiny-qwen3" else None, device=opt("--device"), precision=opt("--precision"),
                max_steps=opt("--max-steps"), progress=False)


def make_bench(name: str, request, data_dir, seed: int = 0):
    """The session's benchmark ``name`` for the chosen --model: the tiny tier's synthetic data, or real data on
    the CPU-sized protocol for any other model (TOFU: the embedded copy by default)."""
    model = request.config.getoption("--model")
    kwargs = dict(_bench_kwargs(request, data_dir), seed=seed)
    if name == "tofu":
        from unlearn.benchmarks import TofuBenchmark

        # test_target_is_far_from_gold reads the target's forget logs, so the target gets the full evaluation
        return TofuBenchmark(model, target_eval="full", **kwargs)
    from unlearn.benchmarks import BENCHMARKS

    return BENCHMARKS.get(name)(model, protocol="reduced" if model != "tiny-qwen3" else None, **kwargs)


_SEEDED: dict = {}


def bench_with_seed(request, name: str, seed: int):
    """The benchmark ``name`` with another seed (``--seeds``): built once per session, its own target and gold."""
    if (name, seed) not in _SEEDED:
        _SEEDED[name, seed] = make_bench(name, request, request.getfixturevalue("data_dir"), seed)
    return _SEEDED[name, seed]


@pytest.fixture(scope="session")
def tofu_bench(request, data_dir):
    return make_bench("tofu", request, data_dir)


@pytest.fixture(scope="session")
def muse_bench(request, data_dir):
    return make_bench("muse", request, data_dir)


@pytest.fixture(scope="session")
def wmdp_bench(request, data_dir):
    return make_bench("wmdp", request, data_dir)


@pytest.fixture(scope="session")
def unsafe_bench(request, data_dir):
    return make_bench("unsafe", request, data_dir)


def prebuild_tasks(name: str, bench) -> list[tuple[str, object]]:
    """(task name, thunk) for one benchmark's shared work, the trainings first: its target, its golds, then
    the reference evaluations every cell reads."""
    if name == "tofu":
        splits = bench.splits
        return ([("tofu-target", lambda: bench.target_dir(splits[0]))]
                + [(f"tofu-gold-{s}", lambda s=s: bench.gold_dir(s)) for s in splits]
                + [(f"tofu-eval-{k}-{s}", lambda k=k, s=s: bench.reference_eval(k, s)) for s in splits for k in ("target", "gold")])
    if name == "muse":
        return [("muse-target", bench.target_dir), ("muse-gold", lambda: bench.gold_dir("news")),
                ("muse-eval-target", lambda: bench.reference_eval("target")), ("muse-eval-gold", lambda: bench.reference_eval("gold"))]
    splits = ("synthetic",)  # WMDP's and the unsafe benchmark's tiny-tier split
    return ([(f"{name}-target-{s}", lambda s=s: bench.target_dir(s)) for s in splits]
            + [(f"{name}-gold-{s}", lambda s=s: bench.gold_dir(s)) for s in splits]
            + [(f"{name}-eval-{k}-{s}", lambda k=k, s=s: bench.reference_eval(k, s)) for s in splits for k in ("target", "gold")])


@pytest.fixture(scope="session", autouse=True)
def _prebuild(request):
    """Under xdist on the tiny tier: build the session's shared models and reference evaluations, each by the
    first worker to claim it (a non-blocking file lock), in a fixed order with the trainings first. A task
    another worker holds is skipped here; a test that needs it later waits on the cache's own lock. Serial
    runs build everything on first use, as before."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or request.config.getoption("--model") != "tiny-qwen3":
        return
    from filelock import FileLock, Timeout

    from unlearn.cache import cache_root

    claims = Path(cache_root()) / "prebuild-claims"
    claims.mkdir(parents=True, exist_ok=True)
    tasks = []
    for name in request.config.stash.get(SESSION_BENCHES, []):
        tasks += prebuild_tasks(name, request.getfixturevalue(f"{name}_bench"))
    tasks.sort(key=lambda t: "eval" in t[0])  # every benchmark's trainings before any evaluation
    for task, build in tasks:
        lock = FileLock(str(claims / f"{task}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # the other worker is on it
        try:
            build()
        finally:
            lock.release()
