"""Export an encoder as a sentence-transformers folder that is also an l3prune folder.

One folder, two loaders: ``SentenceTransformer(path)`` and ``LLMEncoder.from_pretrained(path)``
give the same embeddings. What makes stock sentence-transformers (6.x) agree with the native encoder:

* **Plain text, not chat.** The Transformer module's ``modality_config`` is pinned to the ``text``
  modality; otherwise a tokenizer with a chat template gets every text wrapped in it.
* **Right padding.** ST passes no ``position_ids``; with right padding the model's default
  positions 0..n-1 are exactly the native ones (which are padding-invariant), so ``padding_side``
  is pinned to ``right`` in ``processing_kwargs``.
* **Instructions are named prompts** formatted with the encoder's template, pooled with
  ``include_prompt=False``. ST finds the prompt span by tokenizing the prompt alone, so the
  exporter checks that each prompt's tokens are a prefix of prompt+text tokens.
* **Special tokens** live in the exported tokenizer's post-processor: the EOS that ``eos`` pooling
  appends, the BOS that ``bos`` pooling needs. ``max_seq_length`` is the encoder's ``max_length``
  (as ``processor_kwargs.model_max_length``, so the native loader's tokenizer is unchanged).
* **Pooling.** Stock ``Pooling`` wherever it is exact; :class:`l3prune.export.st_pooling.L3PrunePooling`
  where it is not (see :func:`plan_pooling`), which then needs ``trust_remote_code=True`` and
  ``l3prune`` installed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.files import atomic_output, check_output, dumps
from l3prune.loading import ModelSource
from l3prune.settings import SETTINGS_FILE, EncoderSettings
from l3prune.tokenization import special_tokens_around_text

logger = logging.getLogger(__name__)

TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
#: The pooling module of exports that stock cannot pool exactly (folders before it moved name ``l3prune.st_pooling``).
L3PRUNE_POOLING = "l3prune.export.st_pooling.L3PrunePooling"
#: Texts that start the way real texts do; a prompt must tokenize as a prefix of prompt + each.
BOUNDARY_PROBES = ("A", "a", "1", "'", '"', "(", "-", "é", "日", " x")


@dataclass(frozen=True)
class PoolingPlan:
    """Which ST pooling module reproduces the encoder's pooling, and the tokenizer it needs."""

    module: str  # class reference written to modules.json
    config: dict
    prefix: tuple[int, ...]  # special tokens the exported tokenizer adds before a text
    suffix: tuple[int, ...]  # ... and after it
    reason: str
    stock: bool = True


def plan_pooling(pooling: str, prefix: tuple[int, ...], suffix: tuple[int, ...], *, bos_id: int | None,
                 eos_id: int | None, has_prompts: bool, dim: int) -> PoolingPlan:
    """Stock ``Pooling`` when it is exact for these special tokens and prompts, else ``L3PrunePooling``.

    Stock pools every non-padding token after the prompt, with ``weightedmean`` weights counted from
    the first non-padding token, so it is exact for ``mean`` only when the tokenizer adds no special
    tokens, and for ``weighted_mean`` only when in addition there are no prompts.
    """
    stock_ref = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
    plain = not prefix and not suffix

    def stock(mode: str, reason: str, *, include_prompt: bool = False, new_prefix: tuple[int, ...] | None = None,
              new_suffix: tuple[int, ...] | None = None) -> PoolingPlan:
        config = {"embedding_dimension": dim, "pooling_mode": mode, "include_prompt": include_prompt}
        return PoolingPlan(stock_ref, config, prefix if new_prefix is None else new_prefix,
                           suffix if new_suffix is None else new_suffix, reason)

    if pooling == "eos":
        if eos_id is None:
            raise L3PruneError("pooling 'eos' needs a tokenizer with an EOS token; choose another pooling")
        return stock("lasttoken", "eos: the exported tokenizer appends EOS; stock 'lasttoken' pools it", new_suffix=(eos_id,))
    if pooling == "bos":
        first = prefix or ((bos_id,) if bos_id is not None else ())
        if not first:
            raise L3PruneError("pooling 'bos' needs a tokenizer with a BOS token; choose another pooling")
        # include_prompt=True: otherwise stock 'cls' would take the first token after the prompt.
        return stock("cls", "bos: stock 'cls' pools the first token", include_prompt=True, new_prefix=first)
    if pooling == "mean" and plain:
        return stock("mean", "mean without special tokens: stock 'mean' with include_prompt=False")
    if pooling == "weighted_mean_from_instruction":
        if not plain:
            raise L3PruneError(
                "pooling 'weighted_mean_from_instruction' exists to export as stock 'weightedmean', which is exact only "
                f"on tokenizers that add no special tokens around the text (this one adds {len(prefix)} before and "
                f"{len(suffix)} after); use 'weighted_mean', which exports with l3prune's pooling module")
        return stock("weightedmean", "weighted_mean_from_instruction: stock 'weightedmean' with include_prompt=False "
                                     "weights the text tokens p+1..p+n after a p-token prompt, as this mode does")
    if pooling == "last_token" and not suffix:
        return stock("lasttoken", "last_token: stock 'lasttoken'")
    if pooling == "weighted_mean" and plain and not has_prompts:
        return stock("weightedmean", "weighted_mean without special tokens or prompts: stock 'weightedmean' "
                                     "weights 1..n from the first token, as the paper does")
    from l3prune.export.st_pooling import ST_TO_L3PRUNE

    st_mode = {ours: theirs for theirs, ours in ST_TO_L3PRUNE.items()}[pooling]
    why = []
    if prefix:
        why.append(f"the tokenizer adds {len(prefix)} special token(s) before each text, which stock pooling would pool")
    if suffix:
        why.append(f"the tokenizer adds {len(suffix)} special token(s) after each text")
    if pooling == "weighted_mean" and has_prompts:
        why.append("stock 'weightedmean' gives text tokens after a prompt the weights p+1..p+n, not 1..n")
    config = {"embedding_dimension": dim, "pooling_mode": st_mode, "include_prompt": False,
              "prefix_length": len(prefix), "suffix_length": len(suffix)}
    return PoolingPlan(L3PRUNE_POOLING, config, prefix, suffix,
                       f"{pooling}: {'; '.join(why)}; using {L3PRUNE_POOLING}", stock=False)


def export_sentence_transformers(
    encoder_or_reference: LLMEncoder | str | os.PathLike | Callable[[], LLMEncoder],
    out: str | os.PathLike,
    *,
    prompts: dict[str, str] | None = None,
    normalize: bool = False,
    overwrite: bool = False,
    require_stock: bool = False,
) -> Path:
    """Write ``out`` as a sentence-transformers folder (and l3prune folder); return its path.

    ``prompts`` maps prompt names (e.g. ``query``, or an MTEB task name) to bare instructions; they
    are stored formatted with the encoder's instruction template, so ``encode(texts, prompt_name=..)``
    equals the native ``encode(texts, instruction=..)``. ``normalize`` appends a Normalize module.
    ``require_stock`` refuses, before writing anything, an export that would need ``trust_remote_code``.
    ``out`` is checked before a reference (or a loader callable) is loaded, and written beside, then
    swapped in (``l3prune.files.writing``).
    """
    out = check_output(out, overwrite=overwrite, kind="folder")
    encoder = encoder_or_reference
    if callable(encoder) and not isinstance(encoder, LLMEncoder):
        encoder = encoder()
    elif not isinstance(encoder, LLMEncoder):
        encoder = LLMEncoder.from_pretrained(encoder_or_reference)
    formatted, plan = plan_export(encoder.tokenizer, encoder.settings, prompts or {}, require_stock=require_stock,
                                  dim=encoder.hidden_size)
    logger.info("pooling %s", plan.reason)
    if not plan.stock:
        logger.warning("this export needs l3prune installed and SentenceTransformer(path, trust_remote_code=True)")
    with atomic_output(out, overwrite=overwrite, kind="folder") as tmp:
        encoder.write_files(tmp)
        _write_special_tokens(tmp, encoder.tokenizer, plan)
        _write_st_config(tmp, plan, formatted, max_length=encoder.settings.max_length, normalize=normalize)
        _write_readme(tmp, plan, formatted)
    return out


def plan_export(tokenizer, settings: EncoderSettings, prompts: dict[str, str], *, require_stock: bool,
                dim: int) -> tuple[dict[str, str], PoolingPlan]:
    """The formatted prompts and the pooling plan; refuses bad prompts and (with ``require_stock``) a plan
    that needs ``trust_remote_code``. Needs only the tokenizer and settings, so it can run before training."""
    formatted = _format_prompts(tokenizer, settings.instruction_template, prompts)
    natural_prefix, natural_suffix = special_tokens_around_text(tokenizer)
    plan = plan_pooling(settings.pooling, natural_prefix, natural_suffix, bos_id=tokenizer.bos_token_id,
                        eos_id=tokenizer.eos_token_id, has_prompts=bool(formatted), dim=dim)
    if not plan.stock and require_stock:
        raise L3PruneError(
            f"stock sentence-transformers cannot reproduce this encoder exactly ({plan.reason}); drop "
            "require_stock to export with l3prune's pooling module (loads with trust_remote_code=True), or "
            "use pooling 'mean' or 'weighted_mean_from_instruction' (or 'weighted_mean' without prompts) on a "
            "tokenizer that adds no BOS"
        )
    return formatted, plan


def preflight_export(source: ModelSource, out: str | os.PathLike, *, pooling: str | None,
                     prompts: dict[str, str] | None, require_stock: bool, overwrite: bool) -> None:
    """Check an export of the model that ``source`` will become, from its tokenizer and settings alone.

    ``train --export`` calls this before training, so a clash or a non-stock plan fails in seconds, not
    after the run: training changes neither the tokenizer nor the instruction template.
    """
    check_output(out, overwrite=overwrite, kind="folder")
    settings = source.settings() or EncoderSettings()
    if pooling is not None:
        settings.pooling = pooling
    plan_export(source.tokenizer(), settings.validate(), prompts or {}, require_stock=require_stock,
                dim=source.hidden_size)


def _format_prompts(tokenizer, template: str, prompts: dict[str, str]) -> dict[str, str]:
    """Apply the instruction template and check that ST's prompt-length arithmetic holds for each prompt."""
    formatted = {}
    tokenize = tokenizer
    for name, instruction in prompts.items():
        if not name or not isinstance(instruction, str) or not instruction.strip():
            raise L3PruneError(f"prompt {name!r} needs a name and a non-empty instruction, as NAME=INSTRUCTION")
        prompt = template.format(instruction=instruction)
        ids = tokenize(prompt, add_special_tokens=False)["input_ids"]
        for probe in BOUNDARY_PROBES:
            if tokenize(prompt + probe, add_special_tokens=False)["input_ids"][: len(ids)] != ids:
                raise L3PruneError(
                    f"prompt {name!r}: its last tokens merge with the text that follows ({probe!r}), so "
                    "sentence-transformers would exclude the wrong tokens; remove trailing whitespace from "
                    "the instruction (or from the instruction template)"
                )
        formatted[name] = prompt
    return formatted


def _write_special_tokens(folder: Path, tokenizer, plan: PoolingPlan) -> None:
    """Re-save the encoder's tokenizer with a post-processor that adds the plan's special tokens, if it differs.

    Both loaders read this tokenizer: ST adds the tokens itself, and the native encoder already adds
    the same ones for this pooling (its EOS for ``eos``, its BOS for ``bos``), so neither changes.
    """
    import copy

    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    if special_tokens_around_text(tokenizer) == (plan.prefix, plan.suffix):
        return
    tokenizer = copy.deepcopy(tokenizer)  # the encoder keeps its own
    ids = plan.prefix + plan.suffix
    names = dict(zip(ids, tokenizer.convert_ids_to_tokens(list(ids))))

    def side(span: tuple[int, ...], type_id: int) -> list[str]:
        return [f"{names[i]}:{type_id}" for i in span]

    single = [*side(plan.prefix, 0), "$A:0", *side(plan.suffix, 0)]
    pair = [*single, "$B:1", *side(plan.suffix, 1)]
    special_tokens = [(name, i) for i, name in names.items()]
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(single=single, pair=pair, special_tokens=special_tokens)
    tokenizer.save_pretrained(folder)
    if special_tokens_around_text(AutoTokenizer.from_pretrained(folder)) != (plan.prefix, plan.suffix):
        raise L3PruneError("could not set the exported tokenizer's special tokens; choose another pooling")


def _write_st_config(folder: Path, plan: PoolingPlan, prompts: dict[str, str], *, max_length: int,
                     normalize: bool) -> None:
    """The sentence-transformers files: modules.json, the Transformer/Pooling/Normalize configs, prompts."""
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers.base.modules import Normalize, Transformer

    transformer_config = {
        "transformer_task": "feature-extraction",
        "modality_config": TEXT_MODALITY,  # plain text: never the chat template
        "module_output_name": "token_embeddings",
        "processing_kwargs": {"text": {"padding_side": "right"}},  # default position ids are then exact
        "processor_kwargs": {"model_max_length": max_length},  # = max_seq_length
    }
    if not plan.stock:
        transformer_config["unpad_inputs"] = False  # L3PrunePooling pools padded batches
    (folder / Transformer.config_file_name).write_text(dumps(transformer_config, indent=4) + "\n")
    modules = [{"idx": 0, "name": "0", "path": "", "type": _class_ref(Transformer)},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": plan.module}]
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(dumps(plan.config, indent=4) + "\n")
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": _class_ref(Normalize)})
        (folder / "2_Normalize").mkdir()
        Normalize().save(str(folder / "2_Normalize"))
    (folder / "modules.json").write_text(dumps(modules) + "\n")
    versions = {"sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__, "pytorch": torch.__version__}
    st_config = {"__version__": versions, "model_type": "SentenceTransformer", "prompts": prompts,
                 "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / "config_sentence_transformers.json").write_text(dumps(st_config) + "\n")


def _class_ref(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def usage_snippet(path: str, plan: PoolingPlan, prompt_name: str | None) -> str:
    """The three lines a user types to embed with the exported folder."""
    remote = ", trust_remote_code=True" if not plan.stock else ""
    prompt = f', prompt_name="{prompt_name}"' if prompt_name else ""
    return (f"from sentence_transformers import SentenceTransformer\n"
            f'model = SentenceTransformer("{path}"{remote})\n'
            f'embeddings = model.encode(["A man is playing a guitar."]{prompt})\n')


def _write_readme(folder: Path, plan: PoolingPlan, prompts: dict[str, str]) -> None:
    settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    name = "query" if "query" in prompts else next(iter(prompts), None)
    needs = "" if plan.stock else f"\nThis folder uses `{L3PRUNE_POOLING}`: `pip install l3prune` first.\n"
    lines = [
        f"# {settings.get('base_model') or 'l3prune encoder'}, {len(settings.get('kept_layers') or [])} layers",
        "",
        "Exported by l3prune. Loads with sentence-transformers or `l3prune.LLMEncoder.from_pretrained`.",
        needs,
        "```python",
        usage_snippet("PATH", plan, name).rstrip(),
        "```",
        "",
        f"Pooling: {plan.reason}.",
        "",
        "Prompts (instructions, attended to but not pooled): "
        + (", ".join(f"`{k}`" for k in prompts) if prompts else "none") + ".",
    ]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
