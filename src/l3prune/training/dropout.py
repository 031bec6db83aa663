"""LoRA dropout with a cheaper random mask: 16 random bits per element instead of one Bernoulli draw.

peft applies ``nn.Dropout`` to the input of every adapted projection, so a step on a 30-layer model
draws 630 masks of 1-2 M elements. On the CPU, ``torch.bernoulli_`` costs about 3.5 ms per 1024 x 576
mask, more than the bf16 matmul it guards (1.3 ms for the 1024 x 576 x 1536 projection), and it was
27% of a training step in the profile (``benchmarks/investigations/results/profile_train_step_*``). This module
draws full-range 64-bit integers from torch's own generator, so seeding and checkpoint/resume work
as before, and reads them as four 16-bit lanes: one draw serves four elements.

The price is that the drop probability is rounded to a multiple of 1/65536 (0.05 becomes 0.0500031);
``effective_p`` says what is used. On CUDA, and for inputs with few elements, plain dropout is used.
"""

from __future__ import annotations

import torch
from torch import nn

_LANES = 4  # int16 lanes per int64 draw
_LEVELS = 1 << 16
_SAME_WIDTH_INT = {torch.bfloat16: torch.int16, torch.float16: torch.int16, torch.float32: torch.int32,
                   torch.float64: torch.int64}


def _keep_and_scale(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` where ``keep``, else +0, times ``scale``. Multiplying the float's bits (as a same-width integer)
    by the 0/1 mask is one vectorised pass; ``torch.where`` and a bool-to-bf16 cast were 7-15x slower here."""
    bits = x.contiguous().view(_SAME_WIDTH_INT[x.dtype])
    return (bits * keep).view(x.dtype) * scale


class _KeepAndScale(torch.autograd.Function):
    """Dropout's forward and backward with the mask saved as bools (1 byte per element), not the input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return _keep_and_scale(x, keep, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return _keep_and_scale(grad, keep, ctx.scale), None, None


class PackedDropout(nn.Module):
    """Inverted dropout like ``nn.Dropout(p)``; on the CPU the mask comes from 16-bit lanes of int64 draws."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * _LEVELS)  # lanes below this (counted from the int16 minimum) are dropped

    @property
    def effective_p(self) -> float:
        return self.threshold / _LEVELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu" or x.dtype not in _SAME_WIDTH_INT:
            return nn.functional.dropout(x, self.p, training=True)
        draws = torch.empty((x.numel() + _LANES - 1) // _LANES, dtype=torch.int64).random_(-(1 << 63), None)
        lanes = draws.view(torch.int16)[: x.numel()].view(x.shape)
        keep = lanes >= self.threshold - (1 << 15)  # P(drop) = threshold / 65536 exactly
        return _KeepAndScale.apply(x, keep, 1.0 / (1.0 - self.effective_p))

    def extra_repr(self) -> str:
        return f"p={self.p} (effective {self.effective_p:.7f})"


def use_packed_dropout(model: nn.Module) -> int:
    """Replace every ``nn.Dropout`` inside peft's ``lora_dropout`` containers; returns how many were replaced."""
    replaced = 0
    for module in model.modules():
        container = getattr(module, "lora_dropout", None)
        if not isinstance(container, nn.ModuleDict):
            continue
        for name, dropout in list(container.items()):
            if isinstance(dropout, nn.Dropout) and dropout.p > 0:
                container[name] = PackedDropout(dropout.p)
                replaced += 1
    return replaced
