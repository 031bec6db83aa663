"""The run record: what a run folder trains (``run.json``), and the one check that a resume is compatible.

A record holds the request (model, pruning, load options, recipe, number of processes) and, once
chosen, the kept layers. ``check_resume`` is the only place that decides whether an interrupted run
may continue: ``train_to_folder`` asks it about ``run.json``, ``train_encoder`` about a checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec
from l3prune.settings import LoadOptions
from l3prune.files import OVERWRITE_HINT, dumps, write_json
from l3prune.training.config import RUN_ONLY, TrainConfig

RUN_FILE = "run.json"


@dataclass
class RunRecord:
    """One run's request and, once chosen, its layers. ``model``, ``prune`` and ``load`` are None in a
    record read back from a checkpoint (which holds only the recipe and the number of processes)."""

    config: dict[str, Any]
    world_size: int = 1
    model: str | None = None
    prune: dict[str, Any] | None = None
    load: dict[str, Any] | None = None
    kept_current: list[int] | None = None  # kept layers as indices into ``model`` (reused on resume)
    kept: list[int] | None = None  # the same layers as indices into the original model
    pruning: dict[str, Any] = field(default_factory=dict)  # criterion and reason
    dtype: str | None = None  # the dtype ``load.dtype`` resolved to (``auto`` depends on the machine)

    @classmethod
    def start(cls, model: str | os.PathLike, prune: PruneSpec, config: TrainConfig, load: LoadOptions,
              world_size: int) -> RunRecord:
        return cls(config=config.to_dict(), world_size=world_size, model=str(model),
                   prune=json.loads(dumps(asdict(prune), indent=None)), load=asdict(load))

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> RunRecord:
        return cls(config=state["config"], world_size=state["world_size"])

    @classmethod
    def read(cls, folder: Path) -> RunRecord | None:
        """The record in ``folder``, or None if it has none."""
        path = Path(folder) / RUN_FILE
        if not path.is_file():
            return None
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nested too deeply
            raise L3PruneError(f"{path} is not valid JSON ({exc}); delete the run folder or pass "
                               f"{OVERWRITE_HINT}") from None
        if not isinstance(values, dict):
            raise L3PruneError(f"{path} is not an l3prune run record; delete the run folder or pass {OVERWRITE_HINT}")
        if "load" not in values:  # written before load options had their own entry: they were in the recipe
            old = values.get("config", {})
            values["load"] = {"pooling": old.get("pooling"), "max_length": old.get("max_length"),
                              "dtype": old.get("dtype") or "auto", "device": old.get("device")}
        prune = values.get("prune")
        if isinstance(prune, dict) and "config" in prune:  # written before PruneSpec.config became configuration
            prune["configuration"] = prune.pop("config")
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in values.items() if k in known}) if "config" in values else None
        if record is None or not isinstance(record.config, dict) or not isinstance(record.world_size, int) or any(
                value is not None and not isinstance(value, dict) for value in (record.prune, record.load)):
            raise L3PruneError(f"{path} is not an l3prune run record; choose another run folder (run_dir) or remove "
                               "it yourself")
        return record

    def save(self, folder: Path) -> None:
        write_json(Path(folder) / RUN_FILE, asdict(self), overwrite=True)

    def check_resume(self, saved: RunRecord, *, where: str, settings: bool = True) -> None:
        """Refuse to continue ``saved`` with this request: a different model or pruning, or (``settings``) a
        different recipe, load options (the device may change) or number of processes."""
        changed = [k for k in ("model", "prune") if None not in (getattr(saved, k), getattr(self, k))
                   and getattr(saved, k) != getattr(self, k)]
        if changed:
            raise L3PruneError(f"resume: {', '.join(changed)} differ from the run in {where} "
                               f"(saved {[getattr(saved, k) for k in changed]}); resume with the same model and pruning")
        if not settings:
            return
        differences = _differences(saved.config, self.config, TrainConfig().to_dict())
        if saved.load is not None and self.load is not None:
            differences += _differences(saved.load, self.load)
        if differences:
            raise L3PruneError("the recipe differs from the interrupted run's: " + "; ".join(differences)
                               + f". Resume with the same settings, or start over with {OVERWRITE_HINT}")
        if saved.world_size != self.world_size:
            raise L3PruneError(f"the checkpoint was written by {saved.world_size} process(es) but this run has "
                               f"{self.world_size}; resume with the same number of processes")


def _differences(saved: dict[str, Any], now: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """Settings (outside ``RUN_ONLY``) whose value differs from a saved run's, as 'key: saved -> now'. A setting
    the saved run predates counts as its default (``defaults``), which is what that run trained with."""
    defaults = defaults or {}
    return [f"{key}: {saved.get(key, defaults.get(key))!r} -> {now[key]!r}" for key in now
            if key not in RUN_ONLY and saved.get(key, defaults.get(key)) != now[key]]

