"""A sentence-transformers Pooling that pools exactly like ``LLMEncoder``, for the cases stock cannot.

Stock ``Pooling`` counts ``weightedmean`` weights from the first non-padding token and lets an
excluded prompt keep its weights, so after a BOS token or an instruction its weights are p+1..p+n;
the paper's are 1..n from the first *text* token. Stock ``mean`` also pools a BOS token when no
prompt is given. This subclass marks the text span itself (skipping the tokenizer's special prefix,
or the whole prompt, and its special suffix) and hands it to :func:`l3prune.pooling.pool`, the same
function the native encoder uses. The exporter uses it only when stock pooling would differ.

sentence-transformers 6 imports a module class outside its own namespace only with
``trust_remote_code=True``, even from an installed package, so a folder that uses this class loads
with ``SentenceTransformer(path, trust_remote_code=True)`` and needs ``l3prune`` installed.
"""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.sentence_transformer.modules import Pooling

from l3prune.pooling import pool

#: sentence-transformers' name of a pooling mode -> ours, for the modes this class reproduces.
ST_TO_L3PRUNE = {"mean": "mean", "weightedmean": "weighted_mean", "lasttoken": "last_token"}


class L3PrunePooling(Pooling):
    """Pool over the text tokens only: after ``prefix_length`` special tokens (or the prompt), before ``suffix_length``."""

    config_keys = [*Pooling.config_keys, "prefix_length", "suffix_length"]

    def __init__(
        self,
        embedding_dimension: int,
        pooling_mode: str = "weightedmean",
        include_prompt: bool = False,
        prefix_length: int = 0,
        suffix_length: int = 0,
    ) -> None:
        if pooling_mode not in ST_TO_L3PRUNE:
            raise ValueError(f"L3PrunePooling supports pooling_mode {sorted(ST_TO_L3PRUNE)}, got {pooling_mode!r}")
        super().__init__(embedding_dimension, pooling_mode=pooling_mode, include_prompt=include_prompt)
        self.prefix_length = int(prefix_length)
        self.suffix_length = int(suffix_length)

    def text_mask(self, attention_mask: torch.Tensor, prompt_length: int | None) -> torch.Tensor:
        """(batch, seq) 0/1 mask of the text tokens, for either padding side."""
        # The prompt is measured with the tokenizer's special prefix included, so it replaces it.
        skip = prompt_length if prompt_length and not self.include_prompt else self.prefix_length
        real = attention_mask.bool()  # (batch, seq)
        offset = attention_mask.cumsum(1) - 1  # (batch, seq): index among the real tokens
        length = attention_mask.sum(1, keepdim=True)  # (batch, 1)
        return (real & (offset >= skip) & (offset < length - self.suffix_length)).long()

    def forward(self, features: dict[str, torch.Tensor | Any], **kwargs) -> dict[str, torch.Tensor | Any]:
        if "cu_seq_lens_q" in features:
            raise ValueError(
                "L3PrunePooling needs padded inputs; load the model with unpad_inputs=False "
                "(model[0].unpad_inputs = False) when using flash attention"
            )
        prompt_length = features.get("prompt_length")
        if isinstance(prompt_length, torch.Tensor):  # (batch,) or (1,) in training, all equal
            prompt_length = int(prompt_length.flatten()[0].item())
        hidden = features["token_embeddings"]  # (batch, seq, dim)
        mask = self.text_mask(features["attention_mask"], prompt_length)  # (batch, seq)
        features["sentence_embedding"] = pool(hidden, mask, ST_TO_L3PRUNE[self.pooling_mode])  # (batch, dim)
        return features
