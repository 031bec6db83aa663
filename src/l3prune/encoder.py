"""LLMEncoder: a (possibly pruned) decoder LLM used as a text encoder.

It owns encoding: the model's forward pass, pooling over the text tokens, and saving. How texts become
padded batches with an instruction span is ``tokenization.TextCollator``'s; how a model reference is found
and read is ``loading.ModelSource``'s. Batches carry explicit position ids, so a text's embedding does not
depend on the batch it lands in or on the padding side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from l3prune.architectures import decoder_layers
from l3prune.devices import check_device, dtype_name
from l3prune.errors import L3PruneError
from l3prune.files import atomic_output
from l3prune.layers import PruneSpec, is_prefix, keep_layers, layers_to_keep
from l3prune.loading import ModelSource, load_base_model, resolve
from l3prune.pooling import pool
from l3prune.settings import EncoderSettings, LoadOptions
from l3prune.tokenization import TextCollator, TextInput, longest_first_batches, split_inputs

logger = logging.getLogger(__name__)


class LLMEncoder(nn.Module):
    """Encode texts with a decoder LLM's hidden states, pooled over the text tokens."""

    def __init__(self, model: nn.Module, tokenizer, settings: EncoderSettings | None = None, *,
                 source: ModelSource | None = None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.source = source  # where the weights came from, when loaded by from_source (calibration reads its LM head)
        self.settings = (settings or EncoderSettings()).validate()
        if self.settings.original_num_layers is None:
            self.settings.original_num_layers = self.num_layers
        if self.settings.kept_layers is None:
            self.settings.kept_layers = list(range(self.num_layers))
        self.collator = TextCollator(tokenizer, self.settings)

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        reference: str | os.PathLike,
        *,
        prune: PruneSpec | None = None,
        load: LoadOptions | None = None,
        num_layers: int | None = None,
        drop_fraction: float | None = None,
        layers: Sequence[int] | None = None,
        pooling: str | None = None,
        max_length: int | None = None,
        padding_side: str | None = None,
        dtype: str | torch.dtype | None = None,
        device: str | None = None,
    ) -> LLMEncoder:
        """Load an alias, folder, GGUF file or hub id, optionally keeping only some of its layers.

        Which layers: a ``PruneSpec`` as ``prune``, or its fields ``num_layers``, ``drop_fraction`` or
        ``layers`` as keywords. Keeping the first n layers loads them directly, without ever allocating
        the others; any other set loads the full model, then prunes. Specs whose criterion measures
        the model are for ``l3prune.pruning.load_pruned``. How to load: ``LoadOptions`` as
        ``load``, or its fields as keywords; ``dtype`` is a name (``auto``, ``fp32``, ``bf16``, ``fp16``)
        or a torch dtype. Resolves ``reference`` and calls :meth:`from_source`.
        """
        sized = num_layers is not None or drop_fraction is not None or layers is not None
        if prune is not None and sized:
            raise L3PruneError("give prune=PruneSpec(...) or num_layers/drop_fraction/layers, not both")
        spec = prune if prune is not None else PruneSpec(num_layers=num_layers, drop_fraction=drop_fraction,
                                                         layers=layers)
        if load is not None:
            if any(v is not None for v in (pooling, max_length, dtype, device)):
                raise L3PruneError("give load=LoadOptions(...) or pooling/max_length/dtype/device, not both")
        else:
            load = LoadOptions(pooling=pooling, max_length=max_length, device=None if device is None else str(device),
                               **({"dtype": dtype} if isinstance(dtype, str) else {}))
        load = load.validate()
        check_device(load.device)  # before any file is read or converted
        return cls.from_source(resolve(reference), prune=spec, load=load, padding_side=padding_side,
                               dtype=dtype if isinstance(dtype, torch.dtype) else None)

    @classmethod
    def from_source(
        cls,
        source: ModelSource,
        prune: PruneSpec | None = None,
        load: LoadOptions | None = None,
        *,
        padding_side: str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LLMEncoder:
        """Load an already resolved model: its config, tokenizer and settings come from ``source`` (read once
        there). ``prune`` as in :meth:`from_pretrained`; ``dtype``, a torch dtype, overrides ``load.dtype``."""
        spec = prune or PruneSpec()
        load = (load or LoadOptions()).validate()
        device = check_device(load.device)
        settings = source.settings() or EncoderSettings(base_model=source.reference)
        for name, value in (("pooling", load.pooling), ("max_length", load.max_length), ("padding_side", padding_side)):
            if value is not None:
                setattr(settings, name, value)
        settings.validate()
        total = source.num_layers
        keep = spec.fixed_layers(total)
        prefix_only = keep is not None and is_prefix(keep)
        model = load_base_model(source, num_layers=len(keep) if prefix_only else None,
                                dtype=dtype if dtype is not None else load.dtype, device=device)
        settings.original_num_layers = settings.original_num_layers or total
        settings.kept_layers = settings.kept_layers or list(range(total))
        encoder = cls(model, source.tokenizer(), settings, source=source)
        encoder.settings.dtype = dtype_name(encoder.dtype)
        if keep is not None:
            if prefix_only:  # already loaded at that depth; only the bookkeeping is left
                encoder.settings.kept_layers = [encoder.settings.kept_layers[i] for i in keep]
            else:
                encoder.prune(keep)
        return encoder

    # ----------------------------------------------------------------- pruning
    def prune(self, keep: Sequence[int], *, criterion: str | None = None, reason: str | None = None) -> LLMEncoder:
        """Keep the layers at these *current* indices; record which original layers survive and why."""
        keep = layers_to_keep(self.num_layers, layers=keep)
        keep_layers(self.model, keep)
        self.settings.kept_layers = [self.settings.kept_layers[i] for i in keep]
        if criterion is not None:
            self.record_pruning(criterion, reason)
        return self

    def record_pruning(self, criterion: str, reason: str | None = None) -> LLMEncoder:
        """Note which criterion chose the current layers, and why (saved in ``l3prune.json``)."""
        self.settings.pruning = {"criterion": criterion, "reason": reason or ""}
        return self

    @property
    def num_layers(self) -> int:
        return len(decoder_layers(self.model))

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The base weights' dtype (LoRA adapters stay fp32 during training, whatever this is)."""
        return self.model.get_input_embeddings().weight.dtype

    def info(self) -> dict:
        """What ``l3prune info`` prints: size, depth and how the encoder pools."""
        s = self.settings
        return {
            "model": s.base_model,
            "architecture": self.model.config.model_type,
            "layers": self.num_layers,
            "original_layers": s.original_num_layers,
            "kept_layers": s.kept_layers,
            "parameters": self.num_parameters,
            "hidden_size": self.hidden_size,
            "pooling": s.pooling,
            "max_length": s.max_length,
            "padding_side": s.padding_side,
            "dtype": dtype_name(self.dtype),
            "pruning": s.pruning,
        }

    # ---------------------------------------------------------------- forward
    def model_inputs(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask / position_ids of a collated batch, as the encoder feeds its model."""
        attention_mask = features["attention_mask"].to(self.device)
        # Positions count real tokens only, so left padding does not shift a text's positions.
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return {
            "input_ids": features["input_ids"].to(self.device),
            "attention_mask": attention_mask,
            "position_ids": position_ids,
        }

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings of a collated batch, with gradients (training uses this)."""
        hidden = self.model(**self.model_inputs(features), use_cache=False).last_hidden_state
        return pool(hidden, features["pool_mask"].to(self.device), self.settings.pooling,
                    features["attention_mask"].to(self.device))  # (batch, dim)

    def hidden_states(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """All hidden states of one forward pass: index 0 is the embeddings, k is after layer k.

        As in transformers, the last entry already has the final norm applied; the others do not.
        """
        out = self.model(**self.model_inputs(features), use_cache=False, output_hidden_states=True)
        return out.hidden_states

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[TextInput],
        *,
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = False,
        convert_to: str = "numpy",
        show_progress: bool | None = None,
        warn_truncation: bool = True,
    ) -> np.ndarray | torch.Tensor:
        """Embed texts (or (instruction, text) pairs) -> (n, hidden_size) float32.

        ``instruction`` applies to every plain text. Texts are processed longest first, which keeps
        padding small, and returned in input order.
        """
        if convert_to not in ("numpy", "torch"):
            raise L3PruneError(f"convert_to must be 'numpy' or 'torch', got {convert_to!r}")
        if batch_size < 1:
            raise L3PruneError(f"batch_size must be >= 1, got {batch_size}")
        if len(texts) == 0:
            raise L3PruneError("no texts to encode")
        instructions, plain = split_inputs(texts, instruction)
        ids = self.collator.text_ids(plain)
        show = len(texts) > 256 if show_progress is None else show_progress
        out = torch.empty(len(texts), self.hidden_size, dtype=torch.float32)
        was_training = self.training
        self.eval()
        truncated_before = self.collator.truncated
        for idx in tqdm(longest_first_batches(ids, batch_size), desc="encode", disable=not show, unit="batch"):
            features = self.collator.collate([ids[i] for i in idx], [instructions[i] for i in idx], warn=False)
            out[torch.from_numpy(idx)] = self(features).float().cpu()
        self.train(was_training)
        truncated = self.collator.truncated - truncated_before
        if truncated and warn_truncation and not self.collator.warned_truncation:  # once per encoder, counting all
            self.collator.warned_truncation = True
            logger.warning("%d of %d text(s) exceed max_length=%d tokens and were truncated", truncated, len(texts),
                           self.settings.max_length)
        bad = ~torch.isfinite(out).all(dim=1)  # (n,)
        if bool(bad.any()):
            where = self.source.location if self.source is not None else self.settings.base_model
            raise L3PruneError(f"the model gave non-finite embeddings (NaN or inf) for {int(bad.sum())} of {len(texts)} "
                               f"texts: a weight or a config value (e.g. rms_norm_eps) of {where} is not finite; "
                               "check or replace the model files")
        if normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        return out.numpy() if convert_to == "numpy" else out

    # ----------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write model, tokenizer and ``l3prune.json`` beside ``path``, then swap it in (see ``l3prune.files.writing``)."""
        with atomic_output(path, overwrite=overwrite, kind="folder") as tmp:
            self.write_files(tmp)
        return Path(path)

    def write_files(self, folder: Path) -> None:
        """The folder's contents, written into ``folder`` as is; :meth:`save` is the checked, atomic way."""
        self.settings.dtype = dtype_name(self.dtype)
        # An input's auto_map would tell a loader with trust_remote_code=True to import a .py file beside the
        # weights; l3prune never uses one, so it never writes one.
        vars(self.model.config).pop("auto_map", None)
        self.model.save_pretrained(folder)  # transformers 5 writes safetensors only
        self.tokenizer.save_pretrained(folder)
        self.settings.write(folder)
