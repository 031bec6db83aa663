from __future__ import annotations

import pytest
import torch

from l3prune.errors import L3PruneError
from l3prune.pooling import pool

# One row, left-padded: [pad, instr, t1, t2, t3] with text tokens at positions 2..4.
HIDDEN = torch.tensor([[[100.0], [50.0], [1.0], [2.0], [4.0]]])
MASK = torch.tensor([[0, 0, 1, 1, 1]])


def test_mean_ignores_padding_and_instruction():
    assert pool(HIDDEN, MASK, "mean").item() == pytest.approx(7 / 3)


def test_weighted_mean_counts_from_the_first_text_token():
    # weights 1, 2, 3 over the text, whatever the absolute positions are
    assert pool(HIDDEN, MASK, "weighted_mean").item() == pytest.approx((1 * 1 + 2 * 2 + 3 * 4) / 6)


def test_weighted_mean_is_the_same_with_right_padding():
    right = torch.tensor([[[1.0], [2.0], [4.0], [9.0], [9.0]]])
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    assert pool(right, mask, "weighted_mean").item() == pytest.approx(pool(HIDDEN, MASK, "weighted_mean").item())


def test_last_token_and_bos_pick_the_span_ends():
    assert pool(HIDDEN, MASK, "last_token").item() == 4.0
    assert pool(HIDDEN, MASK, "eos").item() == 4.0
    assert pool(HIDDEN, MASK, "bos").item() == 1.0


def test_unknown_mode_is_rejected():
    with pytest.raises(L3PruneError, match="choose from"):
        pool(HIDDEN, MASK, "max")


def test_weighted_mean_from_instruction_counts_from_the_first_real_token():
    # [pad, instr, t1, t2, t3]: the instruction is real token 1, so the text gets weights 2, 3, 4
    attention = torch.tensor([[0, 1, 1, 1, 1]])
    got = pool(HIDDEN, MASK, "weighted_mean_from_instruction", attention).item()
    assert got == pytest.approx((2 * 1 + 3 * 2 + 4 * 4) / 9)
    no_instruction = torch.tensor([[0, 0, 1, 1, 1]])  # without one it is the paper's weighted mean
    assert pool(HIDDEN, MASK, "weighted_mean_from_instruction", no_instruction).item() == pytest.approx(
        pool(HIDDEN, MASK, "weighted_mean").item())
    with pytest.raises(L3PruneError, match="attention mask"):
        pool(HIDDEN, MASK, "weighted_mean_from_instruction")
