"""Scoring answers under a model: per-token log-probabilities of the answer span, mean NLL and the MIA token
statistics, in length-matched batches, with a prompt prefix every row shares computed once."""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from unlearn.scoring.bf16_weights import bf16_weights_under_autocast
from unlearn.scoring.encoding import Example, IGNORE, attention_mask, collate, encode_qa, pad_sequences


LOGIT_CHUNK = 1 << 26  # (N, V) elements above which answer log-probs are computed a slice of rows at a time


def body_and_head(model):
    """(decoder body, LM head) of a Llama/Qwen-style model, or None when the head cannot be split off."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(base, "model", None), getattr(base, "lm_head", None)
    if body is None or head is None or getattr(base.config, "final_logit_softcapping", None):
        return None
    return body, head


def answer_logits(model, batch: dict[str, torch.Tensor]):
    """Logits only where an answer token is predicted: (N, V) float32, targets (N,), row ids (N,), mask (B, L-1).

    The LM head and the softmax never run over prompt or padding positions, which saves most of the
    (B, L, V) work and memory; models whose head cannot be split off fall back to full logits.
    """
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE
    parts = body_and_head(model)
    if parts is None:
        sel = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1][mask]
    else:
        body, head = parts
        hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        sel = head(hidden[:, :-1][mask])
    return sel.float(), targets[mask], mask.nonzero()[:, 0], mask


def _head_logprobs(head, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -F.cross_entropy(head(hidden).float(), targets, reduction="none")  # negated: loss -> log-prob


def answer_logprobs(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence answer log-prob sums (B,) and scored-token counts (B,), differentiable.

    When the answer logits would exceed ``LOGIT_CHUNK`` elements (a large vocabulary) and gradients are on, the
    LM head and cross-entropy run on slices of answer positions under activation checkpointing: only the hidden
    states are kept for backward, never the (N, V) logits and their softmax (measured on Qwen3-4B's shape,
    batch 16: 656 MiB per copy, which took grad_diff/NPO past a 10 GiB cap). Same values up to rounding; the
    tiny tier never takes this path, nor SmolLM2's training batches (at most ~1,000 answer tokens x 49k)."""
    parts = body_and_head(model)
    if parts is not None and torch.is_grad_enabled():
        body, head = parts
        targets = batch["labels"][:, 1:]
        mask = targets != IGNORE
        n, vocab = int(mask.sum()), head.weight.shape[0]
        if n * vocab > LOGIT_CHUNK:
            from torch.utils.checkpoint import checkpoint

            hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            sel, tsel, rows = hidden[:, :-1][mask], targets[mask], mask.nonzero()[:, 0]
            step = max(1, LOGIT_CHUNK // vocab)
            lp = torch.cat([checkpoint(_head_logprobs, head, sel[s:s + step], tsel[s:s + step], use_reentrant=False)
                            for s in range(0, n, step)])
            sums = torch.zeros(mask.shape[0], dtype=lp.dtype, device=lp.device).index_add(0, rows, lp)
            return sums, mask.sum(-1)
    logits, targets, rows, mask = answer_logits(model, batch)
    lp = -F.cross_entropy(logits, targets, reduction="none")  # negated: loss -> log-prob
    sums = torch.zeros(mask.shape[0], dtype=lp.dtype, device=lp.device).index_add(0, rows, lp)
    return sums, mask.sum(-1)


def mean_nll(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Token-mean cross-entropy over all answer tokens of the batch (the NLL of docs/methods.md)."""
    sums, counts = answer_logprobs(model, batch)
    return -sums.sum() / counts.sum().clamp_min(1)  # negated: log-prob -> loss


@dataclass
class ScoreResult:
    """Per-example answer scores; ``token_*`` lists hold one array per example (answer tokens only)."""

    logprob_sum: np.ndarray
    n_tokens: np.ndarray
    token_logprobs: list[np.ndarray] = field(default_factory=list)
    token_mu: list[np.ndarray] = field(default_factory=list)
    token_sigma: list[np.ndarray] = field(default_factory=list)
    token_correct: list[np.ndarray] = field(default_factory=list)  # greedy (argmax) prediction == answer token

    @property
    def mean_nll(self) -> np.ndarray:
        """Length-normalised NLL per example: loss(a)/n(a)."""
        return -self.logprob_sum / np.maximum(self.n_tokens, 1)

    def take(self, start: int, stop: int) -> "ScoreResult":
        """The results of examples ``start:stop`` (one call can score several lists at once)."""
        return ScoreResult(self.logprob_sum[start:stop], self.n_tokens[start:stop], *(
            xs[start:stop] for xs in (self.token_logprobs, self.token_mu, self.token_sigma, self.token_correct)))


def length_sorted_batches(n_items: int, lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(n_items), key=lambda i: -lengths[i])
    return [order[i: i + batch_size] for i in range(0, n_items, batch_size)]


def _prompt_groups(examples: list[Example], batch_size: int) -> list[list[list[int]]]:
    """Examples grouped by identical prompt, groups packed into batches of about ``batch_size`` answers.

    Groups are sorted by prompt length, then longest answer, so a batch pads little on either side; a
    group larger than ``batch_size`` forms a batch of its own (its prompt is still computed once).
    """
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(examples):
        by_prompt.setdefault(e.prompt_ids, []).append(i)
    groups = sorted(by_prompt.values(), key=lambda g: (-len(examples[g[0]].prompt_ids),
                                                       -max(len(examples[i].answer_ids) for i in g)))
    batches: list[list[list[int]]] = []
    size = 0
    for g in groups:
        if not batches or size + len(g) > batch_size:
            batches.append([])
            size = 0
        batches[-1].append(g)
        size += len(g)
    return batches


def cache_argument(body) -> str:
    """transformers renames ``past_key_values`` to ``cache`` (deprecated from 5.2x on some models)."""
    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"


PREFIX_MIN = 8  # a token prefix every prompt shares (a chat template's system prompt) is computed once from this length


CHUNK_COST = 48  # answer sub-batches: the fixed cost of one more forward call, in padded answer tokens


def common_prefix(prompts: list[tuple[int, ...]]) -> int:
    """Length of the token prefix all ``prompts`` share, leaving at least one token of each prompt after it
    (its last hidden state predicts the answer's first token); 0 when shorter than ``PREFIX_MIN``."""
    first, n = prompts[0], min(len(q) for q in prompts) - 1
    k = 0
    while k < n and all(q[k] == first[k] for q in prompts):
        k += 1
    return k if k >= PREFIX_MIN else 0


def _cache_rows(cache, index: torch.Tensor):
    """A new KV cache holding rows ``index`` of ``cache`` (which is left as it is)."""
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    out.reorder_cache(index)
    return out


def answer_chunks(lengths: list[int], cost: int | None = None) -> list[list[int]]:
    """Positions of ``lengths`` (row answer lengths) split into sub-batches of similar length: rows sorted by
    length, cut where the padding saved exceeds ``cost`` padded tokens per extra forward call (an exact
    minimum over the sorted order: sum over chunks of rows x longest + cost per chunk; None: ``CHUNK_COST``)."""
    cost = CHUNK_COST if cost is None else cost
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    ls = [lengths[i] for i in order]
    n = len(ls)
    best, cut = [0] + [None] * n, [0] * (n + 1)
    for j in range(1, n + 1):  # best[j]: cheapest split of the first j rows; a chunk i..j-1 pads to ls[i]
        best[j], cut[j] = min((best[i] + (j - i) * ls[i] + cost, i) for i in range(j))
    chunks, j = [], n
    while j > 0:
        chunks.append(order[cut[j]:j])
        j = cut[j]
    return chunks[::-1]


def prefix_cache(model, prefix: tuple[int, ...], device, hide_token: int | None = None):
    """(length, KV cache (batch 1), attention row) of a token prefix shared by every prompt, for
    ``shared_prompt_logits``; ``hide_token`` as in ``collate``."""
    body, _ = body_and_head(model)
    ids = torch.tensor([prefix], dtype=torch.long, device=device)
    attend = attention_mask(ids, torch.ones_like(ids), hide_token)
    out = body(input_ids=ids, attention_mask=attend, position_ids=torch.arange(len(prefix), device=device)[None],
               use_cache=True)
    return len(prefix), getattr(out, "cache", None) or out.past_key_values, attend


def shared_prompt_logits(model, examples: list[Example], groups: list[list[int]], pad_id: int, device,
                         hide_token: int | None = None, prefix=None, cost: int | None = None):
    """``answer_logits`` for groups of examples that share a prompt: each prompt runs once (left-padded,
    with its KV cache), the cache is repeated for the group's answers, and the answers run on top of it,
    in sub-batches of similar length (``answer_chunks``) so that short answers do not pad to the longest.
    ``prefix``: ``prefix_cache`` of a token prefix every prompt starts with; the prompts' rest then runs on top of
    it, the padding sitting between the prefix and the rest (positions count real tokens only, as before).

    Returns (logits (N, V), targets (N,), row ids (N,), scored tokens per row, example index of each row):
    a row's positions are contiguous in the N dimension.
    Positions match the unshared layout exactly: the prompt's real tokens sit at 0..p-1 and its answer at
    p..p+a-1, so a row's score equals ``answer_logits`` on prompt+answer (up to float rounding).
    ``hide_token`` as in ``collate``: such tokens keep their positions but are masked out of attention.
    """
    body, head = body_and_head(model)
    skip = prefix[0] if prefix is not None else 0
    prompts = [examples[g[0]].prompt_ids[skip:] for g in groups]
    order = [i for g in groups for i in g]
    owner = torch.tensor([k for k, g in enumerate(groups) for _ in g], device=device)
    ids, pmask = pad_sequences(prompts, pad_id, left=True, device=device)
    pattend = attention_mask(ids, pmask, hide_token)
    positions = (pmask.cumsum(-1) - 1).clamp_min(0) + skip
    extra = {}
    if prefix is not None:
        ones = torch.ones(len(groups), skip, dtype=pmask.dtype, device=device)
        pmask, pattend = torch.cat([ones, pmask], 1), torch.cat([prefix[2].expand(len(groups), -1).to(pattend.dtype), pattend], 1)
        extra[cache_argument(body)] = _cache_rows(prefix[1], torch.zeros(len(groups), dtype=torch.long, device=device))
    out = body(input_ids=ids, attention_mask=pattend, position_ids=positions, use_cache=True, **extra)
    cache = getattr(out, "cache", None) or out.past_key_values
    last = out.last_hidden_state[:, -1]  # left padding: the last column is real
    plen = pmask.sum(-1)
    parts, rows_seen = [[], [], [], [], []], 0
    chunks = answer_chunks([len(examples[i].answer_ids) for i in order], cost)
    for chunk in chunks:
        sel = torch.tensor(chunk, device=device)
        own = owner[sel]
        if len(chunks) > 1:
            sub = _cache_rows(cache, own)
        else:
            sub = cache
            cache.reorder_cache(own)  # (G, ...) -> one copy per answer row
        aids, amask = pad_sequences([examples[order[r]].answer_ids for r in chunk], pad_id, device=device)
        aattend = attention_mask(aids, amask, hide_token)
        apos = plen[own][:, None] + torch.arange(aids.shape[1], device=device)
        hidden = body(input_ids=aids, attention_mask=torch.cat([pattend[own], aattend], 1), position_ids=apos,
                      use_cache=True, **{cache_argument(body): sub}).last_hidden_state
        # answer token t is predicted by the hidden state before it: the prompt's last one for t = 0
        pred = torch.cat([last[own][:, None], hidden[:, :-1]], 1)
        mask = amask.bool()
        parts[0].append(head(pred[mask]).float())
        parts[1].append(aids[mask])
        parts[2].append(mask.nonzero()[:, 0] + rows_seen)
        parts[3].append(mask.sum(-1))
        parts[4] += [order[r] for r in chunk]
        rows_seen += len(chunk)
        del sub, hidden, pred
    return torch.cat(parts[0]), torch.cat(parts[1]), torch.cat(parts[2]), torch.cat(parts[3]), parts[4]


def _chunked_token_stats(logits: torch.Tensor, targets: torch.Tensor, stats: bool):
    """Per answer token: log p(target), and (``stats``) the next-token distribution's mean mu and std sigma of
    log p and whether the target is the argmax, computed on row slices of ``logits`` (N, V) so that the full
    softmax never exists at once (a 151k vocabulary at batch 32: 2 GiB per (N, V) copy). Each row's values
    are those of the whole tensor up to rounding (the reductions are along the vocabulary). The tiny tier
    never comes here; SmolLM2's scoring batches (shared-prompt groups of 20-32 questions) do."""
    step = max(1, LOGIT_CHUNK // logits.shape[1])
    parts: list[list[torch.Tensor]] = [[], [], [], []]
    for s in range(0, logits.shape[0], step):
        lg, t = logits[s:s + step], targets[s:s + step]
        logp = torch.log_softmax(lg, dim=-1)
        parts[0].append(logp.gather(1, t[:, None])[:, 0])
        if stats:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            parts[1].append(mu)
            parts[2].append(((p * logp.square()).sum(-1) - mu.square()).clamp_min(0).sqrt())
            parts[3].append(lg.argmax(-1) == t)
            del p
        del logp
    lp = torch.cat(parts[0])
    if not stats:
        return lp, None, None, None
    return lp, torch.cat(parts[1]), torch.cat(parts[2]), torch.cat(parts[3])


@torch.no_grad()
def score_examples(model, examples: list[Example], pad_id: int, *, batch_size: int = 16,
                   token_stats: bool | list[bool] = False, share_prompts: bool = True,
                   device: str | torch.device | None = None, progress: bool = False, desc: str = "score",
                   hide_token: int | None = None) -> ScoreResult:
    """Score many examples in batches; the logits live for one batch only.

    Examples that share a prompt (a question's answer, paraphrase and perturbed answers) are scored on one
    computation of the prompt (``shared_prompt_logits``), and a token prefix all prompts share (``common_prefix``,
    at least ``PREFIX_MIN`` tokens: a chat template's system prompt) on one computation for the whole call;
    otherwise batches are length-sorted rows.
    ``token_stats`` (for all examples, or a flag per example) also keeps per-token log-probs, greedy hits
    and the next-token distribution's mean mu_t and std sigma_t of log p (Min-K%++). ``hide_token``: see
    ``collate`` (open-unlearning compatibility only).
    """
    device = device or next(model.parameters()).device
    n = len(examples)
    stats = list(token_stats) if isinstance(token_stats, (list, tuple)) else [bool(token_stats)] * n
    if len(stats) != n:
        raise ValueError(f"token_stats has {len(stats)} flags for {n} examples")
    sums, counts = np.zeros(n), np.zeros(n, dtype=np.int64)
    toks: list = [None] * n
    mus: list = [None] * n
    sigmas: list = [None] * n
    correct: list = [None] * n
    was_training = model.training
    model.eval()
    groups = _prompt_groups(examples, batch_size)
    # the prefix every prompt shares (a chat template's system prompt) runs once for the whole call
    skip = common_prefix([examples[g[0]].prompt_ids for b in groups for g in b]) if n else 0
    # some prompt repeats, or all begin alike
    shared = share_prompts and body_and_head(model) is not None and (sum(map(len, groups)) < n or skip > 0)

    def batches():
        with bf16_weights_under_autocast(model):  # bf16 scoring: the frozen weights cast once, not per forward
            if shared:
                prefix = prefix_cache(model, examples[0].prompt_ids[:skip], device, hide_token) if skip else None
                for batch_groups in groups:
                    *out, idx = shared_prompt_logits(model, examples, batch_groups, pad_id, device, hide_token, prefix)
                    yield idx, out
            else:
                for idx in length_sorted_batches(n, [len(e) for e in examples], batch_size):
                    batch = collate([examples[i] for i in idx], pad_id, device, hide_token)
                    logits, targets, rows, mask = answer_logits(model, batch)
                    yield idx, (logits, targets, rows, mask.sum(-1))

    n_batches = len(groups) if shared else -(-n // batch_size)
    for idx, (logits, targets, rows, counts_t) in tqdm(batches(), total=n_batches, desc=desc, disable=not progress,
                                                        leave=False):
        if logits.numel() > LOGIT_CHUNK:  # a large-vocabulary model: never more than a chunk of (N, V) at a time
            lp, mu_all, sigma_all, hit_all = _chunked_token_stats(logits, targets, any(stats[i] for i in idx))
            counts_b = counts_t.tolist()
            sums_b = torch.zeros(len(idx), dtype=lp.dtype, device=lp.device).index_add(0, rows, lp).tolist()
            start = 0
            for row, i in enumerate(idx):
                m = counts_b[row]
                sums[i], counts[i] = sums_b[row], m
                if stats[i]:
                    toks[i], mus[i], sigmas[i], correct[i] = (c[start:start + m].cpu().numpy()
                                                              for c in (lp, mu_all, sigma_all, hit_all))
                start += m
            del logits
            continue
        logp = torch.log_softmax(logits, dim=-1)
        lp = logp.gather(1, targets[:, None])[:, 0]
        counts_b = counts_t.tolist()
        sums_b = torch.zeros(len(idx), dtype=lp.dtype, device=lp.device).index_add(0, rows, lp).tolist()
        for row, i in enumerate(idx):
            sums[i], counts[i] = sums_b[row], counts_b[row]
        need = [row for row, i in enumerate(idx) if stats[i]]
        if need:
            bounds = np.cumsum([0] + counts_b)  # selected positions are row-major: row r owns a contiguous run
            keep = torch.cat([torch.arange(bounds[r], bounds[r + 1]) for r in need]).to(logp.device)
            sub = logp[keep]
            p = sub.exp()
            mu = (p * sub).sum(-1)
            sigma = ((p * sub.square()).sum(-1) - mu.square()).clamp_min(0).sqrt()
            hit = logits[keep].argmax(-1) == targets[keep]
            cols = [t.cpu().numpy() for t in (lp[keep], mu, sigma, hit)]
            start = 0
            for r in need:
                i, m = idx[r], counts_b[r]
                toks[i], mus[i], sigmas[i], correct[i] = (c[start:start + m] for c in cols)
                start += m
            del p, sub
        del logits, logp
    model.train(was_training)
    if not any(stats):
        return ScoreResult(sums, counts)
    return ScoreResult(sums, counts, toks, mus, sigmas, correct)


def score_answers(model, tokenizer, pairs: list[tuple[str, str]], **kw) -> ScoreResult:
    """Score answer strings given questions: ``pairs`` is [(question, answer), ...]."""
    examples = [encode_qa(tokenizer, q, a) for q, a in pairs]
    return score_examples(model, examples, tokenizer.pad_token_id, **kw)
