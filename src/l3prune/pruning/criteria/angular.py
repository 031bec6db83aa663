"""Gromov et al.'s angular distance: drop the contiguous block whose input and output point most alike.

For a block of n layers starting at l, d(l, n) = arccos(cos(x_l, x_{l+n})) / pi on the last token of
each calibration text, averaged over texts; the block with the smallest d is removed ("The
Unreasonable Ineffectiveness of the Deeper Layers", 2024; arcee-ai/PruneMe). Unlike PruneMe we use
the raw residual stream for every layer (PruneMe's last entry has the final norm applied) and allow
the block to start at layer 0, as the paper's x_l does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from l3prune.pruning.criteria import Selection, register
from l3prune.pruning.criteria.calibration import CalibrationCriterion, layer_states


@register("angular")
class AngularDistance(CalibrationCriterion):
    @torch.inference_mode()
    def measure(self, encoder, batches: list[dict]) -> torch.Tensor:
        """(layers + 1, texts, dim) last-token states; any block size is then cheap to score."""
        rows = []
        for features in tqdm(batches, desc="angular distance", unit="batch", leave=False):
            states = layer_states(encoder, features)  # (layers + 1) x (batch, seq, dim)
            mask = features["attention_mask"].to(encoder.device)  # (batch, seq)
            positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)  # (batch, seq)
            last = torch.where(mask.bool(), positions, -1).amax(1)  # (batch,)
            batch = torch.arange(mask.shape[0], device=mask.device)
            rows.append(torch.stack([s[batch, last].float().cpu() for s in states]))  # (layers + 1, batch, dim)
        return torch.cat(rows, dim=1)  # (layers + 1, texts, dim)

    @staticmethod
    def distances(states: torch.Tensor, block: int) -> list[float]:
        """Mean angular distance between x_l and x_{l+block} for every start l = 0..L - block."""
        out = []
        for start in range(states.shape[0] - block):
            cos = F.cosine_similarity(states[start], states[start + block], dim=-1).clamp(-1, 1)  # (texts,)
            out.append(float((torch.arccos(cos) / math.pi).mean()))
        return out

    def select(self, encoder, num_layers, *, configuration=None, data=None) -> Selection:
        num_layers = self.check_size(encoder, num_layers)
        block = encoder.num_layers - num_layers
        if block == 0:
            return Selection(list(range(num_layers)), "nothing to drop: the size is the whole model")
        scores = self.distances(self.measurement(encoder, data), block)
        start = min(range(len(scores)), key=lambda i: (scores[i], i))
        keep = [i for i in range(encoder.num_layers) if not start <= i < start + block]
        reason = (f"angular distance (Gromov et al.; last token of {self.describe_data()}): dropped the "
                  f"contiguous block of {block} layers {start}..{start + block - 1}, whose input and output "
                  f"differ least (d = {scores[start]:.4f})")
        return Selection(keep, reason, {f"angular_distance_block_{block}": scores})
