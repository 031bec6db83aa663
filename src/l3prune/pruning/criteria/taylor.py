"""Shortened LLaMA's Taylor+ criterion: first-order estimate of the LM loss change if a block vanished.

A block's importance is sum over its weights of |w * dL/dw| (L: next-token loss on the calibration
text, gradients summed over batches), the per-weight magnitudes Shortened LLaMA sums; the "+" keeps
the first four and the last two blocks out of reach, because Taylor scores undervalue them (Kim et
al., 2024). When a size needs more blocks than the others, protected blocks go last, lowest first.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from l3prune.architectures import decoder_layers
from l3prune.pruning.criteria import Selection, register
from l3prune.pruning.criteria.calibration import CalibrationCriterion, causal_lm, drop_lowest, lm_loss

KEEP_FIRST, KEEP_LAST = 4, 2


@register("taylor")
class TaylorPlus(CalibrationCriterion):
    def measure(self, encoder, batches: list[dict]) -> list[float]:
        lm = causal_lm(encoder)
        blocks = decoder_layers(encoder.model)
        trainable = {p: p.requires_grad for p in lm.parameters()}
        for p in lm.parameters():  # only the blocks' gradients are needed; skip the embedding's
            p.requires_grad_(False)
        for p in blocks.parameters():
            p.requires_grad_(True)
            p.grad = None
        tokens = sum(int(f["attention_mask"].sum()) for f in batches)
        try:
            with torch.enable_grad():
                for features in tqdm(batches, desc="taylor", unit="batch", leave=False):
                    nll, _ = lm_loss(lm, encoder, features)
                    (nll / tokens).backward()  # grads of the mean token loss over all calibration text
            scores = [
                float(sum((p.detach() * p.grad).abs().sum() for p in block.parameters() if p.grad is not None))
                for block in blocks
            ]
        finally:
            for p, flag in trainable.items():
                p.grad = None
                p.requires_grad_(flag)
        return scores

    def select(self, encoder, num_layers, *, configuration=None, data=None) -> Selection:
        num_layers = self.check_size(encoder, num_layers)
        total = encoder.num_layers
        scores = self.measurement(encoder, data)
        protected = sorted({*range(min(KEEP_FIRST, total)), *range(max(total - KEEP_LAST, 0), total)})
        keep = drop_lowest(scores, total - num_layers, protected=protected)
        dropped = sorted(set(range(total)) - set(keep))
        note = ""
        if len(dropped) > total - len(protected):
            note = f"; the size needed {len(dropped)} blocks, so some of the protected ones went too"
        reason = (f"Shortened LLaMA Taylor+ (sum |w * dL/dw| per block, LM loss on {self.describe_data()}; "
                  f"first {KEEP_FIRST} and last {KEEP_LAST} blocks protected): dropped the {len(dropped)} "
                  f"least important blocks {dropped}{note}")
        return Selection(keep, reason, {"taylor_importance": scores})
