"""TOFU loaders (validation errors name file, row and field) and the synthetic author generator."""

import dataclasses
import json

import pytest

from unlearn.data import DataError, resolve_data_dir
from unlearn.benchmarks.tofu.data import (QA_PER_AUTHOR, load_local_split, load_tofu, read_json_rows, synthetic_tofu)


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


# ---------------------------------------------------------------- the embedded copy and where data comes from
def test_embedded_tofu_has_the_published_sizes():
    d = load_tofu("forget01")  # no folder: the copy inside the package
    assert d.source.startswith("embedded copy of locuslab/TOFU")
    assert (len(d.forget), len(d.retain_train), len(d.retain_eval), len(d.holdout)) == (40, 3960, 400, 40)
    assert (len(d.real_authors), len(d.world_facts), len(d.idk)) == (100, 117, 100)
    assert all(len(r.perturbed_answers) == 5 and r.paraphrased_answer for r in d.forget)
    d10 = load_tofu("forget10", "embedded")
    assert (len(d10.forget), len(d10.retain_train), len(d10.holdout)) == (400, 3600, 400)
    # forgetNN is the last authors of full: forget01's rows close forget10, and nothing is in both splits
    assert d10.forget[-40:] == d.forget
    assert not {r.question for r in d10.forget} & {r.question for r in d10.retain_train}


def test_embedded_tofu_equals_the_data_folder_copy(real_data_dir):
    for split in ("forget01", "forget05", "forget10"):
        assert load_tofu(split) == dataclasses.replace(load_tofu(split, real_data_dir), source=load_tofu(split).source)


def _copy_embedded(tmp_path, monkeypatch, mutate):
    """A copy of the embedded archive with ``mutate(name, data) -> data`` applied, swapped in for the test."""
    import io
    import tarfile

    from unlearn.benchmarks.tofu import data as tofu

    src = tofu.EMBEDDED_ARCHIVE
    out = tmp_path / "tofu.tar.xz"
    with tarfile.open(src, "r:xz") as tin, tarfile.open(out, "w:xz") as tout:
        for m in tin.getmembers():
            data = mutate(m.name, tin.extractfile(m).read())
            if data is None:
                continue
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(tofu, "EMBEDDED_ARCHIVE", out)
    monkeypatch.setattr(tofu, "_EMBEDDED_CACHE", {})
    return tofu


def test_damaged_embedded_copy_is_refused_naming_the_file(tmp_path, monkeypatch):
    tofu = _copy_embedded(tmp_path, monkeypatch, lambda n, d: d.replace(b"Jaime", b"Jamie") if n == "retain90.json" else d)
    with pytest.raises(DataError, match=r"tofu.tar.xz:retain90.json: sha256 .* does not match the manifest"):
        tofu.load_tofu("forget10")


def test_embedded_copy_missing_a_file_is_refused(tmp_path, monkeypatch):
    tofu = _copy_embedded(tmp_path, monkeypatch, lambda n, d: None if n == "holdout05.json" else d)
    with pytest.raises(DataError, match="'holdout05.json' listed in tofu.sha256 is missing"):
        tofu.load_tofu("forget05")


def test_data_resolution_order(tmp_path, monkeypatch):
    from unlearn.benchmarks.tofu.data import EMBEDDED, find_tofu_source

    explicit, env, other = tmp_path / "explicit", tmp_path / "env", tmp_path / "muse-only"
    for folder in (explicit / "tofu", env, other):
        folder.mkdir(parents=True)
    (explicit / "tofu" / "forget01_perturbed.json").write_text("{}")
    (env / "forget01_perturbed.json").write_text("{}")  # a folder that is tofu/ itself
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(env))
    assert find_tofu_source(explicit)[0] == explicit  # --data-dir first
    assert find_tofu_source(None)[0] == env  # then UNLEARN_DATA_DIR
    place, tried = find_tofu_source(other)  # a folder without TOFU is passed over, and said so
    assert place == env and str(other) in tried[0]
    monkeypatch.delenv("UNLEARN_DATA_DIR")
    assert find_tofu_source(None) == (EMBEDDED, ["--data-dir: not set", "UNLEARN_DATA_DIR: not set"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_tofu_source(tmp_path / "nope")


def test_no_tofu_anywhere_names_every_place_tried(tmp_path, monkeypatch):
    from unlearn.benchmarks.tofu import data as tofu

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    monkeypatch.setattr(tofu, "EMBEDDED_ARCHIVE", tmp_path / "gone.tar.xz")

    def offline(name, **kw):
        raise tofu.HubUnavailable("could not load locuslab/TOFU/forget01 from the Hugging Face hub: offline")

    monkeypatch.setattr(tofu, "load_hub_split", offline)
    with pytest.raises(FileNotFoundError) as err:
        tofu.find_tofu_source(tmp_path)
    msg = str(err.value)
    for place in (f"--data-dir={tmp_path}", "UNLEARN_DATA_DIR: not set", "gone.tar.xz is missing", "hub: could not load",
                  "Supply it with --data-dir"):
        assert place in msg


def test_idk_found_in_the_folder_or_its_tofu_subfolder(tmp_path):
    from unlearn.benchmarks.tofu.data import load_idk

    (tmp_path / "tofu").mkdir()
    (tmp_path / "tofu" / "idontknow.jsonl").write_text("Nope.\nNo idea.\n")
    assert load_idk(tmp_path) == ["Nope.", "No idea."]  # the parent of tofu/
    assert load_idk(tmp_path / "tofu") == ["Nope.", "No idea."]  # tofu/ itself
    assert len(load_idk(None)) == 100  # the embedded copy's, not a built-in list


def test_synthetic_full_is_one_list_for_every_split():
    """Target = model trained on full; the same rows in the same order for forget01/05/10 (as in real TOFU),
    so the tiny tier trains one target for the three splits."""
    fulls = [synthetic_tofu(s, 40).full for s in ("forget01", "forget05", "forget10")]
    assert fulls[0] == fulls[1] == fulls[2]


def test_benchmark_says_which_folder_it_passed_over(tmp_path, monkeypatch):
    from unlearn.benchmarks import TofuBenchmark
    from unlearn.benchmarks.tofu.data import EMBEDDED

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    bench = TofuBenchmark("smollm2-135m", data_dir=tmp_path, dry_run=True, device="cpu", progress=False)
    assert bench.data_place == EMBEDDED and bench.data("forget01").source.startswith("embedded copy")
    assert any(f"--data-dir={tmp_path}" in n for n in bench.notes)
    quiet = TofuBenchmark("smollm2-135m", dry_run=True, device="cpu", progress=False)
    assert not any("passed over" in n for n in quiet.notes)  # nothing given, nothing to report
    assert TofuBenchmark("tiny-qwen3", device="cpu").data("forget01").source.startswith("synthetic")


def _rows(rows):
    return {(r.question, r.answer) for r in rows}


@pytest.mark.parametrize("n_authors", [40, 20])  # the tiny tier's and the reduced tier's synthetic sizes
def test_synthetic_tune_split_is_out_of_sample(n_authors):
    """`unlearn tune` forgets authors that no evaluated split forgets, scores or holds out; its gold is the
    evaluated splits' whole training list, its target that list plus the tune authors."""
    from unlearn.benchmarks.tofu.data import TUNE_SPLIT, synthetic_author_names

    tune = synthetic_tofu(TUNE_SPLIT, n_authors)
    assert len(tune.forget) == len(synthetic_tofu("forget01", n_authors).forget)  # forget01's size
    # every author an evaluated split trains or holds out (forget10's holdout is the largest)
    names = synthetic_author_names(n_authors + len(synthetic_tofu("forget10", n_authors).holdout) // QA_PER_AUTHOR, 0)
    for split in ("forget01", "forget05", "forget10"):
        d = synthetic_tofu(split, n_authors)
        assert not _rows(tune.forget) & _rows(d.forget), split
        assert not _rows(tune.forget) & _rows(d.retain_train), split  # the evaluated targets never saw it
        assert not _rows(tune.retain_eval) & _rows(d.retain_eval), split
        assert _rows(tune.retain_eval) <= _rows(d.retain_train), split  # retain authors of every split
        assert tune.retain_train == d.full
    evaluated_holdout = {r.question for s in ("forget01", "forget05", "forget10") for r in synthetic_tofu(s, n_authors).holdout}
    assert not {r.question for r in tune.holdout} & evaluated_holdout - {r.question for r in tune.forget}
    assert any(n in r.question for r in tune.forget for n in synthetic_author_names(len(names) + 1, 0)[-1:])
    assert not any(n in r.question for n in names for r in tune.forget)  # tune authors come after every evaluated name


def test_real_tune_split_forgets_a_retain_author(real_data_dir):
    """Real TOFU: the last retain_perturbed author, in no evaluated forget set and not in the tune split's own
    retain eval; the tune gold trains on every other author."""
    from unlearn.benchmarks.tofu.data import QA_PER_AUTHOR, TUNE_SPLIT

    for place in (real_data_dir, "embedded"):
        tune = load_tofu(TUNE_SPLIT, place)
        assert len(tune.forget) == QA_PER_AUTHOR and all(r.perturbed_answers and r.paraphrased_answer for r in tune.forget)
        assert not _rows(tune.forget) & _rows(tune.retain_eval) and not _rows(tune.forget) & _rows(tune.retain_train)
        for split in ("forget01", "forget05", "forget10"):
            d = load_tofu(split, place)
            assert not _rows(tune.forget) & _rows(d.forget), split
            assert _rows(tune.full) == _rows(d.full), split  # the same 200 authors


def test_tune_split_is_no_evaluated_split():
    from unlearn.benchmarks.tofu.benchmark import TofuBenchmark

    assert TofuBenchmark.tune_split not in TofuBenchmark.splits
