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
