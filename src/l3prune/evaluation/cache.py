"""In-memory embedding cache keyed by (model id, instruction, text).

Tasks share texts (Banking77 test feeds classification and clustering; STS files repeat
sentences), and the suite times a first batch before each task: the cache makes both free.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import TextEncoder, l2_normalize

logger = logging.getLogger(__name__)


class CachedEncoder:
    """Wraps any encoder with the same ``encode`` signature and encodes each distinct text once.

    Raw (unnormalized) rows are stored; ``normalize`` is applied on the way out. Counters
    (``encoded``, ``hits``, ``encode_seconds``) let the suite report work per task.
    """

    def __init__(self, encoder: TextEncoder, model_id: str) -> None:
        self.encoder = encoder
        self.model_id = model_id
        self._store: dict[tuple[str, str | None, str], np.ndarray] = {}
        self.encoded = 0
        self.hits = 0
        self.encode_seconds = 0.0

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Drop every stored row (e.g. between models, or to free memory)."""
        self._store.clear()

    def encode(
        self,
        texts: list[str],
        *,
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = False,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        keys = [(self.model_id, instruction, t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._store))  # distinct, in order
        self.hits += len(keys) - len(missing)
        if missing:
            start = time.perf_counter()
            new = np.asarray(
                self.encoder.encode(
                    [k[2] for k in missing],
                    instruction=instruction,
                    batch_size=batch_size,
                    normalize=False,
                    show_progress=show_progress,
                ),
                dtype=np.float32,
            )
            self.encode_seconds += time.perf_counter() - start
            if new.ndim != 2 or new.shape[0] != len(missing):
                raise L3PruneError(
                    f"wrapped encoder returned shape {new.shape} for {len(missing)} texts; "
                    "it must return (len(texts), dim)"
                )
            self.encoded += len(missing)
            for key, row in zip(missing, new):
                self._store[key] = row
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.stack([self._store[k] for k in keys])
        return l2_normalize(out) if normalize else out
