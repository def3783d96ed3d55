"""Greedy agreement of transformers' static KV cache (compiled with torch.compile on CUDA) with the default dynamic
cache, on a trained model (peaked next-token distributions, unlike a random model's nearly flat ones).

    python perf/gpu_static_agreement.py MODEL_DIR OUT.jsonl [DEVICE]

MODEL_DIR: a saved causal LM with its tokenizer (e.g. a tiny-tier TOFU target from the model cache). Questions: the
synthetic TOFU authors' (every row of ``full``, 820 on the tiny tier's 40 authors), batches of 64, 64 new tokens,
in bf16 and in float32. Prints one JSON line per precision: rows whose greedy tokens agree exactly, the share of
agreeing new tokens up to each row's first difference, wall seconds of each engine (second call; the first
compiles)."""

from __future__ import annotations

import json
import sys
import time

import torch


def main(folder: str, path: str, device: str = "cuda") -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearn.benchmarks.tofu.data import synthetic_tofu
    from unlearn.scoring.encoding import attention_mask, chat_prompt_ids, format_prompt, pad_sequences

    tok = AutoTokenizer.from_pretrained(folder)
    questions = [r.question for r in synthetic_tofu("forget01").full]
    batch, new = 64, 64
    with open(path, "a") as out:
        for dtype in (torch.bfloat16, torch.float32):
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
            agree_rows = prefix = total = 0
            walls = {"dynamic": 0.0, "static": 0.0}
            for i in range(0, len(questions) - batch + 1, batch):
                prompts = [chat_prompt_ids(tok, format_prompt(tok, q)) for q in questions[i:i + batch]]
                ids, mask = pad_sequences(prompts, tok.pad_token_id, left=True, device=device)
                mask = attention_mask(ids, mask, None)
                outs = {}
                for engine, extra in (("dynamic", {}), ("static", {"cache_implementation": "static"})):
                    def run():
                        with torch.no_grad():
                            return model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                                  max_new_tokens=new, min_new_tokens=new, pad_token_id=tok.pad_token_id,
                                                  temperature=None, top_p=None, top_k=None, **extra)[:, ids.shape[1]:]
                    if i == 0:
                        run()  # the first call of each engine compiles / warms up
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    outs[engine] = run()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    walls[engine] += time.perf_counter() - t0
                for a, b in zip(outs["dynamic"], outs["static"]):
                    same = (a == b).tolist()
                    agree_rows += all(same)
                    prefix += same.index(False) if False in same else len(same)
                    total += len(same)
            rec = {"model": folder, "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
                   "dtype": str(dtype).replace("torch.", ""), "rows": total // new, "batch_size": batch, "new_tokens": new,
                   "rows_agreeing": agree_rows, "tokens_before_first_difference": round(prefix / total, 4),
                   "dynamic_s": round(walls["dynamic"], 2), "static_s": round(walls["static"], 2)}
            print(json.dumps(rec), flush=True)
            out.write(json.dumps(rec) + "\n")
            del model


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
