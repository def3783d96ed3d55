"""Is it really gone? A relearning attack and regeneration leakage for one unlearned model (docs/guide.md,
"Is it really gone?").

Relearning: fine-tune the unlearned model on a few forget rows (the *attack* part: ``fraction`` of the
forget split, at least ``min_rows``; a fixed small budget of steps at a fixed lr; LoRA when the cell used
LoRA) and re-measure the forget measure (TOFU: ROUGE-L recall of greedy answers) on the *other* forget
rows (the *eval* part). Recovery = (m_relearned - m_unlearned) / (m_target - m_unlearned) on the eval
part, unclipped here (the tables clip to [0, 1]); undefined (None) when the model did not lose anything
there (m_target - m_unlearned <= 0.01). The same attack on the gold (retain-only) model is the control:
what a model that never saw the forget data learns from the k attack rows.

Regeneration leakage: the greedy answer and ``samples`` answers sampled at temperature 1 to each forget
question, asked as written and reworded (TOFU has no paraphrased *questions*, so the rewording is a fixed
instruction in front of the question: :data:`REWORD`), scored by ROUGE-L recall against the answer. The
leak of a question is its worst case (the maximum over all its generations: what an attacker who samples
would see), averaged over questions; ``regen_exact`` is the fraction of questions where some generation
contains the whole answer.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass

import numpy as np
import torch

REWORD = "Answer briefly and precisely. {question}"
MIN_GAP = 0.01  # m_target - m_unlearned below this: nothing was removed there, recovery is undefined


@dataclass(frozen=True)
class RobustnessConfig:
    fraction: float = 0.1  # share of the forget rows the attacker fine-tunes on
    min_rows: int = 5  # at least this many attack rows (and at least one row left to measure)
    steps: int = 10  # optimiser steps of the attack
    lr: float = 1e-3  # attack lr (a tier sets its own; PROTOCOLS' 7B example: 1e-5)
    batch_size: int = 4
    samples: int = 2  # sampled generations per question and prompt form (plus the greedy one)
    temperature: float = 1.0
    seed: int = 0


def relearn_split(n: int, cfg: RobustnessConfig) -> tuple[list[int], list[int]]:
    """(attack rows, eval rows) of a forget split of n rows: disjoint, together all n, the same for every
    method of a split (a seeded permutation), k = max(min_rows, ceil(fraction n)) capped at n - 1."""
    if n < 2:
        raise ValueError(f"relearning needs at least 2 forget rows (one to attack with, one to measure), got {n}")
    k = min(n - 1, max(cfg.min_rows, math.ceil(round(cfg.fraction * n, 9))))
    order = list(range(n))
    random.Random(cfg.seed).shuffle(order)
    return sorted(order[:k]), sorted(order[k:])


def recovery(m_relearned: float, m_unlearned: float, m_target: float) -> float | None:
    """(m_relearned - m_unlearned) / (m_target - m_unlearned); None when nothing was removed (gap <= MIN_GAP)."""
    gap = m_target - m_unlearned
    if gap <= MIN_GAP:
        return None
    return (m_relearned - m_unlearned) / gap


def worst_case_leak(scores: np.ndarray) -> float:
    """scores: (questions, generations) ROUGE-L recall; the mean over questions of each one's maximum."""
    return float(np.asarray(scores).max(axis=1).mean())


def contains_answer(generation: str, answer: str) -> bool:
    norm = lambda t: " ".join(t.lower().split()).strip(" .")  # noqa: E731
    return bool(norm(answer)) and norm(answer) in norm(generation)


def attack(model, tok, rows, cfg: RobustnessConfig, lora=None, mixed_precision: str = "no"):
    """A copy of ``model`` fine-tuned on ``rows`` (TofuRow) for ``cfg.steps`` steps; LoRA adapters (``lora``,
    a LoraSpec) when the cell used them, else every weight. The original model is left untouched."""
    from unlearn.models import LoraSpec, add_lora, is_peft
    from unlearn.scoring import encode_qa
    from unlearn.train import TrainConfig, nll_loss, train

    attacked = copy.deepcopy(model)
    if is_peft(attacked):  # adapters kept unmerged (IWAP's masks on a LoRA model): one more, trained alone
        from peft import LoraConfig

        from unlearn.models import activate_adapters

        spec = lora or LoraSpec()
        active = list(attacked.base_model.active_adapters)
        attacked.add_adapter("relearn", LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules="all-linear",
                                                   lora_dropout=0.0, task_type="CAUSAL_LM"))
        activate_adapters(attacked, active + ["relearn"], trainable="relearn")
    elif lora is not None:
        attacked = add_lora(attacked, lora)
    else:  # full fine-tuning; a method may have left weights frozen (DSU's merged adapters)
        for p in attacked.parameters():
            p.requires_grad_(True)
    examples = [encode_qa(tok, r.question, r.answer) for r in rows]
    sched = TrainConfig(lr=cfg.lr, epochs=1e9, max_steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed,
                        mixed_precision=mixed_precision, progress=False, desc="relearn")
    train(attacked, tok.pad_token_id, sched, retain=examples, loss_fn=nll_loss)
    return attacked


@torch.no_grad()
def sampled_generations(model, tok, questions: list[str], n: int, temperature: float, max_new_tokens: int,
                        seed: int, batch_size: int = 16) -> list[list[str]]:
    """n answers per question sampled at ``temperature`` (seeded: the same draws for the same model)."""
    from unlearn.scoring import chat_prompt_ids, format_prompt, pad_sequences

    device = next(model.parameters()).device
    out: list[list[str]] = []
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    for i in range(0, len(questions), batch_size):
        prompts = [chat_prompt_ids(tok, format_prompt(tok, q)) for q in questions[i:i + batch_size]]
        ids, mask = pad_sequences(prompts, tok.pad_token_id, left=True, device=device)
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        res = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature, top_p=None,
                             top_k=None, num_return_sequences=n, max_new_tokens=max_new_tokens,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        texts = [tok.decode(r[ids.shape[1]:], skip_special_tokens=True).strip() for r in res]
        out += [texts[j * n:(j + 1) * n] for j in range(len(prompts))]
    model.train(was_training)
    return out


def regeneration_leak(model, tok, rows, cfg: RobustnessConfig, max_new_tokens: int,
                      greedy: list[str] | None = None) -> dict:
    """Worst-case leakage over greedy + sampled answers to each question, as written and reworded.
    ``greedy``: the as-written greedy answers when already generated (the evaluation's)."""
    from unlearn.benchmarks.tofu.metrics import rouge_l_recall
    from unlearn.scoring import generate

    questions = [r.question for r in rows]
    reworded = [REWORD.format(question=q) for q in questions]
    greedy = greedy if greedy is not None else generate(model, tok, questions, max_new_tokens=max_new_tokens)
    per_q = [[g] for g in greedy]
    for g, q_gens in zip(generate(model, tok, reworded, max_new_tokens=max_new_tokens), per_q):
        q_gens.append(g)
    for form, qs in enumerate((questions, reworded)):
        if cfg.samples > 0:
            for q_gens, s in zip(per_q, sampled_generations(model, tok, qs, cfg.samples, cfg.temperature,
                                                            max_new_tokens, cfg.seed + form)):
                q_gens += s
    answers = [r.answer for r in rows]
    scores = np.array([rouge_l_recall(g, [a] * len(g)) for g, a in zip(per_q, answers)])
    exact = [any(contains_answer(g, a) for g in gens) for gens, a in zip(per_q, answers)]
    return {"regen_leak": worst_case_leak(scores), "regen_exact": float(np.mean(exact)),
            "regen_leak_greedy": float(scores[:, 0].mean()), "generations_per_question": scores.shape[1]}


def forget_measure(model, tok, rows, protocol) -> np.ndarray:
    """Per-row ROUGE-L recall of greedy answers (TOFU's forget measure), generated and compared as the
    evaluation protocol does (its token budget, batch size and conventions)."""
    from unlearn.benchmarks.tofu.protocol import rouge_reference
    from unlearn.benchmarks.tofu.metrics import rouge_l_recall
    from unlearn.scoring import generate

    gens = generate(model, tok, [r.question for r in rows], max_new_tokens=protocol.max_new_tokens,
                    batch_size=protocol.generation_batch_size or protocol.batch_size, style=protocol.compat)
    return rouge_l_recall(gens, [rouge_reference(tok, r, protocol) for r in rows])
