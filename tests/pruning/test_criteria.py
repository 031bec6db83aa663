"""Each criterion keeps the right number of valid layers and does what its paper says on a case built to test it.

The constructed case: a block whose o_proj and down_proj are zero adds nothing to the residual stream, so
it is an exact identity. Block influence, angular distance, perplexity and Taylor must all find it.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from l3prune.architectures import decoder_layers
from l3prune.data import Triplet
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec
from l3prune.pruning.commands import prune_encoder
from l3prune.pruning.criteria import CRITERIA, get_criterion
from l3prune.pruning.criteria.calibration import causal_lm, drop_lowest, lm_loss, skipping
from l3prune.pruning.profile import LayerProfile

from l3prune.testing import SENTENCES

TRIPLETS = [Triplet(SENTENCES[i], SENTENCES[(i + 1) % 8], SENTENCES[(i + 4) % 8], "mrpc_train") for i in range(8)]
DATA_DRIVEN = ["block_influence", "angular", "perplexity", "taylor"]


def make_identity(encoder, layers) -> None:
    for index in layers:
        block = decoder_layers(encoder.model)[index]
        for linear in (block.self_attn.o_proj, block.mlp.down_proj):
            torch.nn.init.zeros_(linear.weight)
            linear.weight.requires_grad_(False)


def criterion(name: str):
    return CRITERIA[name](num_texts=16, batch_size=8) if name in DATA_DRIVEN else get_criterion(name)


@pytest.fixture
def random_with_identities(make_encoder):
    """8 random layers; layers 4 and 5 are identities."""
    encoder = make_encoder("llama", num_layers=8)
    encoder.model.config.tie_word_embeddings = True  # the LM criteria then need no checkpoint
    make_identity(encoder, [4, 5])
    return encoder


@pytest.fixture
def trained_with_identity(make_encoder):
    """8 layers trained as a tiny LM on the corpus, so that removing a real block costs perplexity; layer 4 is an identity."""
    torch.manual_seed(0)
    encoder = make_encoder("llama", num_layers=8)
    encoder.model.config.tie_word_embeddings = True
    make_identity(encoder, [4])
    lm = causal_lm(encoder).train()
    optimizer = torch.optim.Adam([p for p in lm.parameters() if p.requires_grad], lr=1e-2)
    batch = encoder.collator.tokenize(SENTENCES)
    for _ in range(40):
        nll, tokens = lm_loss(lm, encoder, batch)
        (nll / tokens).backward()
        optimizer.step()
        optimizer.zero_grad()
    return encoder.eval()


def test_registry_has_every_criterion_and_names_them_on_a_typo():
    get_criterion("last")
    assert {"last", "l3prune", *DATA_DRIVEN} <= set(CRITERIA)
    with pytest.raises(L3PruneError, match=r"unknown criterion 'nope'; choose from \[.*'angular'.*'taylor'"):
        get_criterion("nope")


@pytest.mark.parametrize("name", ["last", "l3prune", *DATA_DRIVEN])
@pytest.mark.parametrize("size", [1, 5, 8])
def test_keeps_the_asked_number_of_valid_sorted_layers(random_with_identities, name, size):
    selection = criterion(name).select(random_with_identities, size, data=TRIPLETS)
    assert len(selection.layers) == size and selection.layers == sorted(set(selection.layers))
    assert all(0 <= i < 8 for i in selection.layers) and selection.reason


def test_block_influence_drops_identity_layers_first(random_with_identities):
    selection = criterion("block_influence").select(random_with_identities, 6, data=TRIPLETS)
    assert selection.layers == [0, 1, 2, 3, 6, 7]
    scores = selection.scores["block_influence"]
    assert max(scores[4], scores[5]) < 1e-5 < min(s for i, s in enumerate(scores) if i not in (4, 5))


def test_angular_picks_the_block_of_identity_layers(random_with_identities):
    chosen = criterion("angular")
    assert chosen.select(random_with_identities, 6, data=TRIPLETS).layers == [0, 1, 2, 3, 6, 7]
    one = chosen.select(random_with_identities, 7, data=TRIPLETS)  # same measurement, other block size
    assert set(range(8)) - set(one.layers) <= {4, 5}
    assert len(one.scores["angular_distance_block_1"]) == 8


def test_perplexity_drops_the_identity_block(trained_with_identity):
    selection = criterion("perplexity").select(trained_with_identity, 7, data=TRIPLETS)
    assert selection.layers == [0, 1, 2, 3, 5, 6, 7]
    ppl = selection.scores["perplexity_without_block"]
    assert ppl[4] == pytest.approx(min(ppl)) and sorted(ppl)[1] > ppl[4] * 1.01


def test_skipping_a_block_equals_removing_it(make_encoder):
    encoder = make_encoder("gemma3_text", num_layers=4, add_bos=True)  # alternating sliding/full layers
    features = encoder.collator.tokenize(SENTENCES[:4])
    with torch.no_grad():
        with skipping(encoder, 1):
            skipped = lm_loss(causal_lm(encoder), encoder, features)[0]
        pruned = copy.deepcopy(encoder).prune([0, 2, 3])
        removed = lm_loss(causal_lm(pruned), pruned, features)[0]
        full = lm_loss(causal_lm(encoder), encoder, features)[0]
    torch.testing.assert_close(skipped, removed)
    assert not torch.allclose(skipped, full)


def test_taylor_gives_identity_zero_and_protects_the_ends(trained_with_identity):
    chosen = criterion("taylor")
    selection = chosen.select(trained_with_identity, 7, data=TRIPLETS)
    assert selection.layers == [0, 1, 2, 3, 5, 6, 7]
    scores = selection.scores["taylor_importance"]
    assert scores[4] == 0 and min(s for i, s in enumerate(scores) if i != 4) > 0
    assert chosen.select(trained_with_identity, 6, data=TRIPLETS).layers == [0, 1, 2, 3, 6, 7]  # 4, 5 unprotected
    assert all(not p.requires_grad or p.grad is None for p in trained_with_identity.parameters())


def test_drop_lowest_spares_protected_layers_until_it_must():
    scores = [0.1, 0.2, 5.0, 4.0, 0.3]
    assert drop_lowest(scores, 2) == [2, 3, 4]
    assert drop_lowest(scores, 2, protected=[0, 1]) == [0, 1, 2]
    assert drop_lowest(scores, 4, protected=[0, 1]) == [1]


def test_lm_head_needs_a_checkpoint_when_embeddings_are_untied(make_encoder):
    encoder = make_encoder("llama", num_layers=2)
    encoder.settings.base_model = None
    with pytest.raises(L3PruneError, match="untied embeddings"):
        criterion("perplexity").select(encoder, 1, data=TRIPLETS)


def test_l3prune_keeps_the_scan_depth_of_each_configuration(random_with_identities):
    profile = LayerProfile(model="m", num_layers=8, loss_mean=[5, 3, 4, 4.5, 2, 1, 2, 3], loss_std=[0.1] * 8,
                           small=2, large=6, settings={"num_batches": 1, "batch_size": 4})
    chosen = CRITERIA["l3prune"](profile=profile)
    assert chosen.select(random_with_identities, None, configuration="small").layers == [0, 1]
    large = chosen.select(random_with_identities, None, configuration="large")
    assert large.layers == list(range(6)) and "'large'" in large.reason and large.scores["scan_loss"][5] == 1
    with pytest.raises(L3PruneError, match="no configuration 'medium'"):
        chosen.select(random_with_identities, None, configuration="medium")


def test_l3prune_scans_when_it_has_no_profile(make_encoder):
    encoder = make_encoder("llama", num_layers=4)
    chosen = CRITERIA["l3prune"](num_batches=2, batch_size=4)
    selection = chosen.select(encoder, None, configuration="large", data=TRIPLETS)
    assert selection.layers == list(range(chosen.profile.large)) and chosen.profile.large in (3, 4)


def test_prune_encoder_runs_a_criterion_and_records_why(make_encoder, tmp_path):
    data = tmp_path / "calib.jsonl"
    data.write_text("".join(json.dumps({"query": t.query, "positive": t.positive, "negative": t.negative}) + "\n"
                            for t in TRIPLETS))
    encoder = make_encoder("llama", num_layers=6)
    make_identity(encoder, [2])
    prune_encoder(encoder, PruneSpec(num_layers=5, criterion="block_influence"), data=[data])
    assert encoder.num_layers == 5 and encoder.settings.kept_layers == [0, 1, 3, 4, 5]
    assert encoder.settings.pruning["criterion"] == "block_influence"
    assert "[2]" in encoder.settings.pruning["reason"]
