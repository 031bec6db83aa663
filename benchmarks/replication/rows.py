"""The replication's rows, as data: one line per configuration, in the order they run.

A row names its depth by a rule, not by layers, because the layers come from the model's scan and the field
criteria's selections (``run.select_layers``); ``configurations`` resolves the rules into kept layers. The most
important rows come first, so a stopped run still says something.

Depth rules: ``all`` (every layer), ``large`` / ``small`` (L3Prune's, from the scan), ``drop P`` (the first layers
left after dropping the fraction P), ``first N`` (the first N layers), ``kept at D`` (the layers the row's criterion,
its family, keeps at the depth D: ``50%`` or ``large``); ``None`` for all-MiniLM-L6-v2.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from l3prune.layers import target_num_layers

SEEDS = (42, 7, 1234)
FIELD_CRITERIA = ("block_influence", "angular", "perplexity", "taylor")
FULL_SUITE_ROWS = ("full", "l3prune-large", "l3prune-small")  # also on the full suite (paper budget, seed 42)


@dataclass(frozen=True)
class Row:
    """One configuration of the study, before its depth rule is resolved against a model."""

    name: str
    family: str  # full | l3prune | last | <criterion> | minilm
    depth: str | None
    trained: bool = True
    seed: int = SEEDS[0]
    tier: str = ""  # the paper budget's tier ("1" or "2"); empty in the 40-step study, which has one
    note: str = ""
    extra: dict = field(default_factory=dict)  # settings the row changes besides its layers (pooling, finetune)
    only_on: str = ""  # run only on models whose name contains this


@dataclass
class Config:
    """A row resolved for one model: the original layer indices it keeps."""

    name: str
    family: str
    layers: list[int] | None  # original indices kept; None for MiniLM
    trained: bool
    seed: int = SEEDS[0]
    note: str = ""
    extra: dict = field(default_factory=dict)


MINILM = Row("minilm", "minilm", None, False, note="all-MiniLM-L6-v2, as shipped")

# The first, committed study: 40 steps (``--budget 40``).
FORTY_STEPS = [
    MINILM,
    Row("full-untrained", "full", "all", False),
    Row("full", "full", "all"),
    Row("l3prune-large", "l3prune", "large"),
    Row("l3prune-small", "l3prune", "small"),
    Row("last-drop25", "last", "drop 0.25"),
    Row("last-drop50", "last", "drop 0.5"),
    Row("last-drop75", "last", "drop 0.75"),
    Row("l3prune-large-untrained", "l3prune", "large", False),
    Row("l3prune-small-untrained", "l3prune", "small", False),
    *(Row(f"{name}-50%", name, "kept at 50%") for name in FIELD_CRITERIA),
    Row("full", "full", "all", seed=7),
    Row("l3prune-large", "l3prune", "large", seed=7),
    Row("full", "full", "all", seed=1234),
    Row("l3prune-large", "l3prune", "large", seed=1234),
    *(Row(f"{name}-large", name, "kept at large") for name in FIELD_CRITERIA),
    Row("last-drop80", "last", "drop 0.8"),
]

# The paper's budget: 1000 steps (``--budget paper``), in two tiers.
PAPER = [
    replace(MINILM, tier="1"),
    Row("full-untrained", "full", "all", False, tier="1"),
    Row("l3prune-large-untrained", "l3prune", "large", False, tier="1"),
    Row("l3prune-small-untrained", "l3prune", "small", False, tier="1"),
    # The full row first: it is the reference of every claim, and a session's machine keeps no cache (a row cut
    # off by the session's end restarts from step 0), so each row must finish in one sitting.
    Row("full", "full", "all", tier="1"),
    Row("l3prune-small", "l3prune", "small", tier="1"),
    Row("last-drop80", "last", "drop 0.8", tier="1"),
    Row("l3prune-large", "l3prune", "large", tier="1"),
    Row("last-drop50", "last", "drop 0.5", tier="1"),
    Row("last-drop30", "last", "drop 0.3", tier="1"),
    # The seed spread. On Gemma-3 `large` (17 of 18 layers) costs as much as the full row, about 3 h on a slow
    # machine, and keeps one seed; `small` (8 layers, about a third of that) measures the seed spread sooner.
    *(row for seed in SEEDS[1:] for row in (
        Row("full", "full", "all", seed=seed, tier="1"),
        Row("l3prune-large", "l3prune", "large", seed=seed, tier="1", only_on="smollm2"),
        Row("l3prune-small", "l3prune", "small", seed=seed, tier="1"))),
    # The field's criteria at 50% depth, against last-drop50 (tier 1).
    *(Row(f"{name}-50%", name, "kept at 50%", tier="2") for name in FIELD_CRITERIA),
    # "Why Lift so Heavy?": very few layers, for classification and clustering.
    *(Row(f"first-{n}", "last", f"first {n}", tier="2", note="Yuan et al.: very few layers") for n in (1, 2, 3, 4)),
    # Shortened LLaMA: full-parameter retraining against LoRA under aggressive pruning (trains in fp32).
    Row("l3prune-small-fullft", "l3prune", "small", tier="2", extra={"finetune": "full"}),
    Row("last-drop80-fullft", "last", "drop 0.8", tier="2", extra={"finetune": "full"}),
    # What a stock-loadable export costs: other poolings at large and small (weighted_mean is tier 1); the
    # stock-exact weighting first, since the export docs rest on it.
    *(Row(f"l3prune-{depth}-{pooling}", "l3prune", depth, tier="2", extra={"pooling": pooling})
      for depth in ("large", "small") for pooling in ("weighted_mean_from_instruction", "mean", "last_token")),
    # At `large` the stock-exact weighting's one seed landed 1.15 below `weighted_mean`, just inside the seed
    # noise the export sentence is judged by: a second seed decides that sentence.
    Row("l3prune-large-weighted_mean_from_instruction", "l3prune", "large", seed=7, tier="2",
        extra={"pooling": "weighted_mean_from_instruction"}),
]


def kept_layers(row: Row, sel: dict) -> list[int] | None:
    """The original layers ``row`` keeps, by its depth rule, on the model ``sel`` (``run.select_layers``) describes."""
    rule = row.depth
    if rule is None:
        return None
    if rule.startswith("kept at "):
        return sel["criteria"][row.family][rule.removeprefix("kept at ")]["kept"]
    if rule.startswith("drop "):
        n = target_num_layers(sel["layers"], drop_fraction=float(rule.removeprefix("drop ")))
    elif rule.startswith("first "):
        n = int(rule.removeprefix("first "))
    else:
        n = sel["layers"] if rule == "all" else sel[rule]
    return list(range(n))


def configurations(table: list[Row], sel: dict, model: str, tier: str = "") -> list[Config]:
    """The rows of ``table`` (of one ``tier``, when given) that run on ``model``, resolved into kept layers.

    A criterion's rows need its selections, computed only when asked for (``run.select_layers``): without them
    they are left out."""
    return [Config(r.name, r.family, kept_layers(r, sel), r.trained, r.seed, r.note, dict(r.extra))
            for r in table
            if (not tier or r.tier == tier) and r.only_on in model
            and (not r.depth or not r.depth.startswith("kept at ") or sel.get("criteria"))]
