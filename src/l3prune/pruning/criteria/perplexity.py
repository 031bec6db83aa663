"""Shortened LLaMA's PPL criterion: drop the blocks whose removal alone hurts language modelling least.

Each block is removed on its own (made the identity, which equals removal without a KV cache) and
the LM perplexity on the calibration text is measured; the blocks with the lowest perplexity-
without-them go first, in one shot (Kim et al., 2024, "Shortened LLaMA"). Needs the LM head: see
``calibration.causal_lm``.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from l3prune.pruning.criteria import Selection, register
from l3prune.pruning.criteria.calibration import CalibrationCriterion, causal_lm, drop_lowest, lm_loss, skipping


@register("perplexity")
class Perplexity(CalibrationCriterion):
    @torch.inference_mode()
    def measure(self, encoder, batches: list[dict]) -> dict[str, float | list[float]]:
        lm = causal_lm(encoder)

        def perplexity() -> float:
            nll, tokens = 0.0, 0
            for features in batches:
                batch_nll, batch_tokens = lm_loss(lm, encoder, features)
                nll, tokens = nll + float(batch_nll), tokens + batch_tokens
            return math.exp(nll / tokens)

        full = perplexity()
        without = []
        for index in tqdm(range(encoder.num_layers), desc="perplexity without each block", unit="block"):
            with skipping(encoder, index):
                without.append(perplexity())
        return {"full": full, "without": without}

    def select(self, encoder, num_layers, *, configuration=None, data=None) -> Selection:
        num_layers = self.check_size(encoder, num_layers)
        measured = self.measurement(encoder, data)
        scores = measured["without"]
        keep = drop_lowest(scores, encoder.num_layers - num_layers)
        dropped = sorted(set(range(encoder.num_layers)) - set(keep))
        reason = (f"Shortened LLaMA PPL (LM perplexity with each block removed alone, on "
                  f"{self.describe_data()}; full model {measured['full']:.2f}): dropped the {len(dropped)} "
                  f"blocks whose removal raised it least {dropped}")
        return Selection(keep, reason, {"perplexity_without_block": scores})
