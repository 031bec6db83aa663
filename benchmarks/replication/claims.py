"""The paper's claims, judged on our rows: every verdict follows a rule, computed from the numbers, never typed in.

- a loss is "negligible" when it is at most 1 point of the quick-suite average (our threshold; the paper
  gives none), and "modest" when it is at most 5.1 points (the paper's own loss for ``small``);
- a difference is "inside seed noise" when it is smaller than twice the seed standard deviation
  (the largest of full, large and small over seeds 42/7/1234 on that model); with one seed it is unknown;
- a claim that one choice beats another is "undecided" while its margin is inside seed noise.

The rows are a model's ``rows`` in its results JSON (``report.model_report``: seeds averaged, their spread kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from l3prune.export import plan_pooling

from replication.rows import FIELD_CRITERIA

MODELS = {"smollm2-135m": "SmolLM2-135M", "gemma3-270m": "Gemma-3-270M"}
NEGLIGIBLE = 1.0  # points: our threshold for "negligible loss"
MODEST = 5.1  # points: the paper's loss for its small configuration
CLASSIFICATION = "Banking77Classification"
CLUSTERING = "Banking77Clustering"  # reported beside classification (the issue asks for both); the verdict is on classification
PAPER_POOLING = "weighted_mean"
STOCK_POOLINGS = ("weighted_mean_from_instruction", "mean", "last_token")  # tier 2: what a stock-loadable export costs
POOLING_DEPTHS = {"l3prune-small": "small", "l3prune-large": "large"}


@dataclass
class Cell:
    """One model's figure for one claim, and whether the claim held there."""

    figure: str
    verdict: str  # held | did not hold | undecided (a win inside seed noise) | not comparable | pending | not run
    why: str = ""


@dataclass
class Claim:
    name: str
    paper: str
    cells: dict[str, Cell]


def rows_of(payload: dict | None) -> dict[str, dict]:
    """Trained and untrained rows by configuration name (seeds already averaged by ``report.summarise``)."""
    return {r["config"]: r for r in payload["rows"]} if payload else {}


def seed_noise(rows: dict[str, dict]) -> float | None:
    """Twice the largest seed standard deviation among full, large and small; None with one seed."""
    stds = [rows[n]["seed_std"] for n in ("full", "l3prune-large", "l3prune-small")
            if n in rows and rows[n].get("seed_std") is not None]
    return 2 * max(stds) if stds else None


def inside_noise(delta: float, noise: float | None) -> bool:
    """Whether a difference is within seed noise; never, while the noise is not measured."""
    return noise is not None and abs(delta) < noise


def noise_word(delta: float, noise: float | None) -> str:
    """Inside or outside seed noise, in words (the by-row table's column)."""
    if noise is None:
        return "seed noise not measured yet"
    return "inside seed noise" if inside_noise(delta, noise) else "outside seed noise"


def noise_note(delta: float, noise: float | None) -> str:
    """``noise_word`` with the band it was judged by (the claims' reasons)."""
    return noise_word(delta, noise) + ("" if noise is None else f" (±{noise:.2f})")


def delta(rows: dict, name: str, against: str = "full") -> float:
    return rows[name]["average"] - rows[against]["average"]


def avg_text(row: dict) -> str:
    spread = f" ± {row['seed_std']:.2f}" if row.get("seed_std") is not None else ""
    return f"{row['average']:.2f}{spread}"


# ---------------------------------------------------------------------------- claims

def pending(*names: str) -> Cell:
    return Cell("", "pending", "not run yet: " + ", ".join(names))


def loss_claim(rows: dict, name: str, limit: float, word: str, noise: float | None) -> Cell:
    """A pruned row against the trained full model: held when it loses at most ``limit`` points."""
    if name not in rows or "full" not in rows:
        return pending(*(n for n in (name, "full") if n not in rows))
    d = delta(rows, name)
    removed = 100 - rows[name]["params_pct"]
    figure = (f"{rows[name]['layers']} layers, {removed:.0f}% of parameters removed: "
              f"{avg_text(rows[name])} vs full {avg_text(rows['full'])}, **{d:+.2f}**")
    verdict = "held" if d >= -limit else "did not hold"
    return Cell(figure, verdict, f"held means {word}; {noise_note(d, noise)}")


def size_claim(rows: dict, name: str, paper_removed: float, paper_points: float, noise: float | None,
               embedding_share: float | None) -> Cell:
    """The paper's large/small: parameters removed and points lost. Held when we lose no more than it did."""
    limit = max(-paper_points, NEGLIGIBLE)
    cell = loss_claim(rows, name, limit, f"as the paper's {paper_points:+.1f} (a loss of at most {limit})", noise)
    if cell.verdict == "pending":
        return cell
    removed = 100 - rows[name]["params_pct"]
    if abs(removed - paper_removed) > 15:
        share = f"; the never-pruned embeddings are {embedding_share:.0f}% of this model" if embedding_share else ""
        cell.why += (f". The parameters removed ({removed:.0f}%) are not comparable with the paper's "
                     f"{paper_removed:.0f}%{share}")
    return cell


def criteria_claim(rows: dict, noise: float | None) -> Cell:
    """First-n layers (L3Prune's family) against every field criterion at 50% depth."""
    names = [f"{c}-50%" for c in FIELD_CRITERIA]
    if "last-drop50" not in rows or not all(n in rows for n in names):
        cell = pending(*(n for n in ["last-drop50", *names] if n not in rows))
        done = [n for n in names if n in rows]
        if "last-drop50" in rows and done:  # the criteria finished so far, each against the first layers
            ours = rows["last-drop50"]["average"]
            cell.figure = (f"so far: first {rows['last-drop50']['layers']} layers {ours:.2f}; " +
                           ", ".join(f"{n.removesuffix('-50%')} {rows[n]['average']:.2f} "
                                     f"(first layers {ours - rows[n]['average']:+.2f})" for n in done))
        return cell
    ours = rows["last-drop50"]["average"]
    best = max(names, key=lambda n: rows[n]["average"])
    d = ours - rows[best]["average"]
    figure = (f"first {rows['last-drop50']['layers']} layers {ours:.2f}; best criterion {best} "
              f"{rows[best]['average']:.2f} (**{d:+.2f}**); " +
              ", ".join(f"{n.removesuffix('-50%')} {rows[n]['average']:.2f}" for n in names))
    if d <= 0:
        return Cell(figure, "did not hold", f"the first layers lose to {best}; {noise_note(d, noise)}")
    if inside_noise(d, noise):  # "beats" means a real win: one inside the noise could be a seed's luck
        beyond = [n.removesuffix("-50%") for n in names if not inside_noise(ours - rows[n]["average"], noise)]
        return Cell(figure, "undecided", f"the first layers beat every criterion, but {best.removesuffix('-50%')} only "
                    f"by {d:+.2f}, {noise_note(d, noise)}; beyond it against {len(beyond)} of {len(names)}"
                    + (f" ({', '.join(beyond)})" if beyond else "") + "; more seeds decide")
    return Cell(figure, "held", f"the first layers beat every criterion; {noise_note(d, noise)}")


def few_layers_claim(rows: dict) -> Cell:
    """Yuan et al.: very few layers can beat the full model on classification."""
    names = [f"first-{n}" for n in (1, 2, 3, 4)]
    if "full" not in rows or not all(n in rows for n in names):
        return pending(*(n for n in ["full", *names] if n not in rows))
    full = rows["full"]["scores"][CLASSIFICATION]
    scores = {n: rows[n]["scores"][CLASSIFICATION] for n in names}
    best = max(scores, key=scores.get)
    clusters = {n: rows[n]["scores"][CLUSTERING] for n in ["full", *names]}
    figure = (f"Banking77 accuracy: full {full:.2f}; " + ", ".join(f"{n} {s:.2f}" for n, s in scores.items())
              + "; Banking77 clustering V-measure: " + ", ".join(f"{n} {s:.2f}" for n, s in clusters.items())
              + f"; averages: full {rows['full']['average']:.2f}, " +
              ", ".join(f"{n} {rows[n]['average']:.2f}" for n in names))
    verdict = "held" if scores[best] >= full else "did not hold"
    return Cell(figure, verdict, f"held when one of 1-4 layers matches or beats the full model on classification "
                                 f"(best: {best}, {scores[best] - full:+.2f})")


def retraining_claim(rows: dict, noise: float | None) -> Cell:
    """Shortened LLaMA: under aggressive pruning, full-parameter retraining recovers more than LoRA."""
    pairs = [("l3prune-small", "l3prune-small-fullft"), ("last-drop80", "last-drop80-fullft")]
    missing = [n for pair in pairs for n in pair if n not in rows]
    if missing:
        return pending(*missing)
    gains = {lora: rows[full]["average"] - rows[lora]["average"] for lora, full in pairs}
    figure = "; ".join(f"{rows[lora]['layers']} layers: LoRA {avg_text(rows[lora])}, full {avg_text(rows[full])} "
                       f"(**{gains[lora]:+.2f}**)" for lora, full in pairs)
    # "Far more" is not any gain: each must be a real one (beyond seed noise) and more than negligible.
    floor = max(NEGLIGIBLE, noise or 0.0)
    verdict = "held" if all(g > floor for g in gains.values()) else "did not hold"
    per_depth = "; ".join(f"{rows[lora]['layers']} layers {gains[lora]:+.2f}, {noise_note(gains[lora], noise)}"
                          for lora, _ in pairs)
    return Cell(figure, verdict, f"held when full retraining beats LoRA at both depths by more than {NEGLIGIBLE:.1f} "
                                 f"point and more than seed noise (far more, not just more); {per_depth}")


def embedding_share(payload: dict | None) -> float | None:
    """The never-pruned part: parameters of a 0-layer model, as a share of the full model (from two rows)."""
    rows = rows_of(payload)
    if "full" not in rows:
        return None
    pruned = [r for r in rows.values() if r.get("family") != "minilm" and r["layers"] < rows["full"]["layers"]]
    if not pruned:
        return None
    r = pruned[0]  # parameters are linear in layers: p(k) = e + k * per_layer
    per_layer = (rows["full"]["parameters"] - r["parameters"]) / (rows["full"]["layers"] - r["layers"])
    return 100 * (rows["full"]["parameters"] - per_layer * rows["full"]["layers"]) / rows["full"]["parameters"]


def claims(payloads: dict[str, dict | None]) -> list[Claim]:
    rows = {m: rows_of(p) for m, p in payloads.items()}
    noise = {m: seed_noise(r) for m, r in rows.items()}
    emb = {m: embedding_share(p) for m, p in payloads.items()}
    smol_only = lambda fn: {m: (fn(rows[m]) if m == "smollm2-135m" else  # noqa: E731
                                Cell("", "not run", "Tier 2 runs on SmolLM2 only")) for m in MODELS}
    return [
        Claim("30% of layers dropped", "negligible loss",
              {m: loss_claim(rows[m], "last-drop30", NEGLIGIBLE, f"negligible (a loss of at most {NEGLIGIBLE})", noise[m]) for m in MODELS}),
        Claim("80% of layers dropped", "a modest drop",
              {m: loss_claim(rows[m], "last-drop80", MODEST, f"modest (a loss of at most {MODEST}, the paper's loss for small)", noise[m])
               for m in MODELS}),
        Claim("L3Prune `large`", "21% of parameters removed, -0.3 points",
              {m: size_claim(rows[m], "l3prune-large", 21, -0.3, noise[m], emb[m]) for m in MODELS}),
        Claim("L3Prune `small`", "74% of parameters removed, -5.1 points",
              {m: size_claim(rows[m], "l3prune-small", 74, -5.1, noise[m], emb[m]) for m in MODELS}),
        Claim("first layers vs the field's criteria at 50% depth", "not compared in the paper (it keeps the first n)",
              smol_only(lambda r: criteria_claim(r, noise["smollm2-135m"]))),
        Claim("1-4 layers vs full, classification", "Yuan et al.: very few layers sometimes beat the full model",
              smol_only(few_layers_claim)),
        Claim("LoRA vs full retraining, aggressive pruning", "Shortened LLaMA: full retraining recovers far more",
              smol_only(lambda r: retraining_claim(r, noise["smollm2-135m"]))),
    ]


# ---------------------------------------------------------------------------- pooling (tier 2, SmolLM2)

def stock_with_instruction(pooling: str) -> bool:
    """Whether stock sentence-transformers computes ``pooling`` exactly with an instruction, on a tokenizer that
    adds no special tokens around the text (SmolLM2's): asked of the exporter, not typed in."""
    return plan_pooling(pooling, (), (), bos_id=None, eos_id=None, has_prompts=True, dim=1).stock


def pooling_deltas(rows: dict) -> dict[tuple[str, str], float]:
    """(pooling, depth row) -> its average minus the paper's ``weighted_mean`` at the same depth, where both ran."""
    return {(pooling, depth): rows[f"{depth}-{pooling}"]["average"] - rows[depth]["average"]
            for depth in POOLING_DEPTHS for pooling in STOCK_POOLINGS
            if depth in rows and f"{depth}-{pooling}" in rows}


def measured_depths(deltas: dict[tuple[str, str], float]) -> list[str]:
    """The depth rows at which any stock pooling has run, small first."""
    return [d for d in POOLING_DEPTHS if any(depth == d for _, depth in deltas)]


def budget_text(budget: dict | None) -> str:
    """'1000 steps x batch 16, max length 128', from a results file's budget."""
    if not budget:
        return "the paper budget"
    return f"{budget['steps']} steps x batch {budget['batch_size']}, max length {budget['train_max_length']}"


def pooling_cost(rows: dict, noise: float | None, budget: dict | None = None) -> str:
    """The export docs' sentence on what the stock-loadable poolings cost, from the rows (SmolLM2)."""
    deltas = pooling_deltas(rows)
    mode = STOCK_POOLINGS[0]
    measured = [d for d in POOLING_DEPTHS if (mode, d) in deltas]
    if not measured:
        return f"What `{mode}` costs against the paper's weighting has not been measured yet."
    costs = lambda delta: delta < 0 and not inside_noise(delta, noise)  # noqa: E731  a loss beyond seed noise
    costly = [d for d in measured if costs(deltas[(mode, d)])]
    where = lambda depths: " and ".join(f"`{POOLING_DEPTHS[d]}`" for d in depths)  # noqa: E731
    if noise is None:  # one seed everywhere: no loss can be called measurable or not
        lead = f"Whether the stock-exact weighting (`{mode}`) costs anything cannot be judged yet (seed noise not measured)"
    elif costly:
        lead = f"The stock-exact weighting (`{mode}`) costs more than seed noise at {where(costly)}"
        # Where it costs, a user wants the stock pooling that does not: name each one inside the noise or above.
        for d in costly:
            free = [f"`{p}`" for p in STOCK_POOLINGS[1:] if (p, d) in deltas and not costs(deltas[(p, d)])]
            if free:
                at = "there" if len(costly) == 1 else f"at `{POOLING_DEPTHS[d]}`"
                lead += (f"; {at}, {' and '.join(free)} (also stock) "
                         f"{'costs' if len(free) == 1 else 'cost'} nothing measurable")
    else:
        lead = f"The stock-exact weighting (`{mode}`) costs nothing measurable at {where(measured)}"
    unmeasured = [f"`{POOLING_DEPTHS[d]}`" for d in POOLING_DEPTHS if d not in measured]
    lead += f" ({' and '.join(unmeasured)} not run yet)" if unmeasured else ""
    # The seeds most pooling rows share go in the header; a row trained at other seeds too names them itself.
    seed_sets = [tuple(rows[f"{d}-{pooling}"]["seeds"]) for pooling, d in deltas]
    usual = max(set(seed_sets), key=lambda seeds: (seed_sets.count(seeds), -len(seeds), seeds))  # ties: fewest seeds

    def figure(name: str) -> str:
        own = rows[name]["seeds"]
        return avg_text(rows[name]) + (f", seeds {', '.join(map(str, own))}" if tuple(own) != usual else "")

    parts = []
    for d in measured_depths(deltas):
        parts.append(f"at `{POOLING_DEPTHS[d]}` ({rows[d]['layers']} layers; `{PAPER_POOLING}` {avg_text(rows[d])}), " +
                     ", ".join(f"`{pooling}` {figure(f'{d}-{pooling}')} ({deltas[(pooling, d)]:+.2f}, "
                               f"{noise_word(deltas[(pooling, d)], noise)})"
                               for pooling in STOCK_POOLINGS if (pooling, d) in deltas))
    band = "" if noise is None else f", seed noise ±{noise:.2f}"
    unless = " unless noted" if len(set(seed_sets)) > 1 else ""
    return (lead + ". Against the paper's `weighted_mean` at the same depth (SmolLM2, quick-suite average, "
            f"{budget_text(budget)}, seed{'s' if len(usual) > 1 else ''} {', '.join(map(str, usual))}{unless}{band}): "
            + "; ".join(parts) + ".")
