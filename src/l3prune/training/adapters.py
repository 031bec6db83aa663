"""What training updates: LoRA adapters on the architecture's projections (the paper) or every weight.

After training, the adapters are merged into the base weights and removed, so the saved encoder is a
plain transformers model that loads without peft and without the original checkpoint.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from l3prune.architectures import arch_spec
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.training.config import TrainConfig
from l3prune.training.dropout import use_packed_dropout

logger = logging.getLogger(__name__)


def prepare_trainable(encoder: LLMEncoder, config: TrainConfig) -> list[nn.Parameter]:
    """Wrap the base model in LoRA (or unfreeze it for full fine-tuning); returns the trainable parameters.

    Call after seeding: LoRA's A matrices are randomly initialised (B starts at zero, so the wrapped
    model computes exactly what the pruned model did).
    """
    if config.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input that requires grad, so it works with frozen embeddings.
        kwargs = {"use_reentrant": False}
        if hasattr(encoder.model, "activation_checkpointing_enable"):  # transformers 5 renamed it
            encoder.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            encoder.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if config.finetune == "full":
        for param in encoder.model.parameters():
            param.requires_grad_(True)
    else:
        from peft import LoraConfig, get_peft_model

        targets = check_lora_targets(encoder.model, config.lora_targets)
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=targets, bias="none")
        with warnings.catch_warnings():  # peft reads transformers' deprecated is_gradient_checkpointing: not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            encoder.model = get_peft_model(encoder.model, lora)  # adapters in fp32 even on bf16 weights
        use_packed_dropout(encoder.model)  # torch.bernoulli_ was 27% of a CPU step (see dropout.py)
    params = [p for p in encoder.model.parameters() if p.requires_grad]
    total = sum(p.numel() for p in encoder.model.parameters())
    logger.info("training %s parameters of %s (%s)", f"{sum(p.numel() for p in params):,}", f"{total:,}", config.finetune)
    return params


def check_lora_targets(model: nn.Module, targets: list[str] | None) -> list[str]:
    """The LoRA target names (default: the architecture's projections), each checked to be a module of ``model``."""
    targets = targets or list(arch_spec(model.config.model_type).lora_targets)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = sorted(set(targets) - present)
    if missing:
        raise L3PruneError(f"LoRA targets {missing} are not modules of this model; choose from linear layers "
                           f"such as {sorted(n for n in present if n.endswith('proj'))}")
    return targets


def check_lora_targets_before_loading(model_config, targets: list[str] | None) -> None:
    """The same check on the model a config describes, built on the meta device (no memory, no weights), so a
    mistyped target fails before the weights load and before a run folder exists."""
    from transformers import AutoModel

    from l3prune.layers import truncate_config

    with torch.device("meta"):  # one layer is enough: every layer has the same module names
        skeleton = AutoModel.from_config(truncate_config(model_config, 1))
    check_lora_targets(skeleton, targets)


def merge_trained(encoder: LLMEncoder) -> LLMEncoder:
    """Fold LoRA into the base weights and drop the peft wrapper; a no-op after full fine-tuning."""
    from peft import PeftModel

    if isinstance(encoder.model, PeftModel):
        encoder.model = encoder.model.merge_and_unload()
    if getattr(encoder.model, "supports_gradient_checkpointing", False):
        disable = getattr(encoder.model, "activation_checkpointing_disable", None) or encoder.model.gradient_checkpointing_disable
        disable()  # harmless when it was never enabled
    for param in encoder.model.parameters():
        param.requires_grad_(False)
    return encoder.eval()


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable weights by name (the LoRA adapters, or everything for full fine-tuning), on CPU."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy saved trainable weights back in; the names must match exactly (same model, same recipe)."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise L3PruneError(f"the checkpoint's weights do not match this model (missing {missing[:3]}, "
                           f"unexpected {extra[:3]}); resume with the same model and recipe")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state[name])
