"""`unlearn eval` end to end on the tiny model (an integration run: evals/, not the fast unit tier)."""

import pytest

from unlearn.cli import main


def test_eval_command_prints_metrics_and_writes_logs(capsys, tmp_path):
    """``unlearn eval`` on a model without unlearning: JSON with the protocol, precision and wall time;
    TOFU-format logs that ``tofu-aggregate`` reads back to the same numbers; open-unlearning's format too
    under its conventions."""
    import json

    common = ["eval", "--model", "tiny-qwen3", "--split", "forget01", "--max-rows", "3", "--protocol", "reduced",
              "--precision", "fp32", "--device", "cpu", "--json"]
    assert main([*common, "--logs", str(tmp_path / "tofu")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol_name"] == "reduced" and out["compat"] == "tofu" and out["precision"] == "fp32"
    assert out["wall_s"] > 0 and 0 <= out["metrics"]["forget_rouge"] <= 1
    assert main(["tofu-aggregate", str(tmp_path / "tofu"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["model_utility"] == pytest.approx(out["metrics"]["model_utility"], rel=1e-12)
    assert not (tmp_path / "tofu" / "TOFU_EVAL.json").exists()
    page = (tmp_path / "tofu" / "report.html").read_text()  # the evaluated model's page: metrics and its answers
    assert page.count('<details class="drill"') == 1 and "TOFU forget01 / evaluated model (3 rows" in page
    assert main([*common, "--compat", "open-unlearning", "--logs", str(tmp_path / "ou")]) == 0
    ou = json.loads((tmp_path / "ou" / "TOFU_EVAL.json").read_text())
    assert len(ou["forget_Q_A_Prob"]["value_by_index"]) == 3 and "mia_min_k" in ou
    assert json.loads(capsys.readouterr().out)["compat"] == "open-unlearning"
