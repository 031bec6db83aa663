"""Gradient caching gives the whole batch's exact gradient, piece by piece; false negatives can be masked."""

from __future__ import annotations

import json
import math

import pytest
import torch

from l3prune.data import Triplet
from l3prune.errors import L3PruneError
from l3prune.losses import ContrastiveLoss, contrastive_loss_per_example
from l3prune.testing import CORPUS, tiny_encoder
from l3prune.training import Trainer, build_config
from l3prune.training.teacher import TeacherTable, triplet_texts


pytestmark = pytest.mark.usefixtures("one_thread")


def triplets(n: int = 16) -> list[Triplet]:
    """Texts of many lengths, with instructions on the queries (attended to, not pooled)."""
    return [Triplet(query=" ".join([CORPUS[i % 8]] * (1 + i % 3)), positive=f"{CORPUS[(i + 1) % 8]} {i}",
                    negative=CORPUS[(i + 4) % 8] + " and more" * (i % 4), source="toy",
                    query_instruction="Retrieve a related sentence") for i in range(n)]


def gradients(config_overrides: dict, *, dropout: float, teacher: TeacherTable | None = None) -> list[torch.Tensor]:
    """One step's parameter gradients from a fresh tiny encoder (same weights and RNG for every call)."""
    encoder = tiny_encoder("llama", 3, seed=0, max_length=40)
    config = build_config(steps=2, batch_size=8, warmup_steps=1, lora_dropout=dropout, **config_overrides)
    trainer = Trainer(encoder, triplets(), config, teacher=teacher)
    trainer.train_step()
    return [p.grad.clone() for p in trainer.params]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_cached_gradients_equal_the_whole_batchs(dropout):
    # batch 8 at 2 triplets a pass: 4 pieces, the same length-sorted pieces the uncached step uses, so with
    # dropout on the uncached step draws the same masks in the same order (the cached one replays them)
    plain = gradients({}, dropout=dropout)
    cached = gradients({"mini_batch_size": 2}, dropout=dropout)
    assert any(g.abs().sum() > 0 for g in plain)
    for a, b in zip(plain, cached):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_cached_gradients_in_more_pieces_than_the_plain_step_still_equal_its_gradient():
    plain = gradients({}, dropout=0.0)
    cached = gradients({"mini_batch_size": 1}, dropout=0.0)  # 8 pieces of 3 texts
    for a, b in zip(plain, cached):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_cached_gradients_with_the_distillation_term_equal_the_whole_batchs():
    texts, rows = triplet_texts(triplets())
    torch.manual_seed(5)
    table = TeacherTable(torch.randn(len(texts), 64).numpy(), rows, {"reference": "random"})
    teacher = {"teacher": "random", "distill_loss": "similarity"}
    plain = gradients(teacher, dropout=0.0, teacher=table)
    cached = gradients({**teacher, "mini_batch_size": 2}, dropout=0.0, teacher=table)
    for a, b in zip(plain, cached):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_a_mini_batch_below_one_is_refused_and_one_above_the_batch_warned_about(caplog):
    with pytest.raises(L3PruneError, match="mini_batch_size must be at least 1"):
        build_config(batch_size=8, mini_batch_size=0)
    build_config(batch_size=8, mini_batch_size=8)
    assert "it has no effect" in caplog.text


def test_false_negatives_leave_the_softmax_and_the_target_always_stays():
    torch.manual_seed(0)
    q, p, n = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    n[0] = p[1]  # query 1's positive also appears as a negative
    exclude = torch.zeros(3, 6, dtype=torch.bool)
    exclude[1, 3] = True
    exclude[2, 2] = True  # excluding a query's own target is ignored
    masked = contrastive_loss_per_example(q, p, n, scale=10.0, exclude=exclude)
    plain = contrastive_loss_per_example(q, p, n, scale=10.0)
    assert masked[0] == plain[0] and masked[2] == plain[2] and masked[1] < plain[1]
    qn = torch.nn.functional.normalize(q[1], dim=-1)
    logits = [10 * float(qn @ torch.nn.functional.normalize(c, dim=-1)) for c in (p[0], p[1], p[2], n[1], n[2])]
    assert masked[1].item() == pytest.approx(-logits[1] + math.log(sum(math.exp(x) for x in logits)), rel=1e-5)
    assert ContrastiveLoss(scale=10.0)(q, p, n, exclude=exclude).item() == pytest.approx(masked.mean().item())


def test_the_trainer_masks_a_positive_repeated_as_another_triplets_negative():
    batch = triplets(8)
    batch[3] = Triplet(batch[3].query, batch[3].positive, negative=batch[5].positive, source="toy")
    encoder = tiny_encoder("llama", 2, seed=0, max_length=40)
    trainer = Trainer(encoder, batch, build_config(steps=1, batch_size=8, warmup_steps=1, mask_duplicates=True))
    mask = trainer._false_negatives()
    order = trainer.sampler.global_batch_at(0)
    where_5, where_3 = order.index(5), order.index(3)
    expected = torch.zeros(8, 16, dtype=torch.bool)
    expected[torch.arange(8), torch.arange(8)] = True  # each positive is its own query's (kept by the loss)
    expected[where_5, 8 + where_3] = True  # triplet 3's negative is triplet 5's positive
    assert torch.equal(mask, expected)
    assert json.dumps(trainer.train_step()["loss"])
