"""Where each decoder family keeps the parts we touch, as data rather than copied ``forward`` code.

Every supported family exposes its decoder blocks as a ``ModuleList`` and a final norm on the base
model; what differs is their attribute names, the per-layer lists in the config that must shrink with
the layer list, and the names of the linear layers LoRA should adapt.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from l3prune.errors import L3PruneError

_LLAMA_LIKE_LORA = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ArchSpec:
    """Attribute names on the *base* model (``AutoModel``), and config fields indexed by layer."""

    layers: str = "layers"
    final_norm: str = "norm"
    per_layer_config: tuple[str, ...] = ("layer_types",)
    lora_targets: tuple[str, ...] = _LLAMA_LIKE_LORA


ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": ArchSpec(),
    "mistral": ArchSpec(),
    "qwen2": ArchSpec(),
    "qwen3": ArchSpec(),
    "gemma": ArchSpec(),
    "gemma2": ArchSpec(),
    "gemma3_text": ArchSpec(),
    # Phi-3 fuses q/k/v and gate/up into single projections.
    "phi3": ArchSpec(lora_targets=("qkv_proj", "o_proj", "gate_up_proj", "down_proj")),
}


def arch_spec(model_type: str) -> ArchSpec:
    """The spec for a config's ``model_type``; unsupported families fail with the list of supported ones."""
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        raise L3PruneError(
            f"unsupported architecture {model_type!r}; supported model types: {sorted(ARCHITECTURES)}"
        ) from None


def decoder_layers(base_model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a base model, in order."""
    return getattr(base_model, arch_spec(base_model.config.model_type).layers)


def final_norm(base_model: nn.Module) -> nn.Module:
    """The norm applied after the last block; the scan applies it to intermediate layers too."""
    return getattr(base_model, arch_spec(base_model.config.model_type).final_norm)
