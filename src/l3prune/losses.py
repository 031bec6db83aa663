"""The paper's contrastive loss: InfoNCE over cosine similarity x scale, in-batch plus hard negatives.

Each query's candidates are every positive and every hard negative of the (global) batch; its target
is its own positive. This is sentence-transformers' MultipleNegativesRankingLoss with hard negatives
(scale 20 there, 50 = temperature 0.02 here, as in the paper).

Across ranks (DDP), rank ``r`` embeds its slice of the global batch, gathers all positives and
negatives, and scores only its OWN ``b`` queries against all ``W * b`` candidates, with labels offset by
``r * b``. The gather's backward sums every rank's gradient for this rank's rows, because every rank's
queries are scored against them. So each rank's gradient is that of ``sum_r L_r``, and DDP's average over
``W`` ranks gives ``(1 / W) * sum_r (1 / b) * sum_{i in r} l_i = (1 / (W b)) * sum_i l_i``: exactly the
gradient of the single-process mean loss over the global batch. The loss each rank reports is the mean
over its own queries; the mean over ranks is the single-process loss.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from l3prune.errors import L3PruneError


def contrastive_loss_per_example(
    q: Tensor, p: Tensor, n: Tensor | None = None, *, scale: float = 50.0, label_offset: int = 0,
    exclude: Tensor | None = None,
) -> Tensor:
    """Cross-entropy of each query against the candidates ``[p; n]``; query ``i`` targets ``p[i + label_offset]``.

    ``exclude`` (``(len(q), P + N)`` bool) drops candidates from a query's softmax: the false negatives, a copy of
    its own positive text elsewhere in the batch. Returns shape ``(len(q),)``, in float32 (bf16 similarities x 50
    would be too coarse), so that the scan can average the very same loss that training minimises.
    """
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1] or (n is not None and n.shape[1:] != p.shape[1:]):
        shapes = (tuple(q.shape), tuple(p.shape), None if n is None else tuple(n.shape))
        raise L3PruneError(f"q, p and n must be (batch, dim) with one dim, got shapes {shapes}")
    if not 0 <= label_offset <= p.shape[0] - q.shape[0]:
        raise L3PruneError(
            f"label_offset {label_offset} puts {q.shape[0]} queries outside the {p.shape[0]} positives; "
            "pass the offset of this rank's queries in the gathered batch"
        )
    candidates = p if n is None else torch.cat([p, n])  # (P + N, dim)
    q = F.normalize(q.float(), dim=-1)  # (b, dim)
    candidates = F.normalize(candidates.float(), dim=-1)  # (P + N, dim)
    logits = scale * q @ candidates.T  # (b, P + N)
    labels = torch.arange(q.shape[0], device=q.device) + label_offset  # (b,)
    if exclude is not None:
        exclude = exclude.to(logits.device).clone()
        exclude[torch.arange(q.shape[0]), labels] = False  # a query's own positive always stays
        logits = logits.masked_fill(exclude, float("-inf"))  # (b, P + N)
    return F.cross_entropy(logits, labels, reduction="none")  # (b,)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward returns the SUM over ranks of the gradient for our rows.

    Implemented with all_reduce + slice (a reduce-scatter) because gloo has no reduce_scatter and the
    torch.distributed.nn helpers are deprecated in recent torch releases.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows, ctx.rank = x.shape[0], dist.get_rank()
        return torch.cat(parts)  # (world * b, dim)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)  # (world * b, dim)
        dist.all_reduce(grad)  # every rank's loss depends on our rows
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]  # (b, dim)


def _distributed_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class ContrastiveLoss(nn.Module):
    """Mean InfoNCE over this rank's queries against all (gathered) positives and hard negatives."""

    def __init__(self, scale: float = 50.0, gather_across_ranks: bool = True) -> None:
        super().__init__()
        if scale <= 0:
            raise L3PruneError(f"loss scale must be positive (the paper uses 50), got {scale}")
        self.scale = scale
        self.gather_across_ranks = gather_across_ranks

    def forward(self, q: Tensor, p: Tensor, n: Tensor | None = None, exclude: Tensor | None = None) -> Tensor:
        """``exclude``: candidates (of the gathered ``[p; n]``) to drop from each query's softmax, see
        :func:`contrastive_loss_per_example`."""
        if p.shape != q.shape or (n is not None and n.shape != q.shape):
            shapes = (tuple(q.shape), tuple(p.shape), None if n is None else tuple(n.shape))
            raise L3PruneError(f"q, p and n must have the same (batch, dim) shape, got {shapes}")
        label_offset = 0
        world_size = _distributed_world_size() if self.gather_across_ranks else 1
        if world_size > 1:
            sizes = [torch.zeros(1, dtype=torch.long, device=q.device) for _ in range(world_size)]
            dist.all_gather(sizes, torch.tensor([q.shape[0]], device=q.device))
            if len({int(size) for size in sizes}) != 1:
                raise L3PruneError(
                    f"ranks hold different batch sizes {[int(s) for s in sizes]}; give every rank the same "
                    "number of triplets (SourceBatchSampler does)"
                )
            label_offset = dist.get_rank() * q.shape[0]
            p = _GatherWithGrad.apply(p)  # (world * b, dim)
            n = None if n is None else _GatherWithGrad.apply(n)  # (world * b, dim)
        per_example = contrastive_loss_per_example(q, p, n, scale=self.scale, label_offset=label_offset,
                                                   exclude=exclude)  # (b,)
        return per_example.mean()

    def extra_repr(self) -> str:
        return f"scale={self.scale}, gather_across_ranks={self.gather_across_ranks}"



def embedding_distillation_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean cosine distance between L2-normalised student and teacher embeddings (equal dimensions).

    ``1 - cos`` is half the squared distance of the unit vectors, so this is the MSE of the normalised
    embeddings up to a factor: the self-distillation term, where a pruned student starts in its teacher's space.
    """
    if student.shape != teacher.shape:
        raise L3PruneError(f"the embedding term needs equal shapes, got student {tuple(student.shape)} and teacher "
                           f"{tuple(teacher.shape)}; use the similarity term for a teacher of another dimension")
    cosine = F.cosine_similarity(student.float(), teacher.float(), dim=-1)  # (n,)
    return (1 - cosine).mean()


def similarity_distillation_loss(student_q: Tensor, student_c: Tensor, teacher_q: Tensor, teacher_c: Tensor, *,
                                 temperature: float) -> Tensor:
    """KL(teacher || student) between the softmax over each query's candidates, cosine / ``temperature``.

    Dimension-free: each side compares only its own embeddings, so any teacher works. The candidates are the
    local batch's positives and negatives (under DDP, each rank's own).
    """
    def log_probs(q: Tensor, c: Tensor) -> Tensor:
        q, c = F.normalize(q.float(), dim=-1), F.normalize(c.float(), dim=-1)  # (b, d), (m, d)
        return F.log_softmax(q @ c.T / temperature, dim=-1)  # (b, m)

    student, teacher = log_probs(student_q, student_c), log_probs(teacher_q, teacher_c)  # (b, m) each
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean")


class DistillationLoss(nn.Module):
    """The distillation term of a batch of triplets: ``embedding`` over every text, or ``similarity`` of each
    query over the batch's positives and negatives."""

    KINDS = ("embedding", "similarity")  # ``embedding`` needs the teacher's dimension; ``similarity`` any teacher

    def __init__(self, kind: str = "similarity", temperature: float = 0.05) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise L3PruneError(f"unknown distillation loss {kind!r}; choose from {list(self.KINDS)}")
        if not temperature > 0:
            raise L3PruneError(f"the distillation temperature must be positive, got {temperature}")
        self.kind, self.temperature = kind, temperature

    def forward(self, student: tuple[Tensor, Tensor, Tensor], teacher: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        sq, sp, sn = student  # (b, d_student) each
        tq, tp, tn = (t.to(sq.device) for t in teacher)  # (b, d_teacher) each
        if self.kind == "embedding":
            return embedding_distillation_loss(torch.cat([sq, sp, sn]), torch.cat([tq, tp, tn]))
        return similarity_distillation_loss(sq, torch.cat([sp, sn]), tq, torch.cat([tp, tn]),
                                            temperature=self.temperature)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, temperature={self.temperature}"
