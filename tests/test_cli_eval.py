from __future__ import annotations

import json

import pytest

from l3prune.cli import main


@pytest.fixture
def saved(make_encoder, tmp_path):
    path = tmp_path / "tiny"
    make_encoder(num_layers=2).save(path)
    return path


@pytest.fixture
def sts_file(tmp_path):
    rows = [{"sentence1": f"a cat sat on mat {i}", "sentence2": f"a cat sat {i}", "score": i % 5} for i in range(12)]
    path = tmp_path / "my_sts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--help"])
    assert exit_.value.code == 0 and "--quick" in capsys.readouterr().out


def test_eval_a_folder_on_a_dataset_path_writes_json(saved, sts_file, tmp_path, capsys):
    out = tmp_path / "res.json"
    assert main(["eval", str(saved), "--tasks", f"sts:{sts_file}", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert list(results["tasks"]) == ["my_sts"] and "| my_sts |" in printed
    assert results["info"]["layers"] == 2
    assert main(["eval", str(saved), "--tasks", str(sts_file), "--out", str(out), "--device", "cpu"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_eval_quick_on_one_task(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("L3PRUNE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "quick.json"
    assert main(["eval", str(saved), "--quick", "--tasks", "STS13", "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads(out.read_text())
    assert list(results["tasks"]) == ["STS13"] and results["tasks"]["STS13"]["num_texts"] == 300
    assert results["info"]["quick_suite"]["sts_pairs"] == 150


@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", ","], "no tasks selected"),
    (["--tasks", "nope"], "unknown task 'nope'"),
    (["--quick", "--tasks", "dev"], "--quick covers"),
])
def test_eval_bad_task_lists_are_one_line(saved, args, message, capsys):
    assert main(["eval", str(saved), *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
