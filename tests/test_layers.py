from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from l3prune.testing import CONFIGS
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec, layers_to_keep, target_num_layers


def test_drop_fraction_follows_the_paper_formula():
    assert target_num_layers(30, drop_fraction=0.3) == 21  # int(30 * 0.7)
    assert target_num_layers(30, drop_fraction=0.0) == 30
    assert target_num_layers(32, drop_fraction=0.8) == 6
    # exact arithmetic, not float rounding: 30 * (1 - 0.8) is 5.999... in floats
    assert target_num_layers(30, drop_fraction=0.8) == 6
    assert target_num_layers(10, drop_fraction=0.7) == 3
    assert [target_num_layers(L, drop_fraction=p) for L in (18, 30, 32) for p in (0.25, 0.5, 0.75)] == [
        int(L * (100 - q) / 100) for L in (18, 30, 32) for q in (25, 50, 75)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"drop_fraction": 1.0}, r"\[0, 1\)"),
        ({"drop_fraction": -0.1}, r"\[0, 1\)"),
        ({"drop_fraction": float("nan")}, r"\[0, 1\)"),
        ({"drop_fraction": 0.99}, "leaves no layer"),
        ({"num_layers": 0}, "1..30"),
        ({"num_layers": 31}, "1..30"),
        ({"num_layers": 2.0}, "integer"),
        ({}, "exactly one"),
        ({"num_layers": 3, "drop_fraction": 0.5}, "exactly one"),
    ],
)
def test_bad_sizes_are_rejected(kwargs, message):
    with pytest.raises(L3PruneError, match=message):
        target_num_layers(30, **kwargs)


def test_explicit_layers_are_checked():
    assert layers_to_keep(6, layers=[5, 0, 2]) == [0, 2, 5]
    for bad, message in (([], "empty"), ([1, 1], "repeat"), ([6], "0..5"), ([-1], "0..5")):
        with pytest.raises(L3PruneError, match=message):
            layers_to_keep(6, layers=bad)
    with pytest.raises(L3PruneError, match="not both"):
        layers_to_keep(6, layers=[0], num_layers=1)


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_pruned_model_is_smaller_and_consistent(make_encoder, arch):
    enc = make_encoder(arch, num_layers=6)
    full_params = enc.num_parameters
    layer_types = getattr(enc.model.config, "layer_types", None)
    enc.prune([0, 3, 5])
    cfg = enc.model.config
    assert enc.num_layers == cfg.num_hidden_layers == 3
    if layer_types is not None:
        assert cfg.layer_types == [layer_types[i] for i in (0, 3, 5)]
    idx = [m.layer_idx for block in enc.model.layers for m in block.modules() if hasattr(m, "layer_idx")]
    assert sorted(set(idx)) == [0, 1, 2]
    per_layer = (full_params - enc.num_parameters) / 3
    assert per_layer > 0 and enc.num_parameters < full_params
    assert not any(k.startswith("layers.3.") for k in enc.model.state_dict())
    assert enc.encode(["still works"]).shape == (1, 64)


def test_pruning_twice_composes_original_indices(make_encoder):
    enc = make_encoder(num_layers=6)
    enc.prune([1, 2, 4, 5])
    enc.prune([0, 3])
    assert enc.settings.kept_layers == [1, 5]


def test_loading_at_n_layers_loads_only_those_weights(make_encoder, tmp_path):
    full = make_encoder("gemma3_text", num_layers=6, add_bos=True)
    full.save(tmp_path / "full")
    small = LLMEncoder.from_pretrained(tmp_path / "full", num_layers=2, device="cpu")
    assert small.num_layers == 2 and small.model.config.num_hidden_layers == 2
    assert len(small.model.config.layer_types) == 2
    # the two kept layers are the real first two, not a random init
    torch.testing.assert_close(small.model.layers[1].mlp.down_proj.weight, full.model.layers[1].mlp.down_proj.weight)
    pruned_in_memory = full.prune([0, 1])
    np.testing.assert_allclose(small.encode(["a text"]), pruned_in_memory.encode(["a text"]), atol=1e-5)


def test_saved_size_shrinks_in_proportion(make_encoder, tmp_path):
    enc = make_encoder(num_layers=8)
    enc.save(tmp_path / "full")
    enc.prune(range(4)).save(tmp_path / "half")
    full = load_file(tmp_path / "full" / "model.safetensors")
    half = load_file(tmp_path / "half" / "model.safetensors")
    layer = sum(v.numel() for k, v in full.items() if k.startswith("layers."))
    rest = sum(v.numel() for k, v in full.items() if not k.startswith("layers."))
    assert sum(v.numel() for v in half.values()) == rest + layer // 2


def test_arbitrary_layer_set_from_pretrained(make_encoder, tmp_path):
    full = make_encoder(num_layers=5)
    full.save(tmp_path / "full")
    enc = LLMEncoder.from_pretrained(tmp_path / "full", layers=[0, 4], device="cpu")
    assert enc.settings.kept_layers == [0, 4]
    torch.testing.assert_close(enc.model.layers[1].mlp.up_proj.weight, full.model.layers[4].mlp.up_proj.weight)


def test_prune_spec_is_checked_once_against_the_layer_count():
    with pytest.raises(L3PruneError, match="not num_layers and drop_fraction"):
        PruneSpec(num_layers=2, drop_fraction=0.5)
    assert PruneSpec(drop_fraction=0.5).check(30).size(30) == 15
    assert PruneSpec(num_layers=3).fixed_layers(6) == [0, 1, 2] and PruneSpec().fixed_layers(6) is None
    assert PruneSpec(layers=[4, 1]).fixed_layers(6) == [1, 4] and PruneSpec(layers=[4]).criterion_name == "manual"
    assert PruneSpec(configuration="large").criterion_name == "l3prune" and PruneSpec(num_layers=2).criterion_name == "last"
    with pytest.raises(L3PruneError, match="1..6"):
        PruneSpec(num_layers=7).check(6)
    with pytest.raises(L3PruneError, match="0..5"):
        PruneSpec(layers=[6]).check(6)
    with pytest.raises(L3PruneError, match="measuring the model"):
        PruneSpec(num_layers=2, criterion="block_influence").fixed_layers(6)


def count_layer_builds(monkeypatch) -> list[int]:
    """Count LlamaDecoderLayer constructions: what a load really allocates."""
    from transformers.models.llama import modeling_llama

    built: list[int] = []
    real = modeling_llama.LlamaDecoderLayer.__init__

    def counting(self, config, layer_idx, *args, **kwargs):
        built.append(layer_idx)
        real(self, config, layer_idx, *args, **kwargs)

    monkeypatch.setattr(modeling_llama.LlamaDecoderLayer, "__init__", counting)
    return built


@pytest.mark.parametrize("args", [["--num-layers", "4"], ["--drop-fraction", "0.5"], ["--layers", "0,1,2,3"],
                                  ["--num-layers", "4", "--criterion", "l3prune"]])
def test_prune_to_a_prefix_builds_only_those_layers(make_encoder, tmp_path, monkeypatch, args):
    from l3prune.cli import main

    make_encoder("llama", num_layers=8).save(tmp_path / "full")
    built = count_layer_builds(monkeypatch)
    assert main(["prune", str(tmp_path / "full"), *args, "--out", str(tmp_path / "p"), "--device", "cpu"]) == 0
    assert built == [0, 1, 2, 3]
    pruned = LLMEncoder.from_pretrained(tmp_path / "p", device="cpu")
    assert pruned.settings.kept_layers == [0, 1, 2, 3] and pruned.settings.pruning["reason"]
