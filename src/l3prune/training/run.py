"""``l3prune train``: load, prune, train with checkpoints, merge the adapters and save a ready encoder.

A run keeps its working files in a run folder (default ``<out>.run``): ``run.json`` (what is being
trained: ``RunRecord``), the loss log and curve, and the latest checkpoint. The output folder appears only at the
very end, complete, by a swap (``l3prune.files.writing``); it holds the merged encoder plus ``training.json`` and the loss curve.
``train_to_folder`` also does what only the main rank does under DDP: saving, and the optional export.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from l3prune.data import SourceBatchSampler, Triplet, load_triplets
from l3prune.devices import dtype_name
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.files import EVERYTHING, OVERWRITE_HINT, atomic_output, check_output, dumps
from l3prune.layers import PruneSpec
from l3prune.loading import ModelSource, resolve
from l3prune.pruning import load_pruned
from l3prune.settings import LoadOptions
from l3prune.training import distributed
from l3prune.training.adapters import check_lora_targets_before_loading, merge_trained
from l3prune.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from l3prune.training.config import TRAIN_LOAD, TrainConfig, check_train_load
from l3prune.training.distributed import DistEnv
from l3prune.training.history import LossLog, plot_loss
from l3prune.training.loop import Trainer
from l3prune.training.record import RUN_FILE, RunRecord
from l3prune.training.teacher import TeacherTable, teacher_table

logger = logging.getLogger(__name__)

def train_encoder(
    encoder: LLMEncoder,
    config: TrainConfig,
    *,
    triplets: Sequence[Triplet] | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    env: DistEnv | None = None,
    teacher: TeacherTable | None = None,
) -> LLMEncoder:
    """Train ``encoder`` in place with the recipe ``config`` and return it with its adapters merged.

    With ``run_dir``, the loss log, curve and checkpoints (every ``config.save_every`` steps and at the
    end) go there, and ``resume`` continues from its latest checkpoint to the same result an
    uninterrupted run would reach. Training data defaults to ``config.data``. A recipe with a teacher
    (``config.teacher``) uses ``teacher``'s embeddings, computed here (or read from the cache) when not given.
    """
    env = env or DistEnv(device=str(encoder.device))
    triplets = list(triplets) if triplets is not None else load_triplets(config.data, instructions=config.instructions)
    if config.distills and teacher is None:
        load = LoadOptions(max_length=encoder.settings.max_length, dtype=dtype_name(encoder.dtype),
                           device=str(encoder.device))
        teacher = _teacher(config, triplets, load, env, dim=encoder.hidden_size)
    trainer = Trainer(encoder, triplets, config, env, teacher=teacher)
    folder = Path(run_dir) if run_dir is not None else None
    log = LossLog(folder, config.log_format) if folder is not None else None
    if folder is not None and resume and (found := list_checkpoints(folder / "checkpoints")):
        state = load_checkpoint(found[-1][1])
        RunRecord(config.to_dict(), env.world_size).check_resume(RunRecord.from_checkpoint(state), where=str(folder))
        trainer.load_state(state)
        logger.info("resuming at step %d of %d from %s", trainer.step, config.steps, found[-1][1])
    if log is not None and env.is_main:
        log.truncate(trainer.step)
    bar = tqdm(total=config.steps, initial=trainer.step, unit="step", desc="train", disable=not env.is_main)
    try:
        while trainer.step < config.steps:
            row = trainer.train_step()
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", s_per_step=f"{row['seconds']:.2f}")
            if log is not None and env.is_main:
                log.append(row)
            last = trainer.step == config.steps
            if folder is not None and (last or (config.save_every and trainer.step % config.save_every == 0)):
                _checkpoint(trainer, folder, log, env)
    finally:
        bar.close()
    return merge_trained(encoder)


def _checkpoint(trainer: Trainer, folder: Path, log: LossLog | None, env: DistEnv) -> None:
    state = trainer.state()  # collective: every rank contributes its RNG state
    if env.is_main:
        save_checkpoint(folder / "checkpoints", trainer.step, state, keep=trainer.config.keep_checkpoints)
        if log is not None:
            plot_loss(log.read(), folder / "train_loss.png", title=_title(trainer.encoder, trainer.config))
    distributed.barrier(env)


def _title(encoder: LLMEncoder, config: TrainConfig) -> str:
    return (f"{encoder.settings.base_model}, {encoder.num_layers} layers: batch {config.batch_size}, "
            f"max length {encoder.settings.max_length}, lr {config.learning_rate:g}")


def train_to_folder(
    model: str | os.PathLike | ModelSource,
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    load: LoadOptions | None = None,
    prune: PruneSpec | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    export: str | os.PathLike | None = None,
    prompts: dict[str, str] | None = None,
    normalize: bool = False,
    require_stock: bool = False,
) -> dict[str, Path]:
    """Load ``model`` (a reference, resolved here once, or a ``ModelSource``) by ``load`` (default ``TRAIN_LOAD``),
    prune it by ``prune``, train it by ``config`` and save the merged encoder to ``out``; with ``export``, also
    write a sentence-transformers folder there (``prompts``, ``normalize`` and ``require_stock`` as in
    ``export_sentence_transformers``).

    Returns what this process wrote: ``{"encoder": out}`` plus ``"sentence_transformers"`` with an export;
    empty on every rank but the main one. The output loads with ``LLMEncoder.from_pretrained(out)``: no base
    model and no peft needed. Runs unchanged under ``torchrun``/``accelerate launch`` (DDP);
    ``config.batch_size`` is global.
    """
    config = (config or TrainConfig()).validate()
    load = check_train_load(load or TRAIN_LOAD, config.finetune)
    prune = prune or PruneSpec()
    out = check_output(out, overwrite=overwrite, kind="folder")
    folder = Path(run_dir).expanduser() if run_dir is not None else out.with_name(out.name + ".run")
    _check_run_folder_is_ours(folder, overwrite=overwrite)
    _check_apart({"output": out, "run": folder, "export": None if export is None else Path(export)})
    source = model if isinstance(model, ModelSource) else resolve(model)
    if config.finetune == "lora":
        check_lora_targets_before_loading(source.model_config(), config.lora_targets)
    if export is not None:  # the whole export is checked before hours of training
        from l3prune.export import preflight_export

        preflight_export(source, export, pooling=load.pooling, prompts=prompts or {}, require_stock=require_stock,
                         overwrite=overwrite)
    env = distributed.setup(load.device)
    written: dict[str, Path] = {}
    try:
        request = RunRecord.start(source.reference, prune, config, load, env.world_size)
        record, start_over = _check_run_folder(folder, request, resume=resume, overwrite=overwrite)
        if record.dtype is not None and load.dtype == "auto":  # resume in the interrupted run's dtype
            load = replace(load, dtype=record.dtype)
        triplets = load_triplets(config.data, instructions=config.instructions)
        SourceBatchSampler(triplets, config.batch_size, world_size=env.world_size)  # fail before loading weights
        teacher = (_teacher(config, triplets, replace(load, device=env.device), env, dim=source.hidden_size)
                   if config.distills else None)  # before the student loads: one model in memory at a time
        encoder = _load_pruned(source, prune, record, config.data, env, replace(load, device=env.device))
        if env.is_main:  # the run folder appears only now, after every check and the load have passed
            if start_over:
                shutil.rmtree(folder)
            folder.mkdir(parents=True, exist_ok=True)
            record.kept, record.pruning = encoder.settings.kept_layers, encoder.settings.pruning
            record.dtype = dtype_name(encoder.dtype)
            record.save(folder)
        distributed.barrier(env)
        train_encoder(encoder, config, triplets=triplets, run_dir=folder, resume=resume, env=env, teacher=teacher)
        if env.is_main:  # only the main rank writes outputs
            written["encoder"] = _save_output(encoder, out, folder, config, record, overwrite=overwrite,
                                              teacher=teacher)
            if export is not None:
                from l3prune.export import export_sentence_transformers

                written["sentence_transformers"] = export_sentence_transformers(
                    encoder, export, prompts=prompts, normalize=normalize, overwrite=overwrite,
                    require_stock=require_stock)
        distributed.barrier(env)
    finally:
        distributed.teardown(env)
    return written


def _check_apart(folders: dict[str, Path | None]) -> None:
    """The output, run and export folders must be three folders, none inside another: checked before training,
    since each is written (or replaced) on its own."""
    named = {name: path.expanduser().resolve() for name, path in folders.items() if path is not None}
    for (a, path_a), (b, path_b) in itertools.combinations(named.items(), 2):
        if path_a == path_b or path_a in path_b.parents or path_b in path_a.parents:
            how = "are the same folder" if path_a == path_b else "are nested"
            raise L3PruneError(f"the {a} folder {path_a} and the {b} folder {path_b} {how}; give each its own "
                               "folder, side by side")


#: What a run folder holds: the record, the loss log and curve, the checkpoints (``--overwrite`` replaces only these).
RUN_FOLDER_FILES = (RUN_FILE, "train_log.jsonl", "train_log.csv", "train_loss.png", "checkpoints/step-*.pt")


def _check_run_folder_is_ours(folder: Path, *, overwrite: bool) -> None:
    """A run folder may be reused (``resume``) or started over (``overwrite``) only if it is a run's: with
    ``overwrite``, it must hold nothing but what a run writes, since all of it goes."""
    if overwrite:
        check_output(folder, overwrite=True, kind="folder", owned=RUN_FOLDER_FILES)
    elif folder.is_dir() and any(folder.iterdir()) and not (folder / RUN_FILE).is_file():
        raise L3PruneError(f"run folder {folder} holds files and no {RUN_FILE}, so it is not an l3prune run folder; "
                           "choose another run folder (run_dir) or remove it yourself")
    else:
        check_output(folder, overwrite=True, kind="folder", owned=EVERYTHING)  # a usable, writable place


def _check_run_folder(folder: Path, record: RunRecord, *, resume: bool, overwrite: bool) -> tuple[RunRecord, bool]:
    """Check the run folder against this request; returns the run record (with its layers when resuming)
    and whether an earlier run is to be started over.

    Writes nothing: an earlier run to start over is removed by the caller once the model has loaded, so
    a request that fails its checks leaves the folder as it was.
    """
    saved = RunRecord.read(folder)  # check_output has refused a folder that is not a run's
    checkpoints = list_checkpoints(folder / "checkpoints")
    if saved is not None and not resume:
        if not overwrite:
            at = f" (checkpoint at step {checkpoints[-1][0]})" if checkpoints else ""
            raise L3PruneError(f"run folder {folder} holds an earlier run{at}; pass resume=True to continue it "
                               f"or {OVERWRITE_HINT} to start over")
        return record, True
    if saved is not None:
        # Without a checkpoint nothing was trained yet, so only the model and the pruning must match.
        record.check_resume(saved, where=str(folder), settings=bool(checkpoints))
        if checkpoints:  # reuse the chosen layers and dtype: no second scan, and surely the same ones
            record.kept_current, record.pruning, record.dtype = saved.kept_current, saved.pruning or {}, saved.dtype
    elif resume:
        logger.info("nothing to resume in %s; starting from step 0", folder)
    return record, False


def _load_pruned(source: ModelSource, prune: PruneSpec, record: RunRecord, data, env: DistEnv,
                 load: LoadOptions) -> LLMEncoder:
    """Load ``source`` at the same layers on every rank and note them (indices into ``source``) in ``record``.

    Resuming reuses the interrupted run's layers, with no second scan. Otherwise ``load_pruned`` chooses them:
    a criterion that measures the model runs on rank 0, and every rank keeps rank 0's choice.
    """
    if record.kept_current is not None:  # resuming
        encoder = LLMEncoder.from_source(source, PruneSpec(layers=record.kept_current), load)
        criterion = record.pruning.get("criterion")
        return encoder.record_pruning(criterion, record.pruning.get("reason")) if criterion else encoder
    encoder = load_pruned(source, prune, load=load, data=data, measure_here=env.is_main,
                          agree=lambda choice: distributed.broadcast(env, choice))
    saved = source.settings()
    loaded = saved.kept_layers if saved is not None and saved.kept_layers else list(range(source.num_layers))
    record.kept_current = [loaded.index(i) for i in encoder.settings.kept_layers]
    return encoder


def _teacher(config: TrainConfig, triplets: Sequence[Triplet], load: LoadOptions, env: DistEnv, *,
             dim: int) -> TeacherTable:
    """The teacher's embeddings of the training texts (the embedding term checks the student's dimension ``dim``):
    rank 0 computes them (or finds them cached), then every other rank reads the cache."""
    student_dim = dim if config.distill_loss == "embedding" else None
    table = teacher_table(config.teacher, triplets, load=load, student_dim=student_dim) if env.is_main else None
    distributed.barrier(env)
    return table or teacher_table(config.teacher, triplets, load=load, student_dim=student_dim)


def _save_output(encoder: LLMEncoder, out: Path, folder: Path, config: TrainConfig, record: RunRecord, *,
                 overwrite: bool, teacher: TeacherTable | None = None) -> Path:
    """Save the merged encoder with its training record beside ``out``, then swap it in."""
    log = LossLog(folder, config.log_format)
    rows = log.read()
    summary = {"config": record.config, "load": record.load, "dtype": record.dtype,
               "steps_run": rows[-1]["step"] if rows else 0, "final_loss": rows[-1]["loss"] if rows else None,
               "kept_layers": encoder.settings.kept_layers}
    if teacher is not None:
        summary["teacher"] = teacher.info
    with atomic_output(out, overwrite=overwrite, kind="folder") as partial:
        encoder.write_files(partial)
        (partial / "training.json").write_text(dumps(summary) + "\n", encoding="utf-8")
        if log.path.is_file():
            shutil.copy2(log.path, partial / log.path.name)
        plot_loss(rows, partial / "train_loss.png", title=_title(encoder, config))
    logger.info("saved the trained encoder to %s", out)
    return out
