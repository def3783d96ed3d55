"""TOFU loaders (validation errors name file, row and field) and the synthetic author generator."""

import json

import pytest

from unlearn.data import DataError, resolve_data_dir
from unlearn.data.tofu import (QA_PER_AUTHOR, load_local_split, load_tofu, read_json_rows, synthetic_tofu)


def write(tmp_path, name, rows, raw=None):
    d = tmp_path / "tofu"
    d.mkdir(exist_ok=True)
    (d / f"{name}.json").write_text(raw if raw is not None else "\n".join(json.dumps(r) for r in rows))
    return tmp_path


def test_missing_field_names_file_row_and_field(tmp_path):
    write(tmp_path, "forget01", [{"question": "q", "answer": "a"}, {"question": "q2"}])
    with pytest.raises(DataError, match=r"forget01.json, row 1, field 'answer': missing field"):
        load_local_split(tmp_path, "forget01")


def test_wrong_type_is_reported(tmp_path):
    write(tmp_path, "forget01", [{"question": "q", "answer": 3}])
    with pytest.raises(DataError, match=r"row 0, field 'answer': expected a string, got int"):
        load_local_split(tmp_path, "forget01")


def test_empty_split_is_reported(tmp_path):
    write(tmp_path, "forget01", [], raw="")
    with pytest.raises(DataError, match="forget01.json: split is empty"):
        load_local_split(tmp_path, "forget01")


def test_perturbed_row_without_perturbed_answers(tmp_path):
    row = {"question": "q", "answer": "a", "paraphrased_answer": "p", "perturbed_answer": []}
    write(tmp_path, "forget01_perturbed", [row])
    with pytest.raises(DataError, match="row 0, field 'perturbed_answer': perturbed row has no perturbed answers"):
        load_local_split(tmp_path, "forget01_perturbed", perturbed=True, paraphrased=True)


def test_malformed_line_is_reported_with_its_line(tmp_path):
    write(tmp_path, "retain99", [], raw='{"question": "q", "answer": "a"}\n{"question": oops}\n')
    with pytest.raises(DataError, match="malformed JSON line 2"):
        load_local_split(tmp_path, "retain99")


def test_json_array_files_are_read(tmp_path):
    write(tmp_path, "holdout01", [], raw=json.dumps([{"question": "q", "answer": "a"}]))
    assert read_json_rows(tmp_path / "tofu" / "holdout01.json") == [{"question": "q", "answer": "a"}]


def test_unknown_split_and_missing_dir():
    with pytest.raises(ValueError, match="forget01, forget05, forget10"):
        synthetic_tofu("forget02")
    with pytest.raises(FileNotFoundError, match="/does/not/exist"):
        resolve_data_dir("/does/not/exist")


def test_synthetic_authors_schema_and_determinism():
    a, b = synthetic_tofu("forget10", 40, seed=3), synthetic_tofu("forget10", 40, seed=3)
    assert a == b and a != synthetic_tofu("forget10", 40, seed=4)
    assert len(a.forget) == 4 * QA_PER_AUTHOR and len(a.holdout) == len(a.forget)
    for row in a.forget:
        assert row.paraphrased_answer and row.paraphrased_question and row.paraphrased_question != row.question
        assert len(row.perturbed_answers) == 5 and len(set(row.perturbed_answers)) == 5
        assert row.answer not in row.perturbed_answers and row.paraphrased_answer not in row.perturbed_answers
    forget_q = {r.question for r in a.forget}
    assert not forget_q & {r.question for r in a.retain_train}
    assert not forget_q & {r.question for r in a.holdout}
    sizes = {s: len(synthetic_tofu(s, 40).forget) // QA_PER_AUTHOR for s in ("forget01", "forget05", "forget10")}
    assert sizes == {"forget01": 1, "forget05": 2, "forget10": 4}


@pytest.mark.real_data
def test_real_tofu_loads_with_published_sizes(real_data_dir):
    d = load_tofu("forget01", real_data_dir)
    assert (len(d.forget), len(d.retain_train), len(d.retain_eval), len(d.holdout)) == (40, 3960, 400, 40)
    assert (len(d.real_authors), len(d.world_facts)) == (100, 117)
    assert all(len(r.perturbed_answers) == 5 for r in d.forget) and all(len(r.perturbed_answers) == 3 for r in d.world_facts)
    assert d.forget[-1].answer and len(d.idk) == 100
    assert len(load_tofu("forget10", real_data_dir).forget) == 400
