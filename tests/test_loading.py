from __future__ import annotations

import pytest
from transformers import GPT2Config

from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.layers import truncate_config
from l3prune.loading import resolve
from l3prune.testing import tiny_config


def test_unknown_alias_names_the_valid_ones():
    with pytest.raises(L3PruneError, match="smollm2-135m"):
        resolve("smollm3")


def test_missing_local_path_is_reported(tmp_path):
    with pytest.raises(L3PruneError, match="not found"):
        resolve(str(tmp_path / "nope"))
    with pytest.raises(L3PruneError, match="not found"):
        resolve("./relative/missing")


def test_folder_without_config_is_reported(tmp_path):
    with pytest.raises(L3PruneError, match="config.json"):
        resolve(tmp_path)


def test_a_hub_id_fails_fast_offline_and_is_passed_through_online(monkeypatch):
    with pytest.raises(L3PruneError, match="the hub is unreachable from here"):  # tests run offline, in seconds
        resolve("meta-llama/Meta-Llama-3-8B-Instruct")
    monkeypatch.setattr("l3prune.loading._check_hub_reachable", lambda repo_id: None)  # as with a network
    assert resolve("meta-llama/Meta-Llama-3-8B-Instruct").location == "meta-llama/Meta-Llama-3-8B-Instruct"


def test_unsupported_architecture_lists_supported_ones(tmp_path):
    GPT2Config(n_layer=2, n_embd=32, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(L3PruneError, match=r"unsupported architecture 'gpt2'.*llama"):
        LLMEncoder.from_pretrained(tmp_path, device="cpu")


def test_truncate_config_shrinks_per_layer_lists():
    config = truncate_config(tiny_config("gemma3_text", num_layers=8), 3)
    assert config.num_hidden_layers == 3 and len(config.layer_types) == 3
