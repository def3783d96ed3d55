"""How many never-trained authors a TOFU forget set needs before the gold's Min-K%++ AUC lands near 0.5.

On the tiny tier the gold model (trained on retain90) has seen neither the forget10 authors nor the holdout
authors, so its AUC of forget rows against an equal number of holdout rows measures nothing but chance and
how much the authors differ. This scores every row of the forget10 authors and of ``--holdout`` more generated
authors under that gold (Min-K%++, the protocol's k), then prints:

- the share of the score variance that lies between authors (intraclass correlation),
- for k authors on each side (m facts each, drawn at random from the pool), the sd of the AUC over ``--draws``
  draws and the share of draws within 0.1 of 0.5,
- what the author effect follows (answer length; the lowest- and highest-scoring authors' first rows).

Run: python perf/gold_mia_authors.py [--holdout 60] [--draws 2000]   (trains the tiny TOFU target and the
forget10 gold on first use, ~4 minutes on 2 cores; numerics pinned as in the tests)
"""

from __future__ import annotations

from unlearn.numerics import pin_numerics

pin_numerics()

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from unlearn.benchmarks import TofuBenchmark  # noqa: E402
from unlearn.metrics.mia import scores_of  # noqa: E402
from unlearn.benchmarks.tofu.data import synthetic_tofu  # noqa: E402
from unlearn.metrics import mia  # noqa: E402
from unlearn.scoring import encode_qa, score_examples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdout", type=int, default=60, help="generated never-trained authors beside forget10's")
    ap.add_argument("--draws", type=int, default=2000)
    args = ap.parse_args()
    bench = TofuBenchmark("tiny-qwen3", target_eval="full", progress=False)
    proto, split = bench.profile.protocol, "forget10"
    data = bench.data(split)
    holdout = synthetic_tofu(split, bench.profile.synthetic_authors, seed=0, n_holdout=args.holdout).holdout
    unseen = list(data.forget) + list(holdout)
    per_author = len(holdout) // args.holdout  # every generated author has the same number of facts
    lm = bench.load(bench.gold_dir(split), adapters=False)
    tok = lm.tokenizer
    with torch.no_grad():
        res = score_examples(lm.model, [encode_qa(tok, r.question, r.answer, style=proto.compat) for r in unseen],
                             tok.pad_token_id, batch_size=32, token_stats=[True] * len(unseen), progress=False)
    scores = np.array(scores_of(res, [r.answer for r in unseen], proto.mink_k)["min_k_plus_plus"])
    by_author = scores.reshape(-1, per_author)
    n_authors = by_author.shape[0]
    between, within = float(by_author.mean(1).var()), float(by_author.var(1).mean())
    print(json.dumps({"authors": n_authors, "facts_per_author": per_author, "between_author_var": round(between, 4),
                      "within_author_var": round(within, 4), "icc": round(between / (between + within), 3)}))
    rng = np.random.default_rng(0)
    for k in (1, 2, 4, 5, 8, 10, 16, 20):
        for m in sorted({per_author, 10, 5}, reverse=True):
            if 2 * k > n_authors or m > per_author:
                continue
            aucs = []
            for _ in range(args.draws):
                picked = rng.permutation(n_authors)[: 2 * k]
                side = lambda authors: [float(s) for a in authors for s in by_author[a, rng.permutation(per_author)[:m]]]  # noqa: E731
                aucs.append(mia.auc(side(picked[:k]), side(picked[k:])))
            aucs = np.array(aucs)
            print(json.dumps({"authors_per_side": k, "facts": m, "rows_per_side": k * m, "auc_sd": round(float(aucs.std()), 3),
                              "share_within_0.1_of_0.5": round(float((abs(aucs - 0.5) <= 0.1).mean()), 3)}))
    means = by_author.mean(1)
    answer_tokens = np.array([len(tok(r.answer).input_ids) for r in unseen]).reshape(-1, per_author).mean(1)
    print(json.dumps({"corr_author_mean_vs_answer_tokens": round(float(np.corrcoef(means, answer_tokens)[0, 1]), 3),
                      "author_mean_min_median_max": [round(float(v), 3) for v in (means.min(), np.median(means), means.max())]}))
    for i in np.argsort(means)[[0, 1, -2, -1]]:
        print(json.dumps({"author_mean": round(float(means[i]), 3), "first_answer": unseen[i * per_author].answer}))


if __name__ == "__main__":
    main()
