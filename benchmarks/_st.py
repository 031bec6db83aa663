"""The sentence-transformers import the benchmarks share: offline (no hub here), and their chatter silenced."""

from __future__ import annotations

import logging
import os


def offline_sentence_transformer():
    """``SentenceTransformer``, imported after INFO logging is set up and the hub switched off, with the INFO
    and WARNING lines of transformers, sentence-transformers and their HTTP clients silenced."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer
