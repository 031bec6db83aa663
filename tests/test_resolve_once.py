"""A command resolves its model reference once and reads the config and the tokenizer once (``ModelSource``).

Before ``ModelSource``, ``l3prune train TINY --num-layers 2 --export ST`` called ``AutoConfig.from_pretrained``
7 times and ``AutoTokenizer.from_pretrained`` 3 times. A check of a written export by reloading it may add one
read of each; nothing else may.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from transformers import AutoConfig, AutoTokenizer

from l3prune.cli import main
from l3prune.loading import ModelSource
from l3prune.testing import CORPUS, tiny_encoder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_encoder("llama", 3).save(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def triplets(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "toy.jsonl"
    rows = [{"query": CORPUS[i % 8], "positive": CORPUS[(i + 1) % 8], "negative": CORPUS[(i + 4) % 8]}
            for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def reads(monkeypatch):
    """Counts of resolutions (``ModelSource`` objects made) and of config and tokenizer reads."""
    counts: Counter[str] = Counter()

    def counting(name, original):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(AutoConfig, "from_pretrained", counting("config", AutoConfig.from_pretrained))
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", counting("tokenizer", AutoTokenizer.from_pretrained))
    original_init = ModelSource.__init__

    def init(self, *args, **kwargs):
        counts["resolve"] += 1
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(ModelSource, "__init__", init)
    return counts


def test_train_with_export_resolves_once_and_reads_config_and_tokenizer_once(reads, model_dir, triplets, tmp_path):
    args = ["train", str(model_dir), "--num-layers", "2", "--data", str(triplets), "--steps", "1", "--batch-size",
            "4", "--max-length", "32", "--dtype", "fp32", "--device", "cpu", "--out", str(tmp_path / "out"),
            "--export", str(tmp_path / "st")]
    assert main(args) == 0
    assert reads == {"resolve": 1, "config": 1, "tokenizer": 1}


def test_train_with_a_bos_export_adds_only_the_exports_check(reads, tmp_path, triplets):
    bos_model = tiny_encoder("llama", 3, add_bos=True).save(tmp_path / "bos")
    args = ["train", str(bos_model), "--num-layers", "2", "--data", str(triplets), "--steps", "1", "--batch-size",
            "4", "--max-length", "32", "--dtype", "fp32", "--device", "cpu", "--pooling", "eos",
            "--out", str(tmp_path / "out"), "--export", str(tmp_path / "st")]
    assert main(args) == 0
    # the exported tokenizer gets a new post-processor; the export reloads it once (with its config) to check it
    assert reads == {"resolve": 1, "config": 2, "tokenizer": 2}


@pytest.mark.parametrize("command", [
    ["prune", "--num-layers", "2"],
    ["export"],
    ["info"],
])
def test_other_commands_resolve_once(reads, model_dir, tmp_path, command):
    out = [] if command[0] == "info" else ["--out", str(tmp_path / "out")]
    assert main([command[0], str(model_dir), *command[1:], "--device", "cpu", *out]) == 0
    assert reads == {"resolve": 1, "config": 1, "tokenizer": 1}


def test_scan_resolves_once(reads, model_dir, triplets, tmp_path):
    assert main(["scan", str(model_dir), "--data", str(triplets), "--num-batches", "1", "--batch-size", "4",
                 "--device", "cpu", "--out", str(tmp_path / "scan")]) == 0
    assert reads == {"resolve": 1, "config": 1, "tokenizer": 1}


def test_a_source_hands_out_copies_of_what_loading_changes(model_dir):
    from l3prune.loading import resolve

    source = resolve(model_dir)
    config = source.model_config()
    config.num_hidden_layers = 1  # what truncate_config does
    assert source.model_config().num_hidden_layers == 3 and source.num_layers == 3
    settings = source.settings()
    settings.kept_layers.append(99)
    assert source.settings().kept_layers == [0, 1, 2]
    assert source.tokenizer() is source.tokenizer()
