"""The command line: version, listings and clear errors."""

import pytest

from unlearn import __version__
from unlearn.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-qwen3" in out and "smollm2-135m" in out and "Qwen/Qwen3-4B" in out


def test_methods_lists_all_with_descriptions(capsys):
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and all(len(line.split(None, 1)) == 2 for line in lines)


def test_tofu_aggregate_missing_folder(capsys, tmp_path):
    assert main(["tofu-aggregate", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["tofu-aggregate", str(tmp_path)]) == 2
    assert "eval_log_forget.json" in capsys.readouterr().err
