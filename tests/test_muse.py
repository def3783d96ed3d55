"""MUSE: every formula on hand-worked values, the loaders' validation, the synthetic corpus's promises,
and the reduced real-data slice (when the development copy is present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn.data import DataError
from unlearn.benchmarks.muse.data import (N_REQUESTS, MuseData, load_muse_folder, parse_qa, parse_texts, parse_verbmem,
                               synthetic_muse)
from unlearn.metrics import mia
from unlearn.benchmarks.muse.metrics import (KNOWMEM_STOPS, STOP_MARGIN, answer_settled, cut_answer, knowmem_prompt, muse_auc,
                                  privleak, rouge_l_f1)
from unlearn.scoring import clean_up_tokenization, generate_ids


# ---------------------------------------------------------------- formulas
def test_rouge_l_f1_hand_worked_and_unstemmed():
    # ref: the cat lay on a mat / pred: the cat sat on the mat -> LCS the-cat-on-mat = 4; P = R = 4/6
    assert rouge_l_f1(["The cat sat on the mat."], ["the cat lay on a mat"])[0] == pytest.approx(2 / 3)
    # asymmetric lengths: ref 2 tokens, pred 4 tokens, LCS 2 -> P = 1/2, R = 1, F = 2/3
    assert rouge_l_f1(["in 1472 it was"], ["1472 it"])[0] == pytest.approx(2 / 3)
    # no stemming: "running dogs" shares nothing with "run dog" (with a stemmer it would score 1)
    assert rouge_l_f1(["running dogs"], ["run dog"])[0] == 0.0
    assert rouge_l_f1([""], ["anything"])[0] == 0.0


def test_knowmem_prompt_byte_for_byte():
    prompt = knowmem_prompt("Who won?", [("Where?", "Orkney"), ("When?", "1472")])
    assert prompt == "Question: Where?\nAnswer: Orkney\n\nQuestion: When?\nAnswer: 1472\n\nQuestion: Who won?\nAnswer: "
    assert knowmem_prompt("Q?", []) == "Question: Q?\nAnswer: "


@pytest.mark.parametrize("generated,expected", [
    ("1472\n\nQuestion: next one", "1472"),
    ("Mark Selby\nQuestion: next", "Mark Selby"),
    ("Mark Selby Question: next", "Mark Selby "),
    ("A\nQuestion B\n\nC", "A"),  # the blank line first, then "\nQuestion" on what is left
    ("no stop at all", "no stop at all"),
    ("\n\nanswer after a blank line", ""),
])
def test_knowmem_cut(generated, expected):
    assert cut_answer(generated) == expected


# text drawn from the characters of the stop strings and of decoding's clean-up patterns, so that stops, near-stops
# and clean-ups meet at the boundary between what was generated and what would follow
_PIECES = st.lists(st.sampled_from(["\n", " ", ".", "?", ",", "'", "n't", "s", "Question", ":", "Q", "A", "1472",
                                    *KNOWMEM_STOPS]), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(_PIECES, _PIECES)
def test_a_settled_answer_cannot_change(text, more):
    """Early stopping of KnowMem generation is exact: once ``answer_settled`` holds, no continuation changes the
    answer that is scored (the decode clean-up applied before the cut, as in ``muse_generations``)."""
    if answer_settled(text):
        assert cut_answer(clean_up_tokenization(text + more)) == cut_answer(clean_up_tokenization(text))


def test_answer_settled_needs_a_stop_and_the_margin():
    assert not answer_settled("1472 and more text without any stop at all")
    assert not answer_settled("1472\n\nQuest")  # a stop, but fewer than STOP_MARGIN characters after it
    assert answer_settled("1472\n\n" + "x" * (STOP_MARGIN - 2))


def test_generation_stops_early_without_changing_the_kept_text():
    """``settled`` ends rows early; what they generated up to then is the full generation's beginning."""
    from tests.helpers import tiny

    lm = tiny()
    prompts = [lm.tokenizer(t)["input_ids"] for t in ("The capital city of", "Question: who wrote it?\nAnswer:", "A")]
    full = generate_ids(lm.model, lm.tokenizer, prompts, max_new_tokens=24)
    early = generate_ids(lm.model, lm.tokenizer, prompts, max_new_tokens=24, settled=lambda t: len(t) >= 12)
    for f, e in zip(full, early):
        assert len(e.strip()) < len(f.strip()) and f.startswith(e[:12])


def test_privleak_sign_and_scale():
    assert privleak(0.1, 0.5) == pytest.approx(-80.0)  # under-unlearned: the model still tells members apart
    assert privleak(0.6, 0.5) == pytest.approx(20.0)  # over-unlearned
    assert privleak(0.5, 0.5) == 0.0  # the retrain row: 0 by definition
    assert muse_auc(1.0) == 0.0 and muse_auc(0.25) == 0.75


def test_privleak_of_a_memorising_model_is_minus_100():
    """Members (forget) with higher token log-probs than non-members: the usual Min-K% AUC is 1, MUSE's
    orientation 0, and against a retrain at 0.5 PrivLeak is -100 (the fine-tuned target's value)."""
    members = [np.array([-0.1, -0.2, -0.3]), np.array([-0.2, -0.1, -0.4])]
    others = [np.array([-3.0, -2.0, -4.0]), np.array([-2.5, -5.0, -1.0])]
    usual = mia.auc(mia.min_k_score(members, 0.4), mia.min_k_score(others, 0.4))
    assert usual == 1.0
    assert privleak(muse_auc(usual), 0.5) == pytest.approx(-100.0)


# ---------------------------------------------------------------- loaders
def test_text_rows_in_folder_and_hub_form():
    assert parse_texts(Path("f.json"), ["a", "b"]) == ["a", "b"]
    assert parse_texts(Path("f.json"), [{"text": "a"}]) == ["a"]
    assert parse_texts(Path("raw.json"), ["a", "  ", "b"], drop_empty=True) == ["a", "b"]


@pytest.mark.parametrize("rows,parser,message", [
    ([{"txt": "a"}], parse_texts, "f.json, row 0, field 'text': missing field"),
    (["a", 3], parse_texts, "f.json, row 1: expected a string, got int"),
    (["a", ""], parse_texts, "f.json, row 1: empty text"),
    ([{"question": "q"}], parse_qa, "f.json, row 0, field 'answer': missing field"),
    ([{"question": "q", "answer": 7}], parse_qa, "f.json, row 0, field 'answer': expected a string, got int"),
    ([{"prompt": "p", "gt": " "}], parse_verbmem, "f.json, row 0, field 'gt': empty string"),
    (["p"], parse_verbmem, "f.json, row 0: expected a JSON object, got str"),
])
def test_bad_rows_name_file_row_and_field(rows, parser, message):
    with pytest.raises(DataError) as err:
        parser(Path("f.json"), rows)
    assert str(err.value) == message


def _write(folder: Path, rel: str, rows) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))


def _minimal_folder(folder: Path) -> None:
    qa = [{"question": "q", "answer": "a"}]
    _write(folder, "raw/forget.json", ["forget text one", "", "forget text two"])
    _write(folder, "verbmem/forget.json", [{"prompt": "p", "gt": "g"}])
    for name in ("forget_qa", "forget_qa_icl", "retain2_qa", "retain2_qa_icl"):
        _write(folder, f"knowmem/{name}.json", qa)
    for name in ("forget", "holdout", "retain2"):
        _write(folder, f"privleak/{name}.json", ["t"])


def test_folder_loader_reports_what_is_missing(tmp_path):
    _minimal_folder(tmp_path)
    d = load_muse_folder(tmp_path)
    assert d.forget == ["forget text one", "forget text two"]  # the empty raw chunk is skipped
    assert "raw/retain1.json" in d.missing and "sust/forget_1.json" in d.missing
    (tmp_path / "knowmem" / "retain2_qa.json").write_text('[{"question": "q"]')
    with pytest.raises(DataError, match=r"retain2_qa.json: malformed JSON"):
        load_muse_folder(tmp_path)
    (tmp_path / "knowmem" / "retain2_qa.json").unlink()
    with pytest.raises(DataError, match=r"knowmem/retain2_qa.json: missing MUSE file"):
        load_muse_folder(tmp_path)


# ---------------------------------------------------------------- the synthetic corpus
def test_synthetic_muse_is_deterministic_and_keeps_its_promises():
    d = synthetic_muse(seed=0)
    assert d == synthetic_muse(seed=0) and d.forget != synthetic_muse(seed=1).forget
    assert len(d.sust) == len(d.scal) == N_REQUESTS
    assert d.sust[0] == d.forget == d.scal[0]
    assert all(set(a).isdisjoint(b) for i, a in enumerate(d.sust) for b in d.sust[i + 1:])
    assert all(d.scal[k] == [t for s in d.sust[: k + 1] for t in s] for k in range(N_REQUESTS))
    assert len(d.knowmem_forget_icl) == len(d.knowmem_retain_icl) == 10
    forget_text, other = "\n".join(d.forget), "\n".join(d.retain + d.holdout + [t for s in d.sust[1:] for t in s])
    for row in d.knowmem_forget:  # answerable from the forget request's text only
        if row.answer.split()[0] in ("January", "February", "March", "April", "May", "June", "July", "August",
                                     "September", "October", "November", "December"):
            continue  # a month and year may recur elsewhere by chance; the invented names may not
        assert row.answer in forget_text and row.answer not in other
    for row in d.verbmem:
        assert any(t == row.prompt + row.gt for t in d.forget)
    assert set(d.privleak_forget) <= set(d.forget) and set(d.privleak_holdout).isdisjoint(d.forget + d.retain)


def test_encode_text_scores_every_token_after_the_first():
    from unlearn.models import load_tokenizer, tiny_qwen3_dir
    from unlearn.scoring import encode_text

    tok = load_tokenizer(tiny_qwen3_dir())
    ids = tok("a plain text to score", add_special_tokens=True)["input_ids"]
    e = encode_text(tok, "a plain text to score")
    assert list(e.prompt_ids) == ids[:1] and list(e.answer_ids) == ids[1:] + [tok.eos_token_id]
    assert len(encode_text(tok, "a plain text to score", max_length=3, eos=False)) == 3
    with pytest.raises(ValueError, match="too short"):
        encode_text(tok, "a", eos=False)


# ---------------------------------------------------------------- real News (development copy)
@pytest.fixture(scope="module")
def news_dir(data_dir):
    folder = Path(data_dir or "") / "muse" / "news"
    if not data_dir or not (folder / "knowmem" / "forget_qa.json").is_file():
        pytest.skip("MUSE-News not found: pass --data-dir or set UNLEARN_DATA_DIR to a folder with muse/news/")
    return folder


@pytest.mark.real_data
def test_real_news_loads_with_the_card_counts(news_dir):
    d = load_muse_folder(news_dir)
    assert (len(d.verbmem), len(d.knowmem_forget), len(d.knowmem_retain), len(d.privleak_forget)) == (100, 100, 100, 100)
    assert len(d.knowmem_forget_icl) == len(d.knowmem_retain_icl) == 10
    assert len(d.forget) == 888 and [len(s) for s in d.sust] == [888, 889, 889, 887]  # one empty chunk each in 1 and 4


@pytest.mark.real_data
def test_reduced_real_slice_holds_what_it_evaluates(news_dir):
    from unlearn.benchmarks.muse.benchmark import reduce_real

    d = reduce_real(load_muse_folder(news_dir), n=4, width=1500)
    assert len(d.verbmem) == 4 and len(d.knowmem_forget) == 4 and len(d.knowmem_retain) == 4
    for row in d.verbmem:
        assert any(row.gt[:400] in t for t in d.forget)
    for row in d.knowmem_forget:
        assert any(row.answer in t for t in d.forget)
    for row in d.knowmem_retain:
        assert any(row.answer in t for t in d.retain)
    assert len(d.sust) == N_REQUESTS and all(len(s) == 4 for s in d.sust[1:])
    assert isinstance(d, MuseData) and "reduced slice" in d.source
    assert len(reduce_real(load_muse_folder(news_dir), n=4, width=1500, later=0).sust) == 1  # the dry run's: news only


def test_reference_evaluations_are_one_per_benchmark_not_per_split():
    """Every MUSE split evaluates the same sets, so the target's and gold's evaluations have one cache key, asked
    for with or without a split (the cells and the evals' prebuild ask without one)."""
    from unlearn.benchmarks.muse.benchmark import MuseBenchmark

    bench = MuseBenchmark("tiny-qwen3", device="cpu")
    keys = {bench.reference_ident(kind, split) for kind in ("target",) for split in (None, *bench.splits)}
    assert len(keys) == 1
    assert bench.identity(None) == bench.identity("news")
    with pytest.raises(ValueError, match="unknown MUSE split 'news-x'"):
        bench.identity("news-x")


def test_quantised_sustainability_is_refused_before_any_step(monkeypatch):
    """news-sust continues from merged weights, which a 4-bit base cannot take: the cell says so before the
    target is evaluated or the first request unlearned (neither is reached here)."""
    from unlearn.benchmarks.muse.benchmark import MuseBenchmark

    bench = MuseBenchmark("tiny-qwen3", quant="4bit", progress=False)

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr(bench, "reference_eval", no_work)
    with pytest.raises(NotImplementedError, match="without --quant"):
        bench.run_cell("npo", "news-sust")
