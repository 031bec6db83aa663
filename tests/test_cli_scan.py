"""``l3prune scan`` and the criteria through ``l3prune prune``: one real run each, and every bad input as one line."""

from __future__ import annotations

import json

import pytest

from l3prune.cli import main


SENTENCES = [f"sentence number {i} about a topic" for i in range(8)]


@pytest.fixture
def saved(make_encoder, tmp_path):
    path = tmp_path / "tiny"
    make_encoder("llama", num_layers=4).save(path)
    return path


def write_triplets(path, n: int, *, drop: str | None = None):
    rows = [{"query": SENTENCES[i % 8], "positive": SENTENCES[(i + 1) % 8], "negative": SENTENCES[(i + 4) % 8]} for i in range(n)]
    if drop:
        del rows[-1][drop]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_scan_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--help"])
    assert exit_.value.code == 0 and "--num-batches" in capsys.readouterr().out


def test_scan_writes_the_profile(saved, tmp_path, capsys):
    data = write_triplets(tmp_path / "t.jsonl", 8)
    out = tmp_path / "res" / "scan_tiny"
    assert main(["scan", str(saved), "--data", str(data), "--num-batches", "2", "--batch-size", "4",
                 "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "small = " in printed and "large = " in printed
    profile = json.loads(out.with_suffix(".json").read_text())
    assert profile["num_layers"] == 4 and profile["settings"]["num_batches"] == 2
    assert 1 <= profile["small"] <= 2 and 3 <= profile["large"] <= 4
    assert out.with_suffix(".csv").is_file() and out.with_suffix(".png").is_file()


def test_scan_out_naming_the_json_file_writes_beside_it_not_a_double_suffix(saved, tmp_path):
    data = write_triplets(tmp_path / "t.jsonl", 8)
    assert main(["scan", str(saved), "--data", str(data), "--num-batches", "1", "--batch-size", "4",
                 "--out", str(tmp_path / "prof.json"), "--device", "cpu"]) == 0
    assert sorted(p.name for p in tmp_path.glob("prof*")) == ["prof.csv", "prof.json", "prof.png"]


def test_scan_with_fewer_triplets_than_a_batch(saved, tmp_path, capsys):
    data = write_triplets(tmp_path / "t.jsonl", 5)
    err = run_error(["scan", str(saved), "--data", str(data), "--batch-size", "8", "--out", str(tmp_path / "x")], capsys)
    assert "5 triplets are fewer than one batch of 8" in err


def test_scan_names_file_and_line_of_a_missing_field(saved, tmp_path, capsys):
    data = write_triplets(tmp_path / "t.jsonl", 6, drop="negative")
    err = run_error(["scan", str(saved), "--data", str(data), "--batch-size", "2"], capsys)
    assert f"{data}:6" in err and "'negative'" in err


def test_prune_with_a_criterion_records_layers_and_reason(saved, tmp_path, capsys):
    data = write_triplets(tmp_path / "t.jsonl", 8)
    out = tmp_path / "pruned"
    assert main(["prune", str(saved), "--criterion", "block_influence", "--num-layers", "2", "--data", str(data),
                 "--out", str(out), "--device", "cpu"]) == 0
    settings = json.loads((out / "l3prune.json").read_text())
    assert len(settings["kept_layers"]) == 2 and settings["pruning"]["criterion"] == "block_influence"
    assert "block influence" in settings["pruning"]["reason"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--num-layers", "9"], "num_layers must be an integer in 1..4"),
        (["--criterion", "angular", "--config", "small"], "criterion 'angular' has no configuration 'small'"),
        (["--criterion", "last", "--config", "large"], "has no configuration 'large'"),
        (["--criterion", "nope", "--num-layers", "2"], "unknown criterion 'nope'; choose from ["),
    ],
)
def test_prune_bad_input_is_one_line(saved, tmp_path, capsys, extra, message):
    err = run_error(["prune", str(saved), "--out", str(tmp_path / "o"), "--device", "cpu", *extra], capsys)
    assert message in err
    if "unknown" in message:
        assert all(name in err for name in ("angular", "block_influence", "l3prune", "perplexity", "taylor"))
