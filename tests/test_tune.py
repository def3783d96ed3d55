"""`unlearn tune`: the declared selection rule, grids, resume, and `bench --tuned`."""

import json

import pytest

from unlearn.tune import NOT_TUNED, default_grids, choose, grid_settings, load_grids, run_tune, tuned_overrides


def trial(eff, ret, tokens, **settings):
    return {"settings": settings, "forget_efficacy": eff, "retain_performance": ret, "tokens": tokens}


def test_rule_takes_the_highest_efficacy_within_the_retain_bound():
    trials = [trial(1.0, 0.70, 10, a="1"), trial(0.8, 0.95, 10, a="2"), trial(0.9, 0.91, 30, a="3"), trial(0.95, 0.89, 5, a="4")]
    assert choose(trials)["settings"] == {"a": "3"}  # 1.0 and 0.95 break the retain bound
    assert choose(trials, retain_min=0.6)["settings"] == {"a": "1"}


def test_rule_breaks_ties_by_cost_then_retain_then_order():
    cheap, dear = trial(1.0, 0.92, 100, a="cheap"), trial(1.0, 0.99, 400, a="dear")
    assert choose([dear, cheap])["settings"] == {"a": "cheap"}
    # efficacy compared to 3 decimals: 0.99951 and 1.0 tie
    assert choose([trial(1.0, 0.92, 200, a="x"), trial(0.99951, 0.92, 100, a="y")])["settings"] == {"a": "y"}
    assert choose([trial(1.0, 0.92, 100, a="lo"), trial(1.0, 0.97, 100, a="hi")])["settings"] == {"a": "hi"}
    assert choose([trial(1.0, 0.92, 100, a="first"), trial(1.0, 0.92, 100, a="second")])["settings"] == {"a": "first"}


def test_no_setting_within_the_bound_keeps_the_defaults():
    assert choose([trial(1.0, 0.5, 1, a="1")]) is None


def test_grid_resolves_multiples_of_the_tier_lr_in_declared_order():
    settings = grid_settings({"lr": ["0.5x", "2x"], "beta": ["0.1", "0.5"]}, base_lr=1e-3)
    assert settings == [{"lr": "0.0005", "beta": "0.1"}, {"lr": "0.0005", "beta": "0.5"},
                        {"lr": "0.002", "beta": "0.1"}, {"lr": "0.002", "beta": "0.5"}]


def test_every_default_grid_names_real_fields_and_covers_every_tunable_method():
    from unlearn.methods import method_names

    assert set(default_grids()) == set(method_names()) - set(NOT_TUNED)
    for method, grid in default_grids().items():
        for s in grid_settings(grid, 1e-3):
            from unlearn.methods import make_config, schedule_overrides

            cfg, sched = make_config(method, {method: s}), schedule_overrides(method, {method: s})
            for k, v in s.items():  # each value lands in the config or the schedule, typed
                got = sched[k] if k in sched else getattr(cfg, k)
                assert float(got) == float(v), (method, k)


@pytest.mark.parametrize("text,needle", [("[1, 2]", "expected an object"), ('{"npo": {"gamma2": [1]}}', "gamma2"),
                                         ('{"npo": {"beta": []}}', "at least one value"), ("{", "not JSON"),
                                         ('{"nosuch": {"lr": [1]}}', "nosuch")])
def test_bad_grid_files_name_the_problem(tmp_path, text, needle):
    path = tmp_path / "grid.json"
    path.write_text(text)
    with pytest.raises((ValueError, KeyError)) as err:
        load_grids(str(path))
    msg = err.value.args[0]
    assert needle in msg and str(path) in msg


class FakeBench:
    """run_cell answers from a table (efficacy falls with beta, cost grows with epochs); counts its calls."""

    model, precision, splits = "fake", "fp32", ["forget01"]

    class profile:
        class protocol:
            name = "reduced"

        class unlearn:
            lr = 1e-3

    def __init__(self):
        self.calls = []

    def identity(self, split):
        return {"source": "synthetic", "split": split}

    def run_cell(self, method, split, overrides):
        s = overrides[method]
        self.calls.append(dict(s))
        eff = {"0.1": 1.0, "0.5": 0.7}[s["beta"]]
        ret = 0.95 if s["lr"] == "0.001" else 0.85
        return {"summary": {"forget_efficacy": eff, "retain_performance": ret}, "metrics": {"forget_quality": 0.5},
                "cost": {"tokens": 100 * float(s["epochs"]), "unlearn_s": 1.0}}


def test_run_tune_writes_every_trial_and_resumes_without_rerunning(tmp_path):
    grids = {"npo": {"lr": ["1x", "3x"], "epochs": ["2", "5"], "beta": ["0.1", "0.5"]}}
    out = tmp_path / "tuning.json"
    bench = FakeBench()
    result = run_tune(bench, ["npo"], "forget01", grids, 0.9, out, log=lambda *_: None)
    assert len(bench.calls) == 8
    # lr 3x breaks the retain bound; efficacy 1.0 at beta 0.1; the cheaper of epochs 2 and 5 wins
    assert result["methods"]["npo"]["chosen"] == {"lr": "0.001", "epochs": "2", "beta": "0.1"}
    assert tuned_overrides(out) == {"npo": {"lr": "0.001", "epochs": "2", "beta": "0.1"}}
    again = FakeBench()
    run_tune(again, None, "forget01", grids, 0.9, out, log=lambda *_: None)  # methods: the grid file's
    assert again.calls == []  # every trial was on file with the same identity
    doc = json.loads(out.read_text())
    assert len(doc["methods"]["npo"]["trials"]) == 8 and "retain performance >= 0.9" in doc["rule"]
    chosen = json.loads((tmp_path / "tuning.chosen.json").read_text())  # what a tier commits: no trials
    assert "trials" not in json.dumps(chosen) and chosen["identity"] == doc["identity"]
    assert tuned_overrides(tmp_path / "tuning.chosen.json") == tuned_overrides(out)


def test_committed_tier_files_hold_the_choices_of_their_trial_logs():
    """unlearn/data/tuned/<tier>.json (read by the tier) holds chosen settings only; the trials behind them are
    perf/tuning/<tier>.json, and both give the same settings."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    tiers = sorted((root / "unlearn" / "data" / "tuned").glob("*.json"))
    assert tiers
    for f in tiers:
        assert "trials" not in f.read_text()
        assert tuned_overrides(f) == tuned_overrides(root / "perf" / "tuning" / f.name)


@pytest.mark.parametrize("name", ["tiny-qwen3", "smollm2-135m-reduced"])
def test_committed_tuned_files_chose_on_a_forget_set_no_evaluated_split_holds(name):
    from pathlib import Path

    from unlearn.benchmarks.tofu.benchmark import TofuBenchmark

    ident = json.loads((Path(__file__).resolve().parent.parent / "unlearn" / "data" / "tuned" / f"{name}.json").read_text())["identity"]
    assert ident["split"] not in TofuBenchmark.splits
    assert ident["evaluated_forget_overlap"] == {s: 0 for s in TofuBenchmark.splits}


def test_tune_defaults_to_the_tune_split_and_records_its_overlap_with_evaluated_forget_sets(tmp_path):
    from types import SimpleNamespace

    from unlearn.tune import tune_set

    class Row(SimpleNamespace):
        pass

    class Bench(FakeBench):
        tune_split = "tune"

        def data(self, split):
            return SimpleNamespace(forget=[Row(question=f"q-{split}", answer="a"), Row(question="shared", answer="a")]
                                   if split == "forget01" else [Row(question="q-tune", answer="a")])

    grids = {"npo": {"lr": ["1x"], "epochs": ["2"], "beta": ["0.1"]}}
    result = run_tune(Bench(), ["npo"], None, grids, 0.9, tmp_path / "t.json", log=lambda *_: None)
    assert result["identity"]["split"] == "tune"
    assert result["identity"]["evaluated_forget_overlap"] == {"forget01": 0}
    assert tune_set(Bench(), "forget01")["evaluated_forget_overlap"] == {"forget01": 2}  # in sample: every row


def test_bench_applies_tuned_settings_under_explicit_overrides(tmp_path):
    from unlearn.bench import BenchArgs, resolve

    path = tmp_path / "tuning.json"
    path.write_text(json.dumps({"methods": {"npo": {"chosen": {"beta": "0.5", "lr": "0.002"}},
                                            "iwap": {"chosen": None}}}))
    args = resolve(BenchArgs(methods=["npo", "iwap"], tuned=str(path), overrides={"npo": {"beta": "0.3"}}))
    assert args.overrides == {"npo": {"beta": "0.3", "lr": "0.002"}}


def test_tune_help_documents_the_rule(capsys):
    from unlearn.cli import main

    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "highest forget efficacy" in text and "retain performance" in text and "--tuned" in text


def test_tune_command_defaults_to_the_tune_split_and_warns_on_an_evaluated_one(monkeypatch, capsys, tmp_path):
    import unlearn.tune
    from unlearn.cli import main

    seen = []

    def fake_run_tune(bench, methods, split, grids, retain_min, out):
        seen.append(split)
        return {"rule": "r", "methods": {}}

    monkeypatch.setattr(unlearn.tune, "run_tune", fake_run_tune)
    out = str(tmp_path / "t.json")
    assert main(["tune", "--quiet", "--out", out]) == 0
    assert seen == ["tune"] and "warning" not in capsys.readouterr().err
    assert main(["tune", "--quiet", "--split", "forget01", "--out", out]) == 0
    assert seen[-1] == "forget01" and "in sample" in capsys.readouterr().err
    assert main(["tune", "--quiet", "--split", "forget02", "--out", out]) == 2
    assert "forget02" in capsys.readouterr().err
