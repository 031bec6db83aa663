"""Run any l3prune encoder inside MTEB 2.x (``mteb.evaluate``), for the full benchmark.

MTEB hands the model a DataLoader of dicts with a ``text`` key and says which side it is
encoding (``prompt_type`` query / document / None for symmetric tasks). Following LLM2Vec, the
task instruction goes on queries and on symmetric-task texts, never on documents. Needs the
optional dependency: ``pip install l3prune[mteb]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import TextEncoder, encode_texts
from l3prune.evaluation.instructions import INSTRUCTIONS

try:
    from mteb.models.model_meta import ModelMeta
    from mteb.similarity_functions import cos_sim, pairwise_cos_sim
    from mteb.types import PromptType
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("l3prune.evaluation.mteb_adapter needs mteb>=2: pip install 'l3prune[mteb]'") from err

logger = logging.getLogger(__name__)


class MTEBEncoder:
    """Adapter from ``encode(texts, instruction=...)`` to MTEB 2.x's ``EncoderProtocol``.

    Instruction lookup for a task: ``instructions[task name]``, then the task's own
    ``metadata.prompt`` (a string, or a dict keyed by prompt type), else none.
    Similarity is cosine, as for every model the paper compares.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        name: str = "l3prune/encoder",
        *,
        instructions: Mapping[str, str] | None = None,
        revision: str | None = None,
        embed_dim: int | None = None,
    ) -> None:
        if not callable(getattr(encoder, "encode", None)):
            raise L3PruneError("MTEBEncoder needs an object with encode(texts, instruction=..., batch_size=...)")
        self.encoder = encoder
        self.instructions = dict(INSTRUCTIONS if instructions is None else instructions)
        full_name = name if "/" in name else f"l3prune/{name}"  # MTEB wants organisation/name
        self.mteb_model_meta = ModelMeta.create_empty(
            {
                "name": full_name,
                "revision": revision or "local",
                "embed_dim": embed_dim,
                "similarity_fn_name": "cosine",
                "use_instructions": True,
                "framework": ["PyTorch"],
                "modalities": ["text"],
            }
        )

    def instruction(self, task_metadata: Any, prompt_type: PromptType | None) -> str | None:
        """The instruction used for this task and side, or None (documents never get one)."""
        if prompt_type == PromptType.document:
            return None
        if task_metadata.name in self.instructions:
            return self.instructions[task_metadata.name]
        prompt = getattr(task_metadata, "prompt", None)
        if isinstance(prompt, dict):
            prompt = prompt.get(prompt_type.value if prompt_type else "query")
        return prompt or None

    def encode(
        self,
        inputs: Iterable[Mapping[str, Any]],
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [str(t) for batch in inputs for t in batch["text"]]
        instruction = self.instruction(task_metadata, prompt_type)
        logger.debug(
            "%s/%s %s: %d texts, instruction %r", task_metadata.name, hf_split, prompt_type, len(texts), instruction
        )
        return encode_texts(
            self.encoder,
            texts,
            instruction,
            batch_size=int(kwargs.get("batch_size", 32)),
            progress=kwargs.get("show_progress_bar"),
        )

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        return pairwise_cos_sim(embeddings1, embeddings2)
