"""One training step of the paper's recipe, and the state a checkpoint must hold to repeat the next one.

A step embeds this rank's queries, positives and hard negatives in a few length-sorted forward passes
(each text with its own instruction, which is attended to but not pooled), scores them with the InfoNCE
loss against the candidates gathered from all ranks, and takes one AdamW step. Under DDP, the averaged gradients are
those of the single-process loss over the global batch (see ``l3prune.losses``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.parallel import DistributedDataParallel

from l3prune.data import SourceBatchSampler, Triplet
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.losses import ContrastiveLoss, DistillationLoss
from l3prune.training import distributed
from l3prune.training.adapters import load_trainable_state, prepare_trainable, trainable_state
from l3prune.training.checkpoint import rng_state, set_rng_state
from l3prune.training.config import TrainConfig
from l3prune.training.distributed import DistEnv
from l3prune.training.grad_cache import Piece, cached_backward, in_batch_order
from l3prune.training.length_chunks import TRAIN_CHUNKS, length_sorted_chunks
from l3prune.training.teacher import TeacherTable

logger = logging.getLogger(__name__)

#: Widest batch (tokens) for which CPU bf16 training uses the math attention kernel (see ``Trainer._precision``).
MATH_ATTENTION_MAX_LENGTH = 128


class NonFiniteLossError(L3PruneError):
    """The loss or the gradient norm became NaN or infinite; training stops before anything is saved."""


@dataclass
class WarmupSchedule:
    """Learning-rate factor at step s: linear warm-up to 1, then linear decay toward 0 (or constant).

    Like the Hugging Face Trainer's "linear" schedule that the paper's recipe uses, except that step 0
    already gets 1/warmup of the peak instead of a learning rate of 0. A plain object rather than a lambda, so ``LambdaLR.state_dict`` records its settings.
    """

    warmup: int
    steps: int
    kind: str = "linear"

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup  # the first step already learns (1 / warmup of the peak)
        if self.kind == "constant" or self.steps <= self.warmup:
            return 1.0
        return max(0.0, (self.steps - step) / (self.steps - self.warmup))


def triplet_texts(triplets: list[Triplet]) -> tuple[list[tuple[str | None, str]], ...]:
    """(instruction, text) pairs for the queries, positives and negatives of a batch."""
    queries = [(t.query_instruction, t.query) for t in triplets]
    positives = [(t.doc_instruction, t.positive) for t in triplets]
    negatives = [(t.doc_instruction, t.negative) for t in triplets]
    return queries, positives, negatives


class Trainer:
    """Holds the trainable encoder, optimizer, scheduler and loss of one run; ``step()`` does one update."""

    def __init__(self, encoder: LLMEncoder, triplets: list[Triplet], config: TrainConfig,
                 env: DistEnv | None = None, teacher: TeacherTable | None = None) -> None:
        self.encoder, self.triplets, self.config = encoder, triplets, config
        if config.distills and teacher is None:
            raise L3PruneError(f"the recipe distils from {config.teacher!r}; pass its embeddings as teacher=TeacherTable")
        self.teacher = teacher if config.distills else None
        self.distill_fn = DistillationLoss(config.distill_loss, config.distill_temperature)
        self.env = env or DistEnv(device=str(encoder.device))
        self.sampler = SourceBatchSampler(triplets, config.batch_size, seed=config.seed,
                                          world_size=self.env.world_size, rank=self.env.rank)
        torch.manual_seed(config.seed)  # the same LoRA initialisation on every rank
        self.params = prepare_trainable(encoder, config)
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, WarmupSchedule(config.effective_warmup, config.steps, config.schedule))
        self.loss_fn = ContrastiveLoss(scale=config.loss_scale)
        encoder.train()
        self.module: torch.nn.Module = encoder
        if self.env.distributed:
            device_ids = [self.env.local_rank] if self.env.device.startswith("cuda") else None
            self.module = DistributedDataParallel(encoder, device_ids=device_ids)  # also syncs rank 0's weights
        torch.manual_seed(config.seed + self.env.rank)  # each rank its own dropout stream
        self.step = 0  # optimizer steps done

    def embed(self, texts: list[tuple[str | None, str]]) -> torch.Tensor:
        return self._forward(self.encoder.collator.tokenize(texts))

    def embed_triplets(self, batch: list[Triplet]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, positives and negatives together, in length-sorted forward passes (``_pieces``): a few larger
        matmuls instead of one per kind of text, with far less padding than one pass (a text's embedding does not
        depend on the batch it is in, see ``LLMEncoder.model_inputs``; ``length_chunks`` has the figures)."""
        pieces = self._pieces(batch)
        embeddings = in_batch_order(torch.cat([self._forward(features) for _, features in pieces]), pieces)
        q, p, n = embeddings.split(len(batch))
        return q, p, n  # (b, dim) each

    def _pieces(self, batch: list[Triplet]) -> list[Piece]:
        """The batch's texts as length-sorted forward passes: ``TRAIN_CHUNKS`` of them, or, with gradient caching,
        enough that none holds more than ``mini_batch_size`` triplets' texts."""
        queries, positives, negatives = triplet_texts(batch)
        features = self.encoder.collator.tokenize(queries + positives + negatives)
        passes = TRAIN_CHUNKS
        if self.cached:
            passes = max(TRAIN_CHUNKS, math.ceil(len(batch) / self.config.mini_batch_size))
        return length_sorted_chunks(features, passes, self.encoder.settings.padding_side)

    @property
    def cached(self) -> bool:
        """Whether steps embed the batch in pieces with gradient caching (a mini batch smaller than this rank's)."""
        m = self.config.mini_batch_size
        return m is not None and m < self.sampler.local_batch_size

    def _false_negatives(self) -> torch.Tensor:
        """(b, 2 * global batch) bool: for each of this rank's queries, the gathered candidates ``[p; n]`` whose
        (instruction, text) is the query's own positive, which the loss must not push away."""
        batch = [self.triplets[i] for i in self.sampler.global_batch_at(self.step)]
        candidates = [(t.doc_instruction, t.positive) for t in batch] + [(t.doc_instruction, t.negative) for t in batch]
        start = self.env.rank * self.sampler.local_batch_size
        mine = candidates[start : start + self.sampler.local_batch_size]
        return torch.tensor([[c == target for c in candidates] for target in mine])  # (b, 2 * B)

    def _forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        with self._precision(features["input_ids"].shape[1]):
            return self.module(features)  # (len(texts), dim)

    def _precision(self, width: int) -> contextlib.ExitStack:
        """How a forward pass computes on bf16 base weights (fp32 weights: nothing changes).

        - Autocast to bf16, with peft's cast of each adapter's input to fp32 switched off: the fp32 LoRA
          weights are cast to bf16 for their matmuls (they are tiny), the activations stay bf16, and the
          gradients still land in the fp32 adapters. Casting the activations instead cost 18k copies per two
          steps and kept fp32 copies of every adapter input for the backward pass.
        - On the CPU, for batches up to ``MATH_ATTENTION_MAX_LENGTH`` tokens wide, the math SDPA kernel: torch's
          CPU flash kernel is fast forward, but its bf16 backward is slow: forward and backward took 84 ms where
          math took 42 (48 texts x 9 heads x 64 tokens) and 200 against 107 at 128; from 256 tokens on, flash is
          faster (378 against 521 ms) and needs far less memory, so it stays (``benchmarks/investigations/train_step_parts.py``).
        """
        stack = contextlib.ExitStack()
        device, dtype = self.encoder.device, self.encoder.dtype
        if dtype == torch.bfloat16:
            from peft.helpers import disable_input_dtype_casting

            stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
            stack.enter_context(disable_input_dtype_casting(self.encoder.model))
            if device.type == "cpu" and width <= MATH_ATTENTION_MAX_LENGTH:
                stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        return stack

    def train_step(self) -> dict[str, Any]:
        """One optimizer step on the batch of ``self.step``; returns its log row."""
        start = time.perf_counter()
        indices = self.sampler.batch_at(self.step)
        batch = [self.triplets[i] for i in indices]
        pieces = self._pieces(batch)
        exclude = self._false_negatives() if self.config.mask_duplicates else None
        terms: dict[str, torch.Tensor] = {}

        def loss_of(embeddings: torch.Tensor) -> torch.Tensor:
            q, p, n = embeddings.split(len(batch))  # (b, dim) each
            if self.teacher is not None:  # the teacher's embeddings were computed once, before training
                terms["distill"] = self.distill_fn((q, p, n), self.teacher.lookup(indices))
            if self.config.distill_only:
                loss = terms["distill"]
            else:
                loss = self.loss_fn(q, p, n, exclude=exclude)
                if "distill" in terms:
                    loss = loss + self.config.distill_weight * terms["distill"]
            self._stop_if_nonfinite(loss, "loss")
            return loss

        self.optimizer.zero_grad(set_to_none=True)
        if self.cached:  # the exact gradient, one piece's activations at a time
            no_sync = self.module.no_sync if self.env.distributed else None
            loss = cached_backward(self._forward, pieces, loss_of, no_sync=no_sync)
        else:
            loss = loss_of(in_batch_order(torch.cat([self._forward(features) for _, features in pieces]), pieces))
            loss.backward()
        distill = terms.get("distill")
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        self._stop_if_nonfinite(grad_norm, "gradient norm")
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        row = {
            "step": self.step,
            "loss": float(distributed.mean(self.env, loss.detach().float())),  # the global-batch loss
            "lr": lr,
            "grad_norm": float(grad_norm),
            "seconds": time.perf_counter() - start,
        }
        if distill is not None:
            row["distill"] = float(distributed.mean(self.env, distill.detach().float()))
        return row

    def _stop_if_nonfinite(self, value: torch.Tensor, what: str) -> None:
        value = value.detach()
        bad = not bool(torch.isfinite(value).all())
        if distributed.any_rank(self.env, bad, value.device):
            raise NonFiniteLossError(
                f"the {what} became {float(value)} at step {self.step + 1} (not finite on at least one rank); "
                "training stopped and no model was saved. Lower --lr, raise --warmup-steps, use fp32 "
                "(--dtype fp32), or resume from an earlier checkpoint"
            )

    # ------------------------------------------------------------------ checkpoint state
    def state(self) -> dict[str, Any]:
        """Everything needed to continue as if never stopped; collective (every rank must call it)."""
        return {
            "trainable": trainable_state(self.encoder.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": distributed.gather(self.env, rng_state()),  # one entry per rank
            "world_size": self.env.world_size,
            "config": self.config.to_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; whether it may be resumed at all is ``RunRecord.check_resume``'s call."""
        load_trainable_state(self.encoder.model, state["trainable"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][self.env.rank])
        self.step = int(state["step"])
