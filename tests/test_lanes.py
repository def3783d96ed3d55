"""An evaluation's jobs in two lanes (``unlearn.scoring.lanes``), and the TOFU evaluation that uses them."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from unlearn.scoring.lanes import in_lanes


@pytest.fixture
def threads():
    """Set torch's thread count for a test; the count the test found is restored after it."""
    saved = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(saved)


def test_lanes_run_two_jobs_at_once_at_half_the_threads_and_restore_the_count(threads):
    """Two threads, three jobs: the first two overlap (each waits until the other has started, which one after
    the other never gets past), every job sees one torch thread, the third runs once a lane is free, results come
    back in list order, and the thread count is restored. A planted bug (jobs one after the other) times out."""
    threads(2)
    started = [threading.Event(), threading.Event()]
    seen = []

    def job(k):
        def run():
            seen.append(torch.get_num_threads())
            if k < 2:
                started[k].set()
                assert started[1 - k].wait(timeout=20), "the other lane never started a job: not side by side"
            return k
        return run

    assert in_lanes([job(0), job(1), job(2)], enabled=True) == [0, 1, 2]
    assert seen == [1, 1, 1] and torch.get_num_threads() == 2


@pytest.mark.parametrize("count, enabled, n_jobs", [(2, False, 3), (1, True, 3), (2, True, 1)])
def test_lanes_run_one_after_the_other_when_off_on_one_thread_or_for_one_job(threads, count, enabled, n_jobs):
    threads(count)
    order, where = [], []

    def job(k):
        return lambda: order.append(k) or where.append(threading.current_thread()) or k

    assert in_lanes([job(k) for k in range(n_jobs)], enabled=enabled) == list(range(n_jobs))
    assert order == list(range(n_jobs)) and where == [threading.main_thread()] * n_jobs
    assert torch.get_num_threads() == count


def test_a_failing_job_is_raised_no_later_job_starts_and_the_count_is_restored(threads):
    threads(2)
    ran = []
    gate = threading.Event()

    def first():
        assert gate.wait(timeout=20)  # the failure below happens first
        ran.append("first")

    def boom():
        ran.append("boom")
        gate.set()
        raise RuntimeError("job 1 failed")

    with pytest.raises(RuntimeError, match="job 1 failed"):
        in_lanes([first, boom] + [lambda: ran.append("later")] * 3, enabled=True)
    assert sorted(ran) == ["boom", "first"] and torch.get_num_threads() == 2


def _tofu_eval(monkeypatch, lanes: bool, protocol):
    from tests.helpers import memorised
    import unlearn.benchmarks.tofu.benchmark as tofu

    calls = []
    real = in_lanes  # unlearn.scoring.lanes's own (the module attribute may be a patch of an earlier call)
    monkeypatch.setattr(tofu, "LANES", lanes)
    monkeypatch.setattr(tofu, "in_lanes", lambda jobs, enabled: calls.append(len(jobs)) or real(jobs, enabled=enabled))
    lm, data = memorised()
    lm.model.train()  # the evaluation runs in eval mode and gives back the mode it found
    out = tofu.evaluate_tofu(lm.model, lm.tokenizer, data, protocol, progress=False)
    assert lm.model.training
    return out, calls


@pytest.mark.parametrize("compat", ["tofu", "open-unlearning"])
def test_float32_evaluation_in_lanes_equals_one_after_the_other(monkeypatch, threads, compat):
    """A float32 TOFU evaluation on two torch threads runs its scoring and each generation batch in lanes (open-
    unlearning: one batch set per split, in data order), and every log value and aggregate equals the one-after-
    the-other evaluation's on one thread (under the numerics pins the tiny model's scores and greedy tokens do not
    depend on the thread count). Planted bugs caught: generation batches mapped back to the wrong rows, a
    split's questions batched with another's under open-unlearning's conventions (texts differ)."""
    from unlearn.benchmarks.tofu.protocol import EvalProtocol

    protocol = EvalProtocol(max_new_tokens=16, batch_size=8, generation_batch_size=4, compat=compat)
    threads(1)
    alone, calls_alone = _tofu_eval(monkeypatch, False, protocol)
    threads(2)
    paired, calls_paired = _tofu_eval(monkeypatch, True, protocol)
    assert calls_alone == [] and len(calls_paired) == 1 and calls_paired[0] > 2
    assert paired["logs"] == alone["logs"] and paired["aggregates"] == alone["aggregates"]


def test_bf16_evaluation_never_runs_in_lanes(monkeypatch, threads):
    """bf16 passes swap bf16 copies of the frozen weights into the one shared model, so a bf16 generation or bf16
    scoring stays one after the other (two lanes swapping the same modules would restore wrong weights)."""
    from unlearn.benchmarks.tofu.protocol import EvalProtocol

    base = EvalProtocol(max_new_tokens=8, batch_size=8, max_rows=4)
    threads(2)
    for kw in (dict(bf16=True), dict(bf16=True, score_bf16=True), dict(score_bf16=True)):
        _, calls = _tofu_eval(monkeypatch, True, dataclasses.replace(base, **kw))
        assert calls == [], kw
