"""The training loop (determinism, NaN guard) and the artefact cache (reuse, lock)."""

import multiprocessing as mp
import time

import pytest
import torch

from tests.helpers import tiny
from unlearn.cache import cached_artefact, cached_json
from unlearn.scoring import encode_qa
from unlearn.scoring import FrozenWeightsBf16
from unlearn.train import LossOutput, NonFiniteLossError, Probe, TrainConfig, nll_loss, train

QA = [("Where was Amara Arvelo born?", "Amara Arvelo was born in Lisbon, Portugal."),
      ("What is the capital of France?", "Paris"), ("How many continents are there?", "Seven")] * 3


def _run(seed):
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    hist = train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=1e-3, epochs=2, batch_size=4, seed=seed, progress=False),
                 retain=ex, loss_fn=nll_loss)
    return lm.model, hist


def test_loop_is_deterministic_under_a_fixed_seed():
    (m1, h1), (m2, h2), (m3, _) = _run(0), _run(0), _run(1)
    assert h1 == h2
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(m1.parameters(), m3.parameters()))


def test_loss_decreases_with_accumulation():
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    hist = train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=3e-3, epochs=10, batch_size=3, grad_accum=2,
                                                                  progress=False), retain=ex, loss_fn=nll_loss)
    assert len(hist) == 15  # 3 micro-batches per epoch x 10 epochs / 2 per step
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_nan_guard_stops_at_the_first_bad_step():
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    calls = []

    def bad(model, batch):
        calls.append(1)
        return LossOutput(nll_loss(model, batch).loss * float("nan"))

    with pytest.raises(NonFiniteLossError, match="step 0"):
        train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(epochs=3, batch_size=4, progress=False), retain=ex, loss_fn=bad)
    assert len(calls) == 1


def _build_slowly(root, counter):
    def build(out):
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.5)
        (out / "weights.bin").write_text("w")

    return str(cached_artefact("t", {"a": 1}, build, root=root))


def test_cache_builds_once_under_the_lock(tmp_path):
    counter = tmp_path / "count"
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        paths = pool.starmap(_build_slowly, [(tmp_path / "c", counter)] * 2)
    assert paths[0] == paths[1]
    assert counter.read_text() == "x"  # two workers, one build
    assert _build_slowly(tmp_path / "c", counter) == paths[0] and counter.read_text() == "x"  # reused


def _evaluate_slowly(path, counter):
    def compute():
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.5)
        return {"rouge": 0.5}

    return cached_json(path, compute)


def test_cached_json_computes_once_for_concurrent_workers(tmp_path):
    """Two workers asking for one reference evaluation: one computes, the other reads its file."""
    counter, path = tmp_path / "count", tmp_path / "eval-x.json"
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_evaluate_slowly, [(path, counter)] * 2)
    assert results == [{"rouge": 0.5}] * 2 and counter.read_text() == "x"
    assert _evaluate_slowly(path, counter) == {"rouge": 0.5} and counter.read_text() == "x"  # read back
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("damage", ["truncate", "flip_a_byte", "delete"])
def test_damaged_artefact_is_rebuilt_not_loaded(tmp_path, damage):
    """A cached model whose weight file was cut short, corrupted in place or removed is built again."""
    builds = []

    def build(out):
        builds.append(1)
        (out / "weights.bin").write_bytes(bytes(range(256)) * 64)

    first = cached_artefact("m", {"a": 3}, build, root=tmp_path)
    assert cached_artefact("m", {"a": 3}, build, root=tmp_path) == first and len(builds) == 1  # reused
    weights = first / "weights.bin"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "flip_a_byte":
        data = bytearray(weights.read_bytes())
        data[5] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        weights.unlink()
    assert cached_artefact("m", {"a": 3}, build, root=tmp_path) == first and len(builds) == 2
    assert weights.read_bytes() == bytes(range(256)) * 64


def test_failed_build_leaves_nothing_finished(tmp_path):
    def broken(out):
        (out / "half").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached_artefact("t", {"a": 2}, broken, root=tmp_path)
    assert not any(p.name.startswith("t-") and p.is_dir() for p in tmp_path.iterdir())


def test_bf16_mixed_precision_trains():
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    hist = train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=3e-3, epochs=6, batch_size=3, mixed_precision="bf16",
                                                                  progress=False), retain=ex, loss_fn=nll_loss)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())  # master weights stay float32


def _lora_bf16_run(copies: bool, monkeypatch) -> tuple[dict, list, list]:
    """A LoRA model trained 2 epochs under bf16 autocast; the frozen weights' bf16 copies on or off. Returns the
    trained parameters, the loss history and the dtypes of the frozen weights each probe call saw."""
    from peft import LoraConfig

    from unlearn.models import LoraSpec, activate_adapters

    if not copies:
        monkeypatch.setattr(FrozenWeightsBf16, "on", lambda self: None)
    lm = tiny(lora=LoraSpec(r=4, alpha=8))
    # a second, frozen adapter active beside the trained one (as DSU's repair phase runs): its weights must stay
    # float32, or the gradient flowing back through its input cast would be rounded
    lm.model.add_adapter("frozen", LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0,
                                              task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(0)
    for name, p in lm.model.named_parameters():
        if ".frozen." in name:
            p.data = torch.randn(p.shape, generator=gen) * 0.05
    activate_adapters(lm.model, ["default", "frozen"], trainable="default")
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    seen, stepped = [], []
    frozen = lambda m: {p.dtype for n, p in m.named_parameters() if "lora_" not in n and "proj" in n}  # noqa: E731
    adapters = lambda m: {p.dtype for n, p in m.named_parameters() if "lora_" in n}  # noqa: E731
    probe = Probe(lambda m: seen.append(frozen(m)) or {"x": 0.0})

    def loss(model, batch):
        stepped.append(frozen(model))
        assert adapters(model) == {torch.float32}
        return nll_loss(model, batch)

    hist = train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=3e-3, epochs=2, batch_size=3, mixed_precision="bf16",
                                                                  progress=False), retain=ex, loss_fn=loss, probe=probe)
    monkeypatch.undo()
    assert all(dtypes == ({torch.bfloat16} if copies else {torch.float32}) for dtypes in stepped), stepped
    return {n: p.detach().clone() for n, p in lm.model.named_parameters()}, hist, seen


def test_frozen_weights_copied_to_bf16_once_train_the_same_bits(monkeypatch):
    """FrozenWeightsBf16 replaces autocast's per-call casts of the frozen weights by one copy: the same products,
    so the same trained weights and losses to the bit; the probe and the caller see the float32 weights."""
    with_copies, hist_a, seen = _lora_bf16_run(True, monkeypatch)
    without, hist_b, _ = _lora_bf16_run(False, monkeypatch)
    assert hist_a == hist_b
    assert with_copies.keys() == without.keys()
    for name in with_copies:
        assert torch.equal(with_copies[name], without[name]), name
    assert seen and all(dtypes == {torch.float32} for dtypes in seen)  # every probe call: the float32 weights
    assert all(p.dtype == torch.float32 for p in with_copies.values())


def test_float32_and_bf16_runs_share_one_process():
    """accelerate's mixed-precision state is process-wide; the loop must not depend on it."""
    for precision in ("no", "bf16", "no"):
        lm = tiny()
        ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
        train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=1e-3, epochs=1, batch_size=3, mixed_precision=precision,
                                                              progress=False), retain=ex, loss_fn=nll_loss)
    with pytest.raises(ValueError, match="mixed_precision"):
        train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(mixed_precision="fp8", progress=False), retain=ex,
              loss_fn=nll_loss)


def test_probe_start_is_measured_once_and_reused_until_the_model_changed():
    """Runs from the same model share their first point (``start``); a method that changed the model first
    (``model_changed``) measures its own; a deferred last point is filled by the caller, and a call after it
    is refused."""
    from unlearn.train import Probe

    calls = []

    def fn(model):
        calls.append(1)
        return {"x": float(len(calls))}

    start: dict = {}
    a, b, c = Probe(fn, start=start), Probe(fn, start=start), Probe(fn, start=start)
    a(torch.nn.Linear(1, 1), 0)
    b(torch.nn.Linear(1, 1), 0)
    assert a.points == b.points == [{"step": 0, "x": 1.0}] and len(calls) == 1
    c.model_changed()
    c(torch.nn.Linear(1, 1), 0)
    assert c.points == [{"step": 0, "x": 2.0}] and start["values"] == {"x": 1.0}
    d = Probe(fn, defer_final=True)
    d(torch.nn.Linear(1, 1), 3, final=True)
    assert d.points == [{"step": 3, "deferred": True}] and len(calls) == 2
    with pytest.raises(RuntimeError, match="deferred"):
        d(torch.nn.Linear(1, 1), 4)
    d.fill_deferred({"x": 9.0})
    assert d.points == [{"step": 3, "x": 9.0}]


def test_deferred_final_point_of_a_tofu_cell_equals_a_measurement_of_the_final_model(tmp_path, monkeypatch):
    """The last dynamics point is read from the cell's evaluation; measured with the probe itself on the model the
    cell evaluated, it is the same (the evaluation scores the same rows; merged vs unmerged weights round)."""
    from unlearn.benchmarks import Profile
    from unlearn.benchmarks.tofu.benchmark import TofuBenchmark
    from unlearn.benchmarks.tofu.protocol import EvalProtocol

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    profile = Profile(target=TrainConfig(lr=3e-3, epochs=4, batch_size=16, progress=False),
                      unlearn=TrainConfig(lr=1e-3, epochs=2, batch_size=4, progress=False), lora=None,
                      protocol=EvalProtocol(max_new_tokens=4), synthetic_authors=4, use_real_data=False)
    bench = TofuBenchmark("tiny-qwen3", profile=profile, progress=False)
    measured = []
    bench.model_sink = lambda lm: measured.append(bench.dynamics_probe("forget10", lm).fn(lm.model))
    cell = bench.run_cell("grad_ascent", "forget10")
    points = cell["dynamics"]
    assert len(points) >= 3 and not any("deferred" in p for p in points)
    for key in ("forget_prob", "retain_prob"):
        assert points[-1][key] == pytest.approx(measured[0][key], abs=1e-5)
    assert points[0]["forget_prob"] > points[-1]["forget_prob"]  # gradient ascent lowered it
    again = bench.run_cell("npo", "forget10")  # the first point is the split's, measured once
    assert again["dynamics"][0] == points[0]
