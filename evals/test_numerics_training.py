"""Two subprocesses train the tiny model, one also capped at AVX2 in MKL and oneDNN: identical weights (an
integration run, in evals/ beside the cells whose snapshots it protects)."""

import os

from tests.test_numerics import AVX2_ONLY, TRAIN_TINY, _run, pinned_only


@pinned_only
def test_tiny_model_trains_to_identical_weights_on_the_avx2_only_paths(tmp_path):
    """A short training run of the tiny model (the snapshots' workload in small) in a process pinned like
    this one and in one that also caps MKL and oneDNN at AVX2, as an AVX2-only CPU would."""
    cache = {"UNLEARN_CACHE_DIR": os.environ.get("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))}
    pinned = _run(TRAIN_TINY, cache)
    avx2_only = _run(TRAIN_TINY, {**cache, **AVX2_ONLY})
    assert pinned["aten"] == avx2_only["aten"] == "AVX2"
    assert pinned["weights"] == avx2_only["weights"]


@pinned_only
def test_tiny_model_trains_to_identical_weights_with_one_thread_or_two(tmp_path):
    """`pytest -n 2` gives each worker one thread (unlearn.numerics.worker_threads): the snapshots recorded
    with two threads must hold, so the same training run must give the same weights either way."""
    cache = {"UNLEARN_CACHE_DIR": os.environ.get("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))}
    one = _run(TRAIN_TINY.replace("torch.set_num_threads(2)", "torch.set_num_threads(1)"),
               {**cache, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    two = _run(TRAIN_TINY, {**cache, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"})
    assert one["threads"] == 1 and two["threads"] == 2
    assert one["weights"] == two["weights"]
