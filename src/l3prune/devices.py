"""The device and dtype policy: which device a command runs on, and what dtype ``auto`` means there.

The one dtype table (``DTYPES``) and the one place a dtype name becomes a torch dtype (``resolve_dtype``).
"""

from __future__ import annotations

import logging

import torch

from l3prune.errors import L3PruneError
from l3prune.settings import DTYPE_NAMES

logger = logging.getLogger(__name__)


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
    elif parsed.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise L3PruneError(f"device {str(device)!r} asks for an Intel GPU, but none is available here; use cpu")
    elif parsed.type not in ("cpu", "cuda", "mps", "xpu"):
        raise L3PruneError(f"device {str(device)!r} is not supported; use cpu, cuda or cuda:N")
    return str(device)


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
