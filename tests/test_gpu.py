"""The CUDA code paths (skipped without a GPU; CI has none): shared-prompt scoring, bf16 loading and one
QLoRA step with the adapters-disabled reference on the device."""

import numpy as np
import pytest
import torch

from unlearn.models import LoraSpec, Reference, load_model
from unlearn.scoring import encode_qa, score_examples

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CI has none)")]

QA = [("Where was Amara Arvelo born?", "Amara Arvelo was born in Lisbon, Portugal."),
      ("Who?", "Bram Corrigan."),
      ("In which city, and in which year, did the author of 'The Hollow Clock' give her first reading?",
       "She first read from it in Lisbon in 1999.")]


def _examples(tok):
    return [encode_qa(tok, q, x) for q, a in QA for x in (a, a[: len(a) // 2], a + " Indeed.")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shared_prompt_scoring_matches_whole_rows_on_cuda(dtype):
    lm = load_model("tiny-qwen3", device="cuda", dtype=dtype)
    ex = _examples(lm.tokenizer)
    shared = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=4, token_stats=True)
    whole = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=4, token_stats=True, share_prompts=False)
    tol = 1e-3 if dtype == torch.float32 else 0.05 * max(float(np.abs(whole.logprob_sum).max()), 1.0)
    np.testing.assert_allclose(shared.logprob_sum, whole.logprob_sum, atol=tol, rtol=0)
    cpu = score_examples(load_model("tiny-qwen3").model, ex, lm.tokenizer.pad_token_id, batch_size=4)
    if dtype == torch.float32:  # the same model on the CPU gives the same scores
        np.testing.assert_allclose(shared.logprob_sum, cpu.logprob_sum, atol=1e-3, rtol=0)


def test_qlora_npo_step_on_cuda_changes_only_adapters():
    from unlearn.methods import make_config
    from unlearn.methods.npo import npo
    from unlearn.scoring import collate
    from unlearn.train import StepBatch

    lm = load_model("tiny-qwen3", device="cuda", quant="4bit", lora=LoraSpec(r=4, alpha=8))
    ex = _examples(lm.tokenizer)
    batch = StepBatch(collate(ex[:4], lm.tokenizer.pad_token_id, "cuda"), collate(ex[4:8], lm.tokenizer.pad_token_id, "cuda"))
    trainable = {n: p.detach().clone() for n, p in lm.model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in lm.model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in lm.model.parameters() if p.requires_grad], lr=1e-2)
    out = npo(lm.model, batch, make_config("npo"), Reference(lm.model))
    out.loss.backward()
    opt.step()
    params = dict(lm.model.named_parameters())
    assert torch.isfinite(out.loss)
    assert any(not torch.equal(params[n], v) for n, v in trainable.items())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
