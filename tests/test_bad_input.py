"""Bad input on every subcommand: exit 2, one ``error:`` line, no traceback, and the working folder unchanged.

Each case builds its inputs in a fresh working folder (the current directory while it runs), runs the
CLI in-process, and compares a snapshot of that folder (every path, its bytes) from before and after,
so a case that loses or half-writes anything fails, including the ``--overwrite`` data-loss cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from l3prune.cli import main
from l3prune.testing import tiny_encoder

NON_UTF8 = b"caf\xe9 au lait\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny saved models, built once: an l3prune folder and variants broken in one way each."""
    root = tmp_path_factory.mktemp("models")
    tiny = root / "tiny"
    tiny_encoder(num_layers=4).save(tiny)
    truncated = root / "truncated"
    shutil.copytree(tiny, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    broken = root / "broken_config"
    shutil.copytree(tiny, broken)
    (broken / "config.json").write_text('{"model_type": "llama", ')
    latin1 = root / "latin1_config"
    shutil.copytree(tiny, latin1)
    (latin1 / "config.json").write_bytes(b'{"model_type": "ll\xe9ma"}')
    pickled = root / "pickle_only"
    pickled.mkdir()
    shutil.copy(tiny / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not even a pickle")
    no_layer_count = root / "no_layer_count"  # transformers then assumes its default of 32 layers
    shutil.copytree(tiny, no_layer_count)
    config = json.loads((tiny / "config.json").read_text())
    (no_layer_count / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "num_hidden_layers"}))
    more_layers = root / "more_layers"
    shutil.copytree(tiny, more_layers)
    (more_layers / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 6}))
    for name, changed in (("no_hidden_size", {k: v for k, v in config.items() if k != "hidden_size"}),
                          ("five_heads", {**config, "num_attention_heads": 5})):
        shutil.copytree(tiny, root / name)
        (root / name / "config.json").write_text(json.dumps(changed))
    nan_eps = root / "nan_eps"
    shutil.copytree(tiny, nan_eps)
    (nan_eps / "config.json").write_text(json.dumps({**config, "rms_norm_eps": float("nan")}))
    nan_weights = root / "nan_weights"
    broken_encoder = tiny_encoder(num_layers=4)
    with torch.no_grad():
        broken_encoder.model.norm.weight[0] = float("nan")
    broken_encoder.save(nan_weights)
    for name, change in (("template_bomb", {"instruction_template": "{instruction}{instruction:>2000000000}"}),
                         ("bad_kept_layers", {"kept_layers": ["0", 1]})):
        folder = root / name
        shutil.copytree(tiny, folder)
        settings = json.loads((tiny / "l3prune.json").read_text())
        (folder / "l3prune.json").write_text(json.dumps({**settings, **change}))
    st = root / "st_custom"
    st.mkdir()
    (st / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil.Module"}]))
    (root / "empty.gguf").write_bytes(b"")
    (root / "garbage.gguf").write_bytes(os.urandom(2048))
    (root / "truncated.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    return {p.name: p for p in root.iterdir()}


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with a digest of its bytes ("dir" for folders)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink() and not path.exists():
            out[key] = "link:" + os.readlink(path)
        else:
            out[key] = "dir" if path.is_dir() else hashlib.sha1(path.read_bytes()).hexdigest()
    return out


def sts_rows(n: int = 6) -> list[dict]:
    return [{"sentence1": f"a cat sat on the mat {i}", "sentence2": f"a cat sat {i}", "score": i % 3} for i in range(n)]


def triplet_rows(n: int = 8, source: str = "toy") -> list[dict]:
    return [{"query": f"question {i}", "positive": f"answer {i}", "negative": f"other {i}", "source": source}
            for i in range(n)]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@dataclass
class Case:
    name: str
    args: Callable[[dict[str, Path]], list[str]]  # models -> argv; paths relative to the working folder
    message: str  # a part of the error line
    files: dict[str, str | bytes] | None = None  # written into the working folder first
    cwd: str = "."  # sub-folder to run from
    env: dict[str, str] | None = None
    absent: str | None = None  # must not appear in the error line
    command: str = ""
    links: dict[str, str] | None = None  # symbolic links made in the working folder: name -> target


def m(name: str) -> Callable[[dict[str, Path]], str]:
    return lambda models: str(models[name])


def case(name, argv, message, **kw) -> Case:
    """``argv`` items that are callables get the models dict (for model paths)."""
    return Case(name, lambda models: [a(models) if callable(a) else a for a in argv], message, command=argv[0], **kw)


def retrieval(*, corpus: str = '{"_id": "d1", "text": "doc"}\n', queries: str = '{"_id": "q1", "text": "q"}\n',
              qrels: str | None = None, doc: str = "d1") -> dict[str, str]:
    """A BEIR-layout retrieval folder ``r/`` with one part replaced."""
    qrels = qrels or f"query-id\tcorpus-id\tscore\nq1\t{doc}\t1\n"
    return {"r/corpus.jsonl": corpus, "r/queries.jsonl": queries, "r/qrels/test.tsv": qrels}


# Each level doubles the one before: printed in full, lora_targets would take gigabytes.
YAML_BOMB = "a1: &a1 [x, x]\na2: &a2 [*a1, *a1]\nlora_targets: [*a2, *a2, *a2, *a2]\n"

USER_ST = {"st/modules.json": "[]", "st/config.json": "{}", "st/model.safetensors": b"weights"}


def ours(folder: str) -> dict[str, str]:
    """A folder as l3prune writes it (its manifest lists its files), plus a file the user added."""
    manifest = json.dumps({"written_by": "l3prune", "files": ["config.json", "l3prune.json"]})
    return {f"{folder}/config.json": "{}", f"{folder}/l3prune.json": "{}",
            f"{folder}/.l3prune-manifest.json": manifest, f"{folder}/my_notes.txt": "mine"}


TINY = m("tiny")
CPU = ["--device", "cpu"]
STS_OK = jsonl(sts_rows())

CASES = [
    # ------------------------------------------------------------------ info: models and environment
    case("info-unknown-model", ["info", "no-such-model"], "not found"),
    case("info-folder-without-config", ["info", "plain"], "has no config.json", files={"plain/notes.txt": "x"}),
    case("info-broken-config", ["info", m("broken_config")], "could not read the config"),
    case("info-non-utf8-config", ["info", m("latin1_config")], "could not read the config"),
    case("info-pickle-only", ["info", m("pickle_only")], "safetensors only"),
    case("info-truncated-safetensors", ["info", m("truncated"), *CPU], "could not load the weights"),
    case("info-empty-gguf", ["info", m("empty.gguf")], "could not read GGUF file"),
    case("info-garbage-gguf", ["info", m("garbage.gguf")], "could not read GGUF file"),
    case("info-truncated-gguf", ["info", m("truncated.gguf")], "could not read GGUF file"),
    case("info-cache-is-a-file", ["info", m("garbage.gguf")], "point L3PRUNE_CACHE at a folder",
         files={"cachefile": "x"}, env={"L3PRUNE_CACHE": "cachefile"}),
    case("info-device-gpu", ["info", TINY, "--device", "gpu"], "unknown device 'gpu'"),
    case("info-device-cuda-index", ["info", TINY, "--device", "cuda:99"], "cuda"),
    case("info-argparse-int", ["info", TINY, "--num-layers", "x"], "invalid int value"),
    case("info-argparse-unknown-flag", ["info", TINY, "--bogus"], "unrecognized arguments"),
    case("info-too-many-layers", ["info", TINY, "--num-layers", "9", *CPU], "1..4"),
    # ------------------------------------------------------------------ encode: input, output, types
    case("encode-non-utf8", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", *CPU], "in.txt:1: not UTF-8",
         files={"in.txt": NON_UTF8}),
    case("encode-dev-null", ["encode", TINY, "--input", os.devnull, "--output", "o.npy", *CPU], "not a regular file"),
    case("encode-input-folder", ["encode", TINY, "--input", "d", "--output", "o.npy", *CPU], "is a folder",
         files={"d/x.txt": "a\n"}),
    case("encode-input-missing", ["encode", TINY, "--input", "nope.txt", "--output", "o.npy", *CPU], "does not exist"),
    case("encode-null-text", ["encode", TINY, "--input", "in.jsonl", "--output", "o.npy", *CPU],
         "in.jsonl:2: field 'text' must be a string, got null", files={"in.jsonl": '{"text": "a"}\n{"text": null}\n'}),
    case("encode-numeric-instruction", ["encode", TINY, "--input", "in.jsonl", "--output", "o.npy", *CPU],
         "in.jsonl:1: field 'instruction' must be a string, got int",
         files={"in.jsonl": '{"text": "a", "instruction": 7}\n'}),
    case("encode-bad-json", ["encode", TINY, "--input", "in.jsonl", "--output", "o.npy", *CPU], "in.jsonl:1: invalid JSON",
         files={"in.jsonl": "{oops\n"}),
    case("encode-empty-line", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", *CPU], "in.txt:2: empty text",
         files={"in.txt": "a\n\r\nb\n"}),
    case("encode-output-exists", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", *CPU],
         "already exists; choose another path or pass --overwrite", files={"in.txt": "a\n", "o.npy": b"keep"}),
    case("encode-overwrite-foreign-file", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", "--overwrite", *CPU],
         "refusing to replace", files={"in.txt": "a\n", "o.npy": b"my own data, not numpy"}),
    case("encode-output-is-folder", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", "--overwrite", *CPU],
         "is a folder, but the output is a file", files={"in.txt": "a\n", "o.npy/keep.txt": "x"}),
    case("encode-output-parent-is-file", ["encode", TINY, "--input", "in.txt", "--output", "f/o.npy", *CPU],
         "is a file, not a folder", files={"in.txt": "a\n", "f": "x"}),
    case("encode-output-dev-null", ["encode", TINY, "--input", "in.txt", "--output", os.devnull, *CPU], "must end in .npy",
         files={"in.txt": "a\n"}),
    case("encode-batch-size-zero", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", "--batch-size", "0", *CPU],
         "--batch-size must be at least 1", files={"in.txt": "a\n"}),
    # ------------------------------------------------------------------ prune: the data-loss cases first
    case("prune-out-parent-overwrite", ["prune", TINY, "--num-layers", "2", "--out", "..", "--overwrite", *CPU],
         "parent of the current folder", files={"user.txt": "precious", "sub/also.txt": "x"}, cwd="sub"),
    case("prune-out-cwd-overwrite", ["prune", TINY, "--num-layers", "2", "--out", ".", "--overwrite", *CPU],
         "it is the current folder", files={"user.txt": "precious"}),
    case("prune-out-user-folder-overwrite", ["prune", TINY, "--num-layers", "2", "--out", "mine", "--overwrite", *CPU],
         "refusing to replace mine: it holds 2 entries (a.txt, b/)", files={"mine/a.txt": "x", "mine/b/c.txt": "y"}),
    # a user's own sentence-transformers folder carries modules.json, but no l3prune manifest
    case("prune-out-user-st-folder-overwrite", ["prune", TINY, "--num-layers", "2", "--out", "st", "--overwrite", *CPU],
         "refusing to replace st: it holds 3 entries (config.json, model.safetensors, modules.json) and no l3prune "
         "manifest", files=USER_ST),
    case("export-out-user-st-folder-overwrite", ["export", TINY, "--out", "st", "--overwrite", *CPU],
         "and no l3prune manifest", files=USER_ST),
    # a folder l3prune wrote, into which the user then put a file: only l3prune's files may go
    case("prune-out-ours-with-a-user-file", ["prune", TINY, "--num-layers", "2", "--out", "p", "--overwrite", *CPU],
         "refusing to replace p: it holds files l3prune did not write (my_notes.txt)", files=ours("p")),
    case("export-out-ours-with-a-user-file", ["export", TINY, "--out", "p", "--overwrite", *CPU],
         "files l3prune did not write (my_notes.txt)", files=ours("p")),
    case("train-out-ours-with-a-user-file", ["train", TINY, "--out", "p", "--overwrite", *CPU],
         "files l3prune did not write (my_notes.txt)", files=ours("p")),
    case("train-run-folder-with-a-user-file", ["train", TINY, "--out", "o", "--overwrite", *CPU],
         "refusing to replace o.run: it holds files l3prune did not write (my_notes.txt)",
         files={"o.run/run.json": "{}", "o.run/checkpoints/step-0000002.pt": b"PK", "o.run/my_notes.txt": "mine"}),
    case("prune-out-is-file", ["prune", TINY, "--num-layers", "2", "--out", "f", "--overwrite", *CPU],
         "is a file, but the output is a folder", files={"f": "x"}),
    case("prune-data-non-utf8", ["prune", TINY, "--config", "small", "--criterion", "l3prune", "--data", "t.jsonl",
                                 "--out", "p", *CPU], "t.jsonl:1: not UTF-8", files={"t.jsonl": NON_UTF8}),
    case("prune-config-little-data", ["prune", TINY, "--config", "large", "--criterion", "l3prune", "--data", "t.jsonl",
                                      "--out", "p", *CPU], "give at least 64 triplets of one source",
         files={"t.jsonl": jsonl(triplet_rows())}, absent="--batch-size"),
    case("prune-data-null-query", ["prune", TINY, "--config", "small", "--criterion", "l3prune", "--data", "t.jsonl",
                                   "--out", "p", *CPU], "t.jsonl:1: field 'query' must be a string, got null",
         files={"t.jsonl": '{"query": null, "positive": "a", "negative": "b"}\n'}),
    case("prune-out-dev-null", ["prune", TINY, "--num-layers", "2", "--out", os.devnull, "--overwrite", *CPU],
         "not a folder (a device or pipe)"),
    case("prune-no-size", ["prune", TINY, "--out", "p", *CPU], "say how much to keep"),
    # ------------------------------------------------------------------ train: everything checked before training
    case("train-require-stock-before-training",
         ["train", TINY, "--data", "t.jsonl", "--steps", "1", "--batch-size", "4", "--out", "o", "--export", "st",
          "--prompt", "query=Find it", "--require-stock", *CPU], "stock sentence-transformers cannot reproduce",
         files={"t.jsonl": jsonl(triplet_rows())}),
    case("train-require-stock-without-export", ["train", TINY, "--out", "o", "--require-stock", *CPU],
         "--require-stock applies to the exported folder"),
    case("train-export-is-out", ["train", TINY, "--out", "o", "--export", "o", *CPU], "are the same folder"),
    case("train-data-non-utf8", ["train", TINY, "--data", "t.jsonl", "--out", "o", *CPU], "t.jsonl:1: not UTF-8",
         files={"t.jsonl": NON_UTF8}),
    case("train-recipe-bad-yaml", ["train", TINY, "--recipe", "r.yaml", "--out", "o", *CPU], "invalid YAML",
         files={"r.yaml": "steps: [1,\n  lr: {\n"}),
    case("train-recipe-nan", ["train", TINY, "--recipe", "r.json", "--out", "o", *CPU], "NaN is not a valid JSON value",
         files={"r.json": '{"learning_rate": NaN}'}),
    case("train-run-dir-user-folder", ["train", TINY, "--out", "o", "--run-dir", "mine", *CPU],
         "run folder mine holds files and no run.json, so it is not an l3prune run folder",
         files={"mine/a.txt": "x"}),
    case("train-numeric-instruction", ["train", TINY, "--data", "t.jsonl", "--out", "o", *CPU],
         "t.jsonl:1: field 'instruction' must be a string, got int",
         files={"t.jsonl": '{"query": "q", "positive": "p", "negative": "n", "instruction": 7}\n'}),
    case("train-argparse-float", ["train", TINY, "--out", "o", "--lr", "fast"], "invalid float value"),
    # ------------------------------------------------------------------ scan: the same output rule
    case("scan-output-exists", ["scan", TINY, "--data", "t.jsonl", "--batch-size", "4", "--out", "s", *CPU],
         "s.json already exists", files={"t.jsonl": jsonl(triplet_rows()), "s.json": "{}"}),
    case("scan-overwrite-foreign-json", ["scan", TINY, "--data", "t.jsonl", "--batch-size", "4", "--out", "s",
                                         "--overwrite", *CPU], "refusing to replace s.json",
         files={"t.jsonl": jsonl(triplet_rows()), "s.json": "my notes, not JSON"}),
    case("scan-data-non-utf8", ["scan", TINY, "--data", "t.jsonl", "--out", "s", *CPU], "t.jsonl:1: not UTF-8",
         files={"t.jsonl": NON_UTF8}),
    case("scan-out-parent-is-file", ["scan", TINY, "--out", "f/s", *CPU], "is a file, not a folder", files={"f": "x"}),
    # ------------------------------------------------------------------ export
    case("export-overwrite-user-folder", ["export", TINY, "--out", "mine", "--overwrite", *CPU], "refusing to replace mine",
         files={"mine/a.txt": "x"}),
    case("export-require-stock", ["export", TINY, "--out", "st", "--prompt", "query=Find it", "--require-stock", *CPU],
         "stock sentence-transformers cannot reproduce"),
    case("export-argparse-prompt", ["export", TINY, "--out", "st", "--prompt", "no-equals"], "NAME=INSTRUCTION"),
    case("export-out-is-file", ["export", TINY, "--out", "f", *CPU], "is a file, but the output is a folder",
         files={"f": "x"}),
    # ------------------------------------------------------------------ eval: data types, values, remote code
    case("eval-null-sentence", ["eval", TINY, "--tasks", "sts:s.jsonl", *CPU],
         "s.jsonl:2: field 'sentence1' must be a string, got null",
         files={"s.jsonl": STS_OK.replace('"a cat sat on the mat 1"', "null")}),
    case("eval-nan-score", ["eval", TINY, "--tasks", "sts:s.jsonl", *CPU], "s.jsonl:3: field 'score' is 'NaN'",
         files={"s.jsonl": STS_OK.replace('"score": 2', '"score": "NaN"')}),
    case("eval-empty-sentence", ["eval", TINY, "--tasks", "sts:s.jsonl", *CPU], "s.jsonl:1: field 'sentence2' is empty",
         files={"s.jsonl": STS_OK.replace('"a cat sat 0"', '"  "')}),
    case("eval-non-utf8", ["eval", TINY, "--tasks", "sts:s.jsonl", *CPU], "s.jsonl:1: not UTF-8",
         files={"s.jsonl": NON_UTF8}),
    case("eval-lone-cr-in-json", ["eval", TINY, "--tasks", "sts:s.jsonl", *CPU], "s.jsonl:1: invalid JSON",
         files={"s.jsonl": '{"sentence1": "a\rb", "sentence2": "c", "score": 1}\n'}),
    case("eval-remote-code-st-folder", ["eval", m("st_custom"), "--tasks", "sts:s.jsonl", *CPU],
         "l3prune never runs code from a model folder", files={"s.jsonl": STS_OK}),
    case("eval-out-exists", ["eval", TINY, "--tasks", "sts:s.jsonl", "--out", "r.json", *CPU],
         "r.json already exists", files={"s.jsonl": STS_OK, "r.json": "{}"}),
    case("eval-overwrite-foreign-json", ["eval", TINY, "--tasks", "sts:s.jsonl", "--out", "r.json", "--overwrite", *CPU],
         "refusing to replace r.json", files={"s.jsonl": STS_OK, "r.json": "not json"}),
    case("eval-out-not-json", ["eval", TINY, "--tasks", "sts:s.jsonl", "--out", "notes.txt", "--overwrite", *CPU],
         "must end in .json", files={"s.jsonl": STS_OK, "notes.txt": "mine"}),
    case("eval-unknown-task", ["eval", TINY, "--tasks", "nope", *CPU], "unknown task 'nope'"),
    case("eval-empty-query", ["eval", TINY, "--tasks", "retrieval:r", *CPU], "queries.jsonl:1: field 'text' is empty",
         files={"r/corpus.jsonl": '{"_id": "d1", "text": "doc"}\n', "r/queries.jsonl": '{"_id": "q1", "text": ""}\n',
                "r/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n"}),
    case("eval-dev-null-task", ["eval", TINY, "--tasks", f"sts:{os.devnull}", *CPU], "not a regular file"),
    # ------------------------------------------------------------------ bombs
    case("train-recipe-yaml-alias-bomb", ["train", TINY, "--recipe", "r.yaml", "--out", "o", *CPU],
         "r.yaml:2: a YAML alias (*a1)", files={"r.yaml": YAML_BOMB}),
    case("train-recipe-too-large", ["train", TINY, "--recipe", "r.yaml", "--out", "o", *CPU], "too large for a recipe",
         files={"r.yaml": "steps: 10\n" + "# padding\n" * 20_000}),
    case("encode-template-format-bomb", ["encode", m("template_bomb"), "--input", "in.txt", "--output", "o.npy",
                                         "--instruction", "hi", *CPU],
         "l3prune.json is not a valid l3prune settings file: instruction_template must hold exactly one plain",
         files={"in.txt": "a\n"}),
    case("info-settings-bad-kept-layers", ["info", m("bad_kept_layers"), *CPU],
         "setting 'kept_layers' must be a list of ints"),
    # ------------------------------------------------------------------ checks that came too late: now before any load
    case("train-out-is-run-dir", ["train", TINY, "--out", "x", "--run-dir", "x", *CPU],
         "and the run folder", absent="already exists"),
    case("train-export-is-run-folder", ["train", TINY, "--out", "x", "--export", "x.run", *CPU],
         "are the same folder; give each its own folder"),
    case("train-run-dir-inside-out", ["train", TINY, "--out", "x", "--run-dir", "x/run", *CPU], "are nested"),
    case("encode-batch-size-zero-before-loading", ["encode", m("truncated"), "--input", "in.txt", "--output", "o.npy",
                                                   "--batch-size", "0", *CPU],
         "--batch-size must be at least 1", files={"in.txt": "a\n"}),
    case("eval-negative-batch-size-before-loading", ["eval", m("truncated"), "--tasks", "sts:s.jsonl", "--batch-size",
                                                     "-1", *CPU], "--batch-size must be at least 1",
         files={"s.jsonl": STS_OK}),
    case("export-require-stock-before-loading", ["export", m("truncated"), "--out", "st", "--prompt", "query=Find it",
                                                 "--require-stock", *CPU], "stock sentence-transformers cannot"),
    case("eval-minilm-cuda", ["eval", "minilm", "--device", "cuda"], "no CUDA GPU is available"),
    case("prune-criterion-data-missing-before-loading", ["prune", m("truncated"), "--num-layers", "2", "--criterion",
                                                         "angular", "--data", "nope.jsonl", "--out", "p", *CPU],
         "does not exist"),
    case("eval-every-document-empty", ["eval", m("truncated"), "--tasks", "retrieval:r", *CPU],
         "every document is empty", files=retrieval(corpus='{"_id": "d1", "text": " "}\n')),
    case("train-lora-target-unknown", ["train", TINY, "--lora-targets", "nonexistent_proj", "--out", "x", *CPU],
         "LoRA targets ['nonexistent_proj'] are not modules of this model"),
    # ------------------------------------------------------------------ the user's input, not l3prune's fault
    case("train-lr-huge", ["train", TINY, "--lr", "1e300", "--out", "x", *CPU], "would diverge"),
    case("train-lr-negative-exponent", ["train", TINY, "--lr", "-1e-4", "--out", "x", *CPU],
         "learning_rate must be a positive number, got -0.0001"),
    case("train-run-dir-with-a-users-run-json", ["train", TINY, "--out", "x", "--run-dir", "mine", *CPU],
         "mine/run.json is not an l3prune run record", files={"mine/run.json": "[1, 2]"}),
    case("info-device-xpu", ["info", TINY, "--device", "xpu"], "asks for an Intel GPU"),
    case("encode-deeply-nested-json", ["encode", TINY, "--input", "in.json", "--output", "o.npy", *CPU],
         "nested too deeply", files={"in.json": "[" * 100_000 + "]" * 100_000}),
    case("encode-lone-surrogate", ["encode", TINY, "--input", "in.jsonl", "--output", "o.npy", *CPU],
         "a lone surrogate", files={"in.jsonl": '{"text": "caf\\ud800"}\n'}),
    case("eval-one-class", ["eval", TINY, "--tasks", "classification:c", *CPU], "needs at least two classes",
         files={"c/train.csv": "text,label\na,x\nb,x\n", "c/test.csv": "text,label\nc,x\n"}),
    case("info-upper-case-gguf-suffix", ["info", "G.GGUF"], "could not read GGUF file", files={"G.GGUF": b"GGUF"}),
    case("encode-dangling-symlink", ["encode", TINY, "--input", "link.txt", "--output", "o.npy", *CPU],
         "is a symbolic link to gone.txt, which does not exist", links={"link.txt": "gone.txt"}),
    # ------------------------------------------------------------------ wrong answers that used to exit 0
    case("eval-duplicate-corpus-id", ["eval", TINY, "--tasks", "retrieval:r", *CPU],
         "corpus.jsonl:2: document _id 'd1' repeats (first at r/corpus.jsonl:1",
         files=retrieval(corpus='{"_id": "d1", "text": "doc"}\n{"_id": "d1", "text": "other"}\n')),
    case("eval-int-and-string-id-collide", ["eval", TINY, "--tasks", "retrieval:r", *CPU], "document _id '1' repeats",
         files=retrieval(corpus='{"_id": 1, "text": "doc"}\n{"_id": "1", "text": "other"}\n', doc="1")),
    case("eval-duplicate-query-id", ["eval", TINY, "--tasks", "retrieval:r", *CPU], "query _id 'q1' repeats",
         files=retrieval(queries='{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n')),
    case("eval-duplicate-qrels-line", ["eval", TINY, "--tasks", "retrieval:r", *CPU],
         "test.tsv:3: query 'q1' and document 'd1' are judged again (first at line 2)",
         files=retrieval(qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t0\n")),
    case("eval-fractional-grade", ["eval", TINY, "--tasks", "retrieval:r", *CPU],
         "test.tsv:2: relevance '0.9' is not an integer grade",
         files=retrieval(qrels="query-id\tcorpus-id\tscore\nq1\td1\t0.9\n")),
    case("eval-minilm-num-layers", ["eval", "minilm", "--num-layers", "2", *CPU],
         "--num-layers applies to l3prune encoders, but minilm is a sentence-transformers model"),
    case("eval-minilm-pooling", ["eval", "minilm", "--pooling", "last_token", *CPU], "--pooling applies"),
    case("info-config-without-layer-count", ["info", m("no_layer_count"), *CPU],
         "weights the config asks for are not in the checkpoint"),
    case("info-config-without-hidden-size", ["info", m("no_hidden_size"), *CPU],
         "config.json has no hidden_size, so transformers assumed its defaults; fix config.json"),
    case("info-config-inconsistent-heads", ["info", m("five_heads"), *CPU],
         "The hidden size (64) is not a multiple of the number of attention heads (5)"),
    case("info-config-claims-more-layers", ["info", m("more_layers"), *CPU], "num_hidden_layers missing or larger"),
    case("encode-nan-weights", ["encode", m("nan_weights"), "--input", "in.txt", "--output", "o.npy", *CPU],
         "non-finite embeddings (NaN or inf) for 1 of 1 texts", files={"in.txt": "a text\n"}),
    case("encode-nan-rms-norm-eps", ["encode", m("nan_eps"), "--input", "in.txt", "--output", "o.npy", *CPU],
         "rms_norm_eps", files={"in.txt": "a text\n"}),
    case("encode-unknown-suffix", ["encode", TINY, "--input", "in.md", "--output", "o.npy", *CPU],
         "has the suffix '.md'", files={"in.md": "# a title\n"}),
    case("encode-json-not-a-list", ["encode", TINY, "--input", "in.json", "--output", "o.npy", *CPU],
         "a .json input must hold a list", files={"in.json": '{"text": "a"}'}),
    case("encode-csv-without-text-column", ["encode", TINY, "--input", "in.csv", "--output", "o.npy", *CPU],
         'no "text" column', files={"in.csv": "sentence\nhello\n"}),
    case("encode-non-utf8-reports-its-line", ["encode", TINY, "--input", "in.txt", "--output", "o.npy", *CPU],
         "in.txt:3: not UTF-8", files={"in.txt": b"one\ntwo\n" + NON_UTF8}),
]


def test_enough_cases_on_every_command():
    commands = {c.command for c in CASES}
    assert len(CASES) >= 40 and commands == {"info", "encode", "prune", "train", "scan", "export", "eval"}


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_bad_input(c: Case, models, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    for rel, content in (c.files or {}).items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for name, target in (c.links or {}).items():
        (work / name).symlink_to(target)
    monkeypatch.setenv("L3PRUNE_CACHE", str(tmp_path / "cache"))
    for key, value in (c.env or {}).items():
        monkeypatch.setenv(key, value)
    (work / c.cwd).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(work / c.cwd)
    before = snapshot(work)
    code = main(c.args(models))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and c.message in lines[0], err
    assert "Traceback" not in err
    if c.absent:
        assert c.absent not in lines[0]
    assert snapshot(work) == before


def test_the_truncation_warning_counts_every_text_of_the_file(models, tmp_path, caplog):
    (tmp_path / "in.txt").write_text("".join(f"a long text number {i} " * 12 + "\n" for i in range(70)))
    assert main(["encode", str(models["tiny"]), "--input", str(tmp_path / "in.txt"), "--output",
                 str(tmp_path / "o.npy"), "--max-length", "16", "--batch-size", "32", "--device", "cpu"]) == 0
    assert "70 of 70 text(s) exceed max_length=16 tokens" in caplog.text


def test_an_unwritable_cache_fails_before_a_gguf_conversion(models, tmp_path, monkeypatch, capsys):
    import l3prune.files.writing as writing

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("L3PRUNE_CACHE", str(cache))
    real = os.access
    monkeypatch.setattr(writing.os, "access", lambda path, mode: False if Path(path) == cache else real(path, mode))
    assert main(["info", str(models["garbage.gguf"])]) == 2  # garbage: a conversion would fail otherwise
    assert f"{cache} is not writable" in capsys.readouterr().err


def test_training_prints_no_future_warning_of_transformers(models, tmp_path):
    import warnings

    (tmp_path / "t.jsonl").write_text(jsonl(triplet_rows()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", str(models["tiny"]), "--data", str(tmp_path / "t.jsonl"), "--steps", "1",
                     "--batch-size", "4", "--max-length", "24", "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_rows_match_the_lines_a_user_sees(models, tmp_path, capsys):
    """A lone carriage return stays inside its line; a Windows line ending is dropped."""
    import numpy as np

    (tmp_path / "in.txt").write_bytes(b"first\rstill the first line\r\nsecond\n")
    assert main(["encode", str(models["tiny"]), "--input", str(tmp_path / "in.txt"), "--output",
                 str(tmp_path / "o.npy"), "--device", "cpu"]) == 0
    assert np.load(tmp_path / "o.npy").shape[0] == 2


def test_cuda_without_a_gpu_is_one_line(models, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["info", str(models["tiny"]), "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("error: device 'cuda' asks for CUDA, but no CUDA GPU is available")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(models, monkeypatch, capsys):
    import l3prune.cli as cli

    def boom(args):
        raise RuntimeError("something internal")

    monkeypatch.setattr(cli, "cmd_info", boom)  # main builds its parser afresh, with the patched command
    assert main(["info", str(models["tiny"])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError: something internal" in err and "--debug" in err
    assert main(["--debug", "info", str(models["tiny"])]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unexpected RuntimeError")


def test_overwrite_replaces_our_own_output_atomically(models, tmp_path, monkeypatch, capsys):
    """The positive side of the rules: an output l3prune wrote is replaced, and a crash keeps the old one."""
    from l3prune.encoder import LLMEncoder

    monkeypatch.chdir(tmp_path)
    assert main(["prune", str(models["tiny"]), "--num-layers", "3", "--out", "p", "--device", "cpu"]) == 0
    old = snapshot(tmp_path / "p")

    def crash(self, folder):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(LLMEncoder, "write_files", crash)
    assert main(["prune", str(models["tiny"]), "--num-layers", "2", "--out", "p", "--overwrite", "--device", "cpu"]) == 1
    assert snapshot(tmp_path / "p") == old and sorted(os.listdir(tmp_path)) == ["p"]  # old intact, no temp left
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["prune", str(models["tiny"]), "--num-layers", "2", "--out", "p", "--overwrite", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "p" / "l3prune.json").read_text())["kept_layers"] == [0, 1]


def test_eval_keeps_empty_corpus_documents_and_warns_once(models, tmp_path, caplog, capsys):
    """Public retrieval corpora hold empty passages: kept, never retrieved, one warning with the count and ids."""
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": "d0", "title": "", "text": ""}] + [{"_id": f"d{i}", "text": f"passage {i}"} for i in range(1, 5)]
    (folder / "corpus.jsonl").write_text(jsonl(docs))
    (folder / "queries.jsonl").write_text(jsonl([{"_id": "q1", "text": "passage 1"}]))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert main(["eval", str(models["tiny"]), "--tasks", f"retrieval:{folder}", "--device", "cpu"]) == 0
    warnings = [r.getMessage() for r in caplog.records if "empty" in r.getMessage() and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 of 5 documents are empty" in warnings[0] and "d0" in warnings[0]


# ---------------------------------------------------------------------------------- security
MARKER = "PWNED"


class _Payload:
    """Unpickling this calls ``os.system``, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_without_running(models, tmp_path, capsys):
    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(models["tiny"] / "config.json", folder / "config.json")
    marker = tmp_path / MARKER
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    for command in (["info", str(folder)], ["eval", str(folder), "--tasks", "STS13"],
                    ["export", str(folder), "--out", str(tmp_path / "st")]):
        assert main([*command, "--device", "cpu"]) == 2
        assert "safetensors only" in capsys.readouterr().err
    time.sleep(0.1)
    assert not marker.exists() and not (tmp_path / "st").exists()


def test_outputs_never_carry_the_inputs_auto_map_and_are_readable_as_the_umask_allows(models, tmp_path):
    """An export loaded with trust_remote_code=True would otherwise import a .py file dropped beside it."""
    known = tmp_path / "known"
    shutil.copytree(models["tiny"], known)
    config = json.loads((known / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (known / "config.json").write_text(json.dumps(config))
    for command in (["prune", str(known), "--num-layers", "2"], ["export", str(known)],
                    ["train", str(known), "--num-layers", "2", "--steps", "1", "--batch-size", "4", "--data",
                     str(tmp_path / "t.jsonl")]):
        (tmp_path / "t.jsonl").write_text(jsonl(triplet_rows()))
        out = tmp_path / command[0]
        assert main([*command, "--out", str(out), "--device", "cpu"]) == 0
        assert "auto_map" not in json.loads((out / "config.json").read_text()), command[0]
        umask = os.umask(0)
        os.umask(umask)
        assert all((f.stat().st_mode & 0o777) == 0o666 & ~umask for f in out.rglob("*") if f.is_file()), command[0]


def test_auto_map_code_in_a_model_folder_is_never_imported(models, tmp_path, capsys):
    marker = tmp_path / MARKER
    code = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    # A known architecture with an auto_map: the built-in class loads it; the module is never imported.
    known = tmp_path / "known"
    shutil.copytree(models["tiny"], known)
    config = json.loads((known / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (known / "config.json").write_text(json.dumps(config))
    (known / "evil.py").write_text(code)
    assert main(["info", str(known), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == 4
    # An architecture only the folder's code defines: refused.
    custom = tmp_path / "custom"
    shutil.copytree(known, custom)
    config["model_type"] = "evil_arch"
    (custom / "config.json").write_text(json.dumps(config))
    assert main(["info", str(custom), "--device", "cpu"]) == 2
    assert "could not read the config" in capsys.readouterr().err
    # A sentence-transformers folder whose module is the folder's code: refused by eval.
    st = tmp_path / "st"
    shutil.copytree(known, st)
    (st / "l3prune.json").unlink()
    (st / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil.EvilModel"}]))
    assert main(["eval", str(st), "--tasks", "STS13", "--device", "cpu"]) == 2
    assert "never runs code from a model folder" in capsys.readouterr().err
    assert not marker.exists()
