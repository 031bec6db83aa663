from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from l3prune.errors import L3PruneError
from l3prune.losses import ContrastiveLoss, contrastive_loss_per_example


def test_matches_hand_computed_cross_entropy():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    p = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    n = torch.tensor([[-1.0, 0.0], [3.0, 0.0]])
    scale = 2.0
    root = 1 / math.sqrt(2)
    cosines = [[root, 0.0, -1.0, 1.0], [root, 1.0, 0.0, 0.0]]  # query i vs [p0, p1, n0, n1]
    expected = []
    for i, row in enumerate(cosines):
        logits = [scale * c for c in row]
        expected.append(-logits[i] + math.log(sum(math.exp(x) for x in logits)))
    per_example = contrastive_loss_per_example(q, p, n, scale=scale)
    assert per_example.tolist() == pytest.approx(expected, rel=1e-5)
    assert ContrastiveLoss(scale=scale)(q, p, n).item() == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_aligned_embeddings_score_lower_than_random_and_scale_matters():
    torch.manual_seed(0)
    q = torch.randn(16, 32)
    aligned = ContrastiveLoss()(q, q + 0.05 * torch.randn(16, 32), torch.randn(16, 32))
    random = ContrastiveLoss()(q, torch.randn(16, 32), torch.randn(16, 32))
    assert aligned < 0.1 < random
    p, n = torch.randn(16, 32), torch.randn(16, 32)
    assert ContrastiveLoss(scale=20.0)(q, p, n) != pytest.approx(ContrastiveLoss(scale=50.0)(q, p, n).item())


def test_every_hard_negative_of_the_batch_is_a_candidate():
    q = torch.eye(4)  # orthogonal queries
    alone = ContrastiveLoss()(q, q.clone())
    # Query i's negative is orthogonal to it, but query i+1's negative equals query i: a tie with
    # its own positive, so the loss becomes log 2 only if other rows' negatives are candidates.
    tied = ContrastiveLoss()(q, q.clone(), q.roll(-1, dims=0))
    assert alone.item() < 1e-6
    assert tied.item() == pytest.approx(math.log(2), abs=1e-6)


def test_label_offset_picks_the_rows_positive_and_gradients_flow():
    torch.manual_seed(1)
    q, p, n = (torch.randn(6, 8, requires_grad=True) for _ in range(3))
    whole = contrastive_loss_per_example(q, p, n)
    second_half = contrastive_loss_per_example(q[3:], p, n, label_offset=3)
    assert torch.allclose(whole[3:], second_half)
    ContrastiveLoss()(q, p, n).backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (q, p, n))


def test_bfloat16_inputs_give_a_float32_loss():
    torch.manual_seed(2)
    q, p = torch.randn(4, 8), torch.randn(4, 8)
    low = contrastive_loss_per_example(q.bfloat16(), p.bfloat16())
    assert low.dtype == torch.float32
    assert torch.allclose(low, contrastive_loss_per_example(q, p), atol=0.3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ContrastiveLoss(scale=0.0), "must be positive"),
        (lambda: ContrastiveLoss()(torch.ones(2, 4), torch.ones(3, 4)), "same"),
        (lambda: contrastive_loss_per_example(torch.ones(2, 4), torch.ones(2, 5)), "one dim"),
        (lambda: contrastive_loss_per_example(torch.ones(2, 4), torch.ones(3, 4), label_offset=2), "label_offset 2"),
    ],
)
def test_bad_inputs_say_what_to_fix(call, message):
    with pytest.raises(L3PruneError, match=message):
        call()


# --- two CPU processes (gloo) against one process on the same global batch -------------------

WORLD, LOCAL, DIM_IN, DIM = 2, 3, 5, 4


def _global_batch() -> tuple[nn.Linear, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Linear(DIM_IN, DIM), torch.randn(3, WORLD * LOCAL, DIM_IN)  # (q/p/n, global batch, in)


def _encode(model: nn.Module, texts: torch.Tensor) -> list[torch.Tensor]:
    return list(model(texts.reshape(-1, DIM_IN)).reshape(3, -1, DIM))  # q, p, n: (batch, dim) each


def _reference() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Single-process loss, per-example losses and parameter gradients on the whole global batch."""
    model, texts = _global_batch()
    q, p, n = _encode(model, texts)
    loss = ContrastiveLoss(gather_across_ranks=False)(q, p, n)
    loss.backward()
    per_example = contrastive_loss_per_example(q.detach(), p.detach(), n.detach(), scale=50.0)
    return loss.detach(), per_example, [param.grad for param in model.parameters()]


def _worker(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        loss_ref, per_example_ref, grads_ref = _reference()
        model, texts = _global_batch()
        ddp = DistributedDataParallel(model)
        q, p, n = _encode(ddp, texts[:, rank * LOCAL : (rank + 1) * LOCAL])  # this rank's slice
        loss = ContrastiveLoss()(q, p, n)
        loss.backward()  # DDP averages parameter gradients over ranks
        own = per_example_ref[rank * LOCAL : (rank + 1) * LOCAL].mean()
        torch.testing.assert_close(loss.detach(), own, rtol=1e-5, atol=1e-6)
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        torch.testing.assert_close(mean_loss / WORLD, loss_ref, rtol=1e-5, atol=1e-6)
        for param, grad_ref in zip(model.parameters(), grads_ref):
            torch.testing.assert_close(param.grad, grad_ref, rtol=1e-4, atol=1e-6)
        # As training does: free DDP (its reducer holds the group) and wait for the other rank before the group
        # goes. Tearing it down with DDP alive and the other rank mid-exit aborted rank 0 once in gloo's C++.
        del ddp
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_match_one_process_on_the_global_batch():
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)
