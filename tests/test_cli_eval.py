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


def test_eval_keeps_progress_beside_out_and_resumes_only_when_asked(saved, sts_file, tmp_path, capsys):
    out, progress = tmp_path / "res.json", tmp_path / "res.partial.json"
    run = ["eval", str(saved), "--tasks", f"sts:{sts_file}", "--out", str(out), "--device", "cpu"]
    stopped = {"model_id": str(saved), "batch_size": 32, "started_at": "2026-01-01T00:00:00+00:00",
               "info": {}, "tasks": {}, "total_seconds": 1.0}
    progress.write_text(json.dumps(stopped))  # what a run stopped before its first task left
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "res.partial.json holds the progress of a stopped evaluation; pass --resume" in err
    assert "Traceback" not in err and not out.exists()
    assert main([*run, "--resume"]) == 2  # its info does not match this model's: refused, not mixed in
    assert "cannot resume from" in capsys.readouterr().err and not out.exists()
    progress.unlink()
    assert main([*run, "--resume"]) == 0  # nothing to resume: runs from the start
    assert json.loads(out.read_text())["tasks"].keys() == {"my_sts"} and not progress.exists()


def test_eval_resume_needs_out(saved, sts_file, capsys):
    assert main(["eval", str(saved), "--tasks", str(sts_file), "--resume", "--device", "cpu"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
