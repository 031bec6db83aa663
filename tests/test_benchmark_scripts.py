"""The GPU check cannot run on CI's machines; its tiny CPU mode keeps the scripts from rotting unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_gpu_check_runs_its_tiny_cpu_mode(tmp_path):
    env = {**os.environ, "TINY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    encode = json.loads((tmp_path / "encode_gpu.json").read_text())
    assert encode["speed_only"] and [r["layers"] for r in encode["rows"]] == [4, 2]
    assert encode["rows"][1]["worst_cosine_native_vs_st"] > 0.9999  # stock ST on the export agrees with native
    assert "SPEED ONLY" in (tmp_path / "encode_gpu.md").read_text()
    train = json.loads((tmp_path / "train_step_gpu.json").read_text())
    assert [r["layers"] for r in train["rows"]] == [4, 2] and train["gradient_checkpointing"]
    assert all(r["median_s_per_step"] > 0 for r in train["rows"])
    assert json.loads((tmp_path / "matmul.json").read_text())["gflops"]["fp32"] > 0
    assert "status 0" in (tmp_path / "gpu_check.log").read_text()


def test_every_benchmark_script_compiles():
    """Benchmarks run for hours in the background; a syntax error must fail here, not after the first row."""
    scripts = sorted((ROOT / "benchmarks").glob("*.py"))
    assert len(scripts) > 10
    for script in scripts:
        compile(script.read_text(encoding="utf-8"), str(script), "exec")  # raises SyntaxError


def test_sort_padding_counts_each_loaders_batches(import_benchmark, make_encoder, tmp_path):
    """The padding figure of benchmarks/sort_padding.py against a hand count: token-count sort for the native
    encoder, character sort for sentence-transformers, each batch padded to its widest text."""
    from sentence_transformers import SentenceTransformer

    from l3prune.export import export_sentence_transformers

    sort_padding = import_benchmark("sort_padding")
    encoder = make_encoder()
    # Corpus words: many characters per token. A rare character: two tokens (bytes) per character.
    texts = ["The stock market fell sharply today after the report.", "ƒ" * 12, "The stock market", "ƒ"]
    tokens = [len(encoder.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

    def hand_count(key, batch_size=2):
        order = sorted(range(len(texts)), key=lambda i: -key[i])
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return sum(len(b) * max(tokens[i] for i in b) for b in batches), sum(tokens)

    by_tokens, by_characters = hand_count(tokens), hand_count([len(t) for t in texts])
    assert by_characters[0] > by_tokens[0], "the texts no longer tell the two sorts apart"
    assert sort_padding.native_positions(encoder, texts, 2) == by_tokens
    st = SentenceTransformer(str(export_sentence_transformers(encoder, tmp_path / "st")), device="cpu",
                             trust_remote_code=True)
    assert sort_padding.st_positions(st, texts, 2) == by_characters
