"""``l3prune train``: load, prune, train with checkpoints, merge the adapters and save a ready encoder.

A run keeps its working files in a run folder (default ``<out>.run``): ``run.json`` (what is being
trained), the loss log and curve, and the latest checkpoint. The output folder appears only at the
very end, complete, by a swap (``safe_write``); it holds the merged encoder plus ``training.json`` and the loss curve.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from l3prune.data import SourceBatchSampler, Triplet, load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.safe_write import OVERWRITE_HINT, atomic_output, check_output, dumps, write_json
from l3prune.training import distributed
from l3prune.training.adapters import merge_trained
from l3prune.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from l3prune.training.config import TrainConfig, config_differences
from l3prune.training.distributed import DistEnv
from l3prune.training.history import LossLog, plot_loss
from l3prune.training.loop import Trainer

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class PruneSpec:
    """How to prune before training: the arguments of ``l3prune.pruning.commands.prune_encoder``."""

    criterion: str | None = None  # default: "l3prune" for a configuration, else "last" (keep the first n)
    num_layers: int | None = None
    drop_fraction: float | None = None
    layers: Sequence[int] | None = None
    config: str | None = None  # an L3Prune configuration, "small" or "large"

    @property
    def criterion_name(self) -> str:
        return self.criterion or ("l3prune" if self.config is not None else "last")

    @property
    def given(self) -> bool:
        return any(x is not None for x in (self.num_layers, self.drop_fraction, self.layers, self.config))


def train_encoder(
    encoder: LLMEncoder,
    config: TrainConfig,
    *,
    triplets: Sequence[Triplet] | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    env: DistEnv | None = None,
) -> LLMEncoder:
    """Train ``encoder`` in place with the recipe ``config`` and return it with its adapters merged.

    With ``run_dir``, the loss log, curve and checkpoints (every ``config.save_every`` steps and at the
    end) go there, and ``resume`` continues from its latest checkpoint to the same result an
    uninterrupted run would reach. Training data defaults to ``config.data``.
    """
    env = env or DistEnv(device=str(encoder.device))
    triplets = list(triplets) if triplets is not None else load_triplets(config.data, instructions=config.instructions)
    if config.max_length != encoder.settings.max_length or config.pooling:
        encoder.settings.max_length = config.max_length
        encoder.settings.pooling = config.pooling or encoder.settings.pooling
        encoder.settings.validate()
    trainer = Trainer(encoder, triplets, config, env)
    folder = Path(run_dir) if run_dir is not None else None
    log = LossLog(folder, config.log_format) if folder is not None else None
    if folder is not None and resume and (found := list_checkpoints(folder / "checkpoints")):
        state = load_checkpoint(found[-1][1])
        changed = config_differences(state["config"], config)
        if changed:
            raise L3PruneError("the recipe differs from the interrupted run's: " + "; ".join(changed)
                               + f". Resume with the same settings, or start over with {OVERWRITE_HINT}")
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
            f"max length {config.max_length}, lr {config.learning_rate:g}")


def train_to_folder(
    model: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    prune: PruneSpec | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> Path:
    """Load ``model``, prune it by ``prune``, train it by ``config`` and save the merged encoder to ``out``.

    The output loads with ``LLMEncoder.from_pretrained(out)``: no base model and no peft needed.
    Runs unchanged under ``torchrun``/``accelerate launch`` (DDP); ``config.batch_size`` is global.
    """
    config = (config or TrainConfig()).validate()
    prune = prune or PruneSpec()
    out = check_output(out, overwrite=overwrite, kind="folder")
    folder = Path(run_dir).expanduser() if run_dir is not None else out.with_name(out.name + ".run")
    check_output(folder, overwrite=True, kind="folder", markers=(RUN_FILE,))  # a run folder must be one of ours
    env = distributed.setup(config.device)
    try:
        record = _check_run_folder(folder, model, prune, config, resume=resume, overwrite=overwrite, env=env)
        triplets = load_triplets(config.data, instructions=config.instructions)
        SourceBatchSampler(triplets, config.batch_size, world_size=env.world_size)  # fail before loading weights
        encoder = LLMEncoder.from_pretrained(model, pooling=config.pooling, max_length=config.max_length,
                                             dtype=DTYPES[config.dtype] if config.dtype else None, device=env.device)
        _prune(encoder, prune, record, config.data, env)
        if env.is_main:  # the run folder appears only now, after every check and the load have passed
            if record.pop("start_over", False):
                shutil.rmtree(folder)
            folder.mkdir(parents=True, exist_ok=True)
            record.update(kept=encoder.settings.kept_layers, pruning=encoder.settings.pruning)
            write_json(folder / RUN_FILE, record, overwrite=True)
        distributed.barrier(env)
        train_encoder(encoder, config, triplets=triplets, run_dir=folder, resume=resume, env=env)
        if env.is_main:
            _save_output(encoder, out, folder, config, overwrite=overwrite)
        distributed.barrier(env)
    finally:
        distributed.teardown(env)
    return out


def _check_run_folder(folder: Path, model, prune: PruneSpec, config: TrainConfig, *, resume: bool,
                      overwrite: bool, env: DistEnv) -> dict[str, Any]:
    """Check the run folder against this request; returns the run record (with its layers when resuming).

    Writes nothing: an earlier run to start over is only marked (``start_over``) and removed once the
    model has loaded, so a request that fails its checks leaves the folder as it was.
    """
    record = {"model": str(model), "prune": _jsonable(asdict(prune)), "config": config.to_dict(),
              "world_size": env.world_size}
    saved = _read_json(folder / RUN_FILE)  # check_output has refused a folder that is not a run's
    checkpoints = list_checkpoints(folder / "checkpoints")
    if saved is not None and not resume:
        if not overwrite:
            at = f" (checkpoint at step {checkpoints[-1][0]})" if checkpoints else ""
            raise L3PruneError(f"run folder {folder} holds an earlier run{at}; pass resume=True to continue it "
                               f"or {OVERWRITE_HINT} to start over")
        record["start_over"] = True
        saved = None
    if saved is not None:
        changed = [key for key in ("model", "prune") if saved.get(key) != record[key]]
        if changed:
            raise L3PruneError(f"resume: {', '.join(changed)} differ from the run in {folder} "
                               f"(saved {[saved.get(k) for k in changed]}); resume with the same model and pruning")
        if checkpoints:  # reuse the chosen layers: no second scan, and surely the same ones
            record["kept_current"], record["pruning"] = saved.get("kept_current"), saved.get("pruning") or {}
    elif resume:
        logger.info("nothing to resume in %s; starting from step 0", folder)
    return record


def _prune(encoder: LLMEncoder, prune: PruneSpec, record: dict[str, Any], data, env: DistEnv) -> None:
    """Prune on rank 0 (a criterion may scan data), apply the same layers on every rank, note them in ``record``."""
    if record.get("kept_current") is not None:  # resuming
        pruning = record.get("pruning", {})
        encoder.prune(record["kept_current"], criterion=pruning.get("criterion"), reason=pruning.get("reason"))
        return
    if not prune.given:
        record["kept_current"] = list(range(encoder.num_layers))
        return
    choice = None
    if env.is_main:
        from l3prune.pruning.commands import prune_encoder

        before = list(encoder.settings.kept_layers)
        prune_encoder(encoder, criterion=prune.criterion_name, num_layers=prune.num_layers, drop_fraction=prune.drop_fraction,
                      layers=prune.layers, config=prune.config, data=data)
        choice = ([before.index(i) for i in encoder.settings.kept_layers], dict(encoder.settings.pruning))
    choice = distributed.broadcast(env, choice)
    if not env.is_main:
        encoder.prune(choice[0], criterion=choice[1].get("criterion"), reason=choice[1].get("reason"))
    record["kept_current"] = choice[0]


def _save_output(encoder: LLMEncoder, out: Path, folder: Path, config: TrainConfig, *, overwrite: bool) -> None:
    """Save the merged encoder with its training record beside ``out``, then swap it in."""
    log = LossLog(folder, config.log_format)
    rows = log.read()
    with atomic_output(out, overwrite=overwrite, kind="folder") as partial:
        encoder.write_files(partial)
        (partial / "training.json").write_text(dumps({
            "config": config.to_dict(), "steps_run": rows[-1]["step"] if rows else 0,
            "final_loss": rows[-1]["loss"] if rows else None, "kept_layers": encoder.settings.kept_layers,
        }) + "\n", encoding="utf-8")
        if log.path.is_file():
            shutil.copy2(log.path, partial / log.path.name)
        plot_loss(rows, partial / "train_loss.png", title=_title(encoder, config))
    logger.info("saved the trained encoder to %s", out)


def _jsonable(value: Any) -> Any:
    return json.loads(dumps(value, indent=None))


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # bad JSON or bad UTF-8
        raise L3PruneError(f"{path} is not valid JSON ({exc}); delete the run folder or pass "
                           f"{OVERWRITE_HINT}") from None
    if not isinstance(value, dict):
        raise L3PruneError(f"{path} is not an l3prune run record; delete the run folder or pass {OVERWRITE_HINT}")
    return value
