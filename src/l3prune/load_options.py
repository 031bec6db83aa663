"""The load options every command shares (pooling, max length, dtype, device), as plain data without torch.

Apart from ``loading`` (which imports torch and transformers and acts on them) so that the command line
builds its flags from these fields, and checks them, in a fraction of a second: ``l3prune --help`` and a
mistyped flag answer before any model code is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from l3prune.errors import L3PruneError
from l3prune.options import check_choices, check_types, described
from l3prune.pooling_modes import POOLING_MODES

#: The dtype names every command accepts; ``auto`` picks bf16 where the hardware multiplies it natively,
#: else fp32 (``loading.default_dtype``), and ``loading.DTYPES`` maps the others to torch dtypes.
DTYPE_NAMES = ("auto", "fp32", "bf16", "fp16")


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
    dtype: str = described("auto", "weights dtype; auto = bf16 on GPUs that support it and on CPUs with AMX or "
                                   "AVX512-BF16, else fp32",
                           choices=DTYPE_NAMES)
    device: str | None = described(None, "e.g. cpu, cuda, cuda:1", unset="cuda if available")

    def validate(self) -> LoadOptions:
        """Check every value; messages name the setting and the fix."""
        check_types(self)
        check_choices(self)  # pooling and dtype among their names
        if self.max_length is not None and self.max_length < 2:
            raise L3PruneError(f"max_length must be an integer >= 2, got {self.max_length!r}")
        return self

    def encoder_kwargs(self) -> dict:
        """The keywords of ``LLMEncoder.from_pretrained`` these options set."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
