"""ShortGPT's Block Influence: how much a layer turns its input, 1 - cos(input, output), per token.

BI_l = 1 - mean over calibration tokens of cos(x_l, x_{l+1}), where x_l enters layer l and x_{l+1}
leaves it (raw residual stream, padding excluded). A layer that barely changes the stream has low BI
and is dropped first (Men et al., 2024, "ShortGPT: Layers in Large Language Models are More
Redundant Than You Expect").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from l3prune.pruning.criteria import Selection, register
from l3prune.pruning.criteria.calibration import CalibrationCriterion, drop_lowest, layer_states


@register("block_influence")
class BlockInfluence(CalibrationCriterion):
    @torch.inference_mode()
    def measure(self, encoder, batches: list[dict]) -> list[float]:
        total = torch.zeros(encoder.num_layers, dtype=torch.float64)  # (layers,) summed cosines
        tokens = 0
        for features in tqdm(batches, desc="block influence", unit="batch", leave=False):
            states = layer_states(encoder, features)  # (layers + 1) x (batch, seq, dim)
            real = features["attention_mask"].to(encoder.device).bool()  # (batch, seq)
            for layer in range(encoder.num_layers):
                cos = F.cosine_similarity(states[layer][real].float(), states[layer + 1][real].float(), dim=-1)
                total[layer] += cos.double().sum()  # cos: (tokens,)
            tokens += int(real.sum())
        return (1 - total / tokens).tolist()

    def select(self, encoder, num_layers, *, configuration=None, data=None) -> Selection:
        num_layers = self.check_size(encoder, num_layers)
        scores = self.measurement(encoder, data)
        keep = drop_lowest(scores, encoder.num_layers - num_layers)
        dropped = sorted(set(range(encoder.num_layers)) - set(keep))
        reason = (f"ShortGPT block influence (1 - cos(layer input, output), mean over tokens of "
                  f"{self.describe_data()}): dropped the {len(dropped)} least influential layers {dropped}")
        return Selection(keep, reason, {"block_influence": scores})
