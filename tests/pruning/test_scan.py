"""The scan's contract: the loss it reports for depth k is the loss of the model really pruned to k."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from l3prune.data import SourceBatchSampler, Triplet
from l3prune.errors import L3PruneError
from l3prune.losses import contrastive_loss_per_example
from l3prune.pruning.profile import LayerProfile
from l3prune.pruning.scan import layer_losses, scan_layers, triplet_features

from l3prune.testing import SENTENCES

SYMMETRIC = "Retrieve sentences that are paraphrases of the given sentence"
ASYMMETRIC = "Given a question, retrieve Wikipedia sentences that answer the question"


def make_triplets(n: int = 8) -> list[Triplet]:
    """Two sources: one with the instruction on both sides, one on the query only; lengths vary."""
    out = []
    for i in range(n):
        q, p, neg = SENTENCES[i % 8], SENTENCES[(i + 1) % 8] + " again" * (i % 3), SENTENCES[(i + 4) % 8]
        out.append(Triplet(q, p, neg, "mrpc_train", SYMMETRIC, SYMMETRIC))
        out.append(Triplet(neg + " ok" * (i % 4), q, p, "wikiqa_train", ASYMMETRIC, None))
    return out


TRIPLETS = make_triplets()


def pruned_loss(encoder, k: int, batch) -> torch.Tensor:
    """(batch,) loss of a deep copy of ``encoder`` that really keeps only its first k layers."""
    pruned = copy.deepcopy(encoder).prune(list(range(k)))
    with torch.no_grad():
        q, p, n = (pruned(f) for f in triplet_features(pruned, batch))  # (batch, dim) each
    return contrastive_loss_per_example(q, p, n)


CASES = [
    ("llama", "left", "weighted_mean"),
    ("llama", "right", "weighted_mean"),
    ("gemma3_text", "left", "weighted_mean"),  # sliding-window and full layers interleave
    ("gemma3_text", "right", "mean"),
    ("qwen3", "right", "last_token"),
    ("phi3", "left", "eos"),
    ("gemma2", "left", "last_token"),
]


@pytest.mark.parametrize("arch,side,pooling", CASES)
def test_single_pass_loss_equals_the_loss_of_the_pruned_model(make_encoder, arch, side, pooling):
    encoder = make_encoder(arch, num_layers=5, padding_side=side, pooling=pooling, add_bos=arch.startswith("gemma"))
    batch = TRIPLETS[:6]
    single_pass = layer_losses(encoder, batch)  # (layers, batch)
    assert single_pass.shape == (5, 6)
    for k in (1, 2, 4, 5):  # 5 = the whole model, whose last hidden state transformers already normed
        torch.testing.assert_close(single_pass[k - 1], pruned_loss(encoder, k, batch), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(single_pass[0], single_pass[-1])  # depths really differ


def test_scan_mean_is_the_mean_over_the_same_batches_of_pruned_models(make_encoder):
    encoder = make_encoder("llama", num_layers=4)
    profile = scan_layers(encoder, TRIPLETS, num_batches=3, batch_size=4, seed=1, show_progress=False)
    sampler = SourceBatchSampler(TRIPLETS, 4, seed=1)
    batches = [[TRIPLETS[i] for i in sampler.batch_at(step)] for step in range(3)]
    for k in (1, 3):
        expected = torch.stack([pruned_loss(encoder, k, b).mean() for b in batches])  # (batches,)
        assert profile.loss_mean[k - 1] == pytest.approx(float(expected.mean()), abs=1e-5)
        assert profile.loss_std[k - 1] == pytest.approx(float(expected.std()), abs=1e-5)
    assert profile.settings["num_batches"] == 3 and sum(profile.settings["batches_per_source"].values()) == 3
    assert profile.settings["dtype"] == "fp32"  # spelled as the --dtype flag spells it


def test_small_and_large_are_argmins_of_each_half():
    per_batch = torch.tensor([[5.0, 4.0, 4.5, 3.0, 2.0, 2.5, 2.2], [5.0, 4.2, 4.5, 3.2, 2.1, 2.5, 2.2]])
    profile = LayerProfile.from_losses(per_batch, model="m", settings={})
    assert (profile.small, profile.large) == (2, 5)  # halves 1..3 and 4..7
    assert profile.loss_mean[1] == pytest.approx(4.1) and profile.loss_std[1] == pytest.approx(0.1414, abs=1e-3)


def test_save_writes_json_csv_png_atomically_and_round_trips(tmp_path):
    profile = LayerProfile.from_losses(torch.rand(3, 6) + torch.linspace(2, 0, 6), model="tiny", settings={"x": 1})
    paths = profile.save(tmp_path / "out" / "scan_tiny")
    assert {p.name for p in paths.values()} == {"scan_tiny.json", "scan_tiny.csv", "scan_tiny.png"}
    assert LayerProfile.load(paths["json"]) == profile
    lines = paths["csv"].read_text().splitlines()
    assert lines[0] == "layers,loss_mean,loss_std,config" and len(lines) == 7
    assert lines[profile.small].endswith(",small") and lines[profile.large].endswith(",large")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan_tiny.csv", "scan_tiny.json", "scan_tiny.png"]
    folder = profile.save(tmp_path)  # an existing folder gets the default stem
    assert folder["json"] == tmp_path / "layer_profile.json" and json.loads(folder["json"].read_text())["model"] == "tiny"


def test_scan_caps_batches_at_what_the_data_holds(make_encoder, caplog):
    encoder = make_encoder("llama", num_layers=2)
    profile = scan_layers(encoder, TRIPLETS, num_batches=50, batch_size=4, show_progress=False)
    assert profile.settings["num_batches"] == 4  # 2 sources x 8 triplets / 4
    assert "distinct batches" in caplog.text


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(batch_size=64), "fewer than one batch of 64"),
        (dict(batch_size=9), "larger than the largest source"),
        (dict(num_batches=0), "num_batches must be a positive integer"),
    ],
)
def test_scan_rejects_a_sample_that_cannot_be_batched(make_encoder, kwargs, message):
    with pytest.raises(L3PruneError, match=message):
        scan_layers(make_encoder("llama", num_layers=2), TRIPLETS, **{"batch_size": 4, **kwargs})


def test_scan_needs_two_layers(make_encoder):
    with pytest.raises(L3PruneError, match="at least 2"):
        scan_layers(make_encoder("llama", num_layers=1), TRIPLETS, batch_size=4)


@pytest.mark.real_model
def test_scan_on_smollm2(tmp_path):
    from l3prune.data import load_triplets
    from l3prune.encoder import LLMEncoder

    encoder = LLMEncoder.from_pretrained("smollm2-135m", max_length=64, device="cpu")
    profile = scan_layers(encoder, load_triplets(None), num_batches=2, batch_size=8, show_progress=False)
    assert profile.num_layers == 30 and 1 <= profile.small <= 15 and 16 <= profile.large <= 30
    paths = profile.save(tmp_path / "scan_smollm2")
    assert all(p.stat().st_size > 0 for p in paths.values())
