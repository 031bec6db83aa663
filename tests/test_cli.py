from __future__ import annotations

import json

import numpy as np
import pytest

from l3prune.cli import build_parser, main

COMMANDS = [a.dest for a in build_parser()._subparsers._group_actions[0]._choices_actions]


@pytest.fixture
def saved(make_encoder, tmp_path):
    path = tmp_path / "tiny"
    make_encoder(num_layers=4).save(path)
    return path


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "encode", "prune"):
        assert command in out


@pytest.mark.parametrize("command", ["info", "encode", "prune"])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "MODEL" in capsys.readouterr().out.upper()


def test_info_prints_the_pruning_as_words_and_every_option_has_help(saved, tmp_path, capsys):
    assert main(["prune", str(saved), "--num-layers", "2", "--out", str(tmp_path / "p"), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "p"), "--device", "cpu"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.strip().startswith("pruning:"))
    assert line.split(":", 1)[1].strip() == "last: first 2 of 4 layers"
    for command in COMMANDS:
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        silent = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
        assert not silent, (command, silent)


def test_prune_config_implies_the_l3prune_criterion():
    from l3prune.cli import prune_spec

    args = build_parser().parse_args(["prune", "m", "--config", "small", "--out", "o"])
    assert prune_spec(args).criterion_name == "l3prune"
    args = build_parser().parse_args(["prune", "m", "--num-layers", "2", "--out", "o"])
    assert prune_spec(args).criterion_name == "last"


def test_info_describes_a_sentence_transformers_model(capsys):
    assert main(["info", "minilm", "--device", "cpu", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "sentence-transformers" and info["embedding_dimension"] == 384


def test_info_reports_layers_and_parameters(saved, capsys):
    assert main(["info", str(saved), "--json", "--device", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"] == 4 and info["hidden_size"] == 64 and info["pooling"] == "weighted_mean"


def test_encode_txt_and_jsonl(saved, tmp_path):
    (tmp_path / "in.txt").write_text("first text\nsecond, longer text here\n")
    assert main(["encode", str(saved), "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "a.npy"),
                 "--normalize", "--device", "cpu"]) == 0
    emb = np.load(tmp_path / "a.npy")
    assert emb.shape == (2, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    (tmp_path / "in.jsonl").write_text('{"text": "first text"}\n{"text": "x", "instruction": "Retrieve"}\n')
    assert main(["encode", str(saved), "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "b.npy"),
                 "--device", "cpu"]) == 0
    assert np.load(tmp_path / "b.npy").shape == (2, 64)


def test_encode_streams_in_chunks_with_the_same_result(make_encoder, tmp_path):
    from l3prune.encode_file import encode_file

    enc = make_encoder()
    lines = [f"text number {i} " + "word " * (i % 7) for i in range(23)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    encode_file(enc, tmp_path / "in.txt", tmp_path / "c.npy", chunk_size=5)
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), enc.encode(lines), atol=1e-5)


@pytest.mark.parametrize(
    "content, message",
    [("", "is empty"), ("ok\n\nok\n", ":2: empty text"), ('{"txt": 1}\n', ":1: missing field 'text'")],
)
def test_encode_bad_input_is_one_line_and_writes_nothing(saved, tmp_path, capsys, content, message):
    suffix = ".jsonl" if content.startswith("{") else ".txt"
    (tmp_path / f"in{suffix}").write_text(content)
    out = tmp_path / "out.npy"
    assert main(["encode", str(saved), "--input", str(tmp_path / f"in{suffix}"), "--output", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out.npy*"))


def test_encode_refuses_existing_output(saved, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("a\n")
    (tmp_path / "out.npy").write_bytes(b"keep")
    assert main(["encode", str(saved), "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.npy"),
                 "--device", "cpu"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "out.npy").read_bytes() == b"keep"


def test_prune_writes_a_smaller_model_that_loads_back(saved, tmp_path, capsys):
    assert main(["prune", str(saved), "--drop-fraction", "0.5", "--out", str(tmp_path / "p"), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "p"), "--json", "--device", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"] == 2 and info["kept_layers"] == [0, 1] and info["pruning"]["criterion"] == "last"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--drop-fraction", "1.5"], "[0, 1)"),
        (["--num-layers", "9"], "1..4"),
        (["--num-layers", "0"], "1..4"),
        (["--layers", "0,7"], "0..3"),
        (["--num-layers", "2", "--criterion", "nope"], "unknown criterion 'nope'"),
        (["--config", "large", "--criterion", "last"], "has no configuration"),
        ([], "say how much to keep"),
    ],
)
def test_prune_bad_input(saved, tmp_path, capsys, args, message):
    out = tmp_path / "p"
    assert main(["prune", str(saved), *args, "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_prune_refuses_existing_out(saved, tmp_path, capsys):
    (tmp_path / "p").mkdir()
    assert main(["prune", str(saved), "--num-layers", "2", "--out", str(tmp_path / "p"), "--device", "cpu"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_unknown_model_is_one_line(capsys):
    assert main(["info", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 'no-such-model' not found") and len(err.strip().splitlines()) == 1


def test_console_script_has_no_traceback_on_bad_input(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "l3prune.cli", "info", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "not found" in proc.stderr


def test_every_command_offers_the_same_load_options():
    from l3prune.settings import DTYPE_NAMES

    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        flags = {a.dest: a for a in sub._actions}
        if "model" not in flags:
            continue
        assert {"pooling", "max_length", "dtype", "device"} <= set(flags), name
        assert tuple(flags["dtype"].choices) == DTYPE_NAMES, name


def test_python_dash_m_runs_the_same_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "l3prune", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: l3prune")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["info", "m", "--dtype", "fp64"]])
def test_help_and_usage_errors_do_not_import_torch(argv):
    """--help and a mistyped flag answer in a fraction of a second: torch and transformers (seconds to import)
    load only when a command runs."""
    import subprocess
    import sys

    probe = ("import sys\nfrom l3prune.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "[]", (out.stdout[-500:], out.stderr[-500:])
