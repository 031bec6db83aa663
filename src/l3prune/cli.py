"""The ``l3prune`` command: each subcommand maps its flags onto one library call.

Bad input raises ``L3PruneError`` somewhere in the library; here it becomes one ``error:`` line and
exit status 2, never a traceback (argparse's own errors too). Any other exception is a bug or an
environment problem: one ``error:`` line, exit status 1, and ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.settings import LoadOptions, field_types

#: How library messages name Python parameters, and the flag each is on the command line.
PARAMETER_FLAGS = {"overwrite=True": "--overwrite", "resume=True": "--resume", "require_stock": "--require-stock"}


class UsageError(Exception):
    """argparse's complaint about the command line, raised instead of printing usage and exiting."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one ``error:`` line (see :func:`main`), not usage plus a line."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # argparse reads -1e-4 as an option (its pattern has no exponent); a number it is, and checks judge it
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}; see {self.prog} --help")

logger = logging.getLogger("l3prune")


def _fraction(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


def _layer_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer indices like 0,1,2,5; got {value!r}") from None


def add_options(parser: argparse.ArgumentParser, cls: type, *, defaults: Any = None) -> None:
    """One flag per field of a settings dataclass (``max_length`` -> ``--max-length``), typed from its type
    hints, with its help text and choices. Flags default to None, meaning "not given"; ``defaults`` (an
    instance) only sets the default shown in the help."""
    types = field_types(cls)
    for f in fields(cls):
        allowed = types[f.name]
        default = getattr(defaults, f.name) if defaults is not None else (None if f.default is MISSING else f.default)
        shown = default if default is not None else f.metadata.get("unset")
        text = f.metadata["help"] + (f" (default: {shown})" if shown is not None else "")
        kwargs: dict[str, Any] = {"default": None, "help": text}
        if bool in allowed:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif list in allowed:
            kwargs.update(nargs="+", metavar=f.name.upper().removesuffix("S"))
        else:
            kwargs["type"] = int if int in allowed and float not in allowed else float if float in allowed else str
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(f"--{f.name.replace('_', '-')}", *f.metadata.get("aliases", ()), dest=f.name, **kwargs)


def options_from(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The flags of ``cls``'s fields that were given."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}


def load_options(args: argparse.Namespace) -> LoadOptions:
    return LoadOptions(**options_from(args, LoadOptions)).validate()


def add_model_args(parser: argparse.ArgumentParser, *, size: bool = True, defaults: LoadOptions | None = None) -> None:
    """MODEL plus the load options every model-consuming command shares."""
    parser.add_argument("model", help="alias (smollm2-135m, gemma3-270m), model folder, .gguf file or hub id")
    if size:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--num-layers", type=int, help="keep the first N layers")
        group.add_argument("--drop-fraction", type=_fraction, help="drop this fraction of layers, in [0, 1)")
    add_options(parser, LoadOptions, defaults=defaults)


def add_prune_size_args(parser: argparse.ArgumentParser) -> None:
    """The four exclusive ways ``prune`` and ``train`` accept to say how much to keep."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--num-layers", type=int, help="keep N layers")
    size.add_argument("--drop-fraction", type=_fraction, help="drop this fraction of layers, in [0, 1): n = int(L * (1 - P))")
    size.add_argument("--layers", type=_layer_list, help="keep exactly these original layer indices, e.g. 0,1,2,7")
    size.add_argument("--config", choices=["small", "large"], help="L3Prune's configuration from a scan (criterion l3prune)")


def prune_spec(args: argparse.Namespace):
    """The ``PruneSpec`` that ``add_prune_size_args`` and ``--criterion`` describe."""
    from l3prune.layers import PruneSpec

    return PruneSpec(num_layers=args.num_layers, drop_fraction=args.drop_fraction, layers=args.layers,
                     configuration=args.config, criterion=args.criterion)


def load_encoder(args: argparse.Namespace):
    from l3prune.encoder import LLMEncoder

    return LLMEncoder.from_pretrained(args.model, num_layers=getattr(args, "num_layers", None),
                                      drop_fraction=getattr(args, "drop_fraction", None), load=load_options(args))


# --------------------------------------------------------------------------- commands
def _is_sentence_transformers(model: str) -> bool:
    from l3prune.evaluation.baselines import is_sentence_transformers

    return is_sentence_transformers(model)


def _sentence_transformers_info(args: argparse.Namespace) -> dict:
    from l3prune.devices import check_device
    from l3prune.evaluation import SentenceTransformerEncoder

    _refuse_llm_flags(args)
    st = SentenceTransformerEncoder(args.model, device=check_device(args.device)).model
    return {"model": args.model, "kind": "sentence-transformers", "modules": [type(m).__name__ for m in st],
            "parameters": sum(p.numel() for p in st.parameters()),
            "embedding_dimension": st.get_sentence_embedding_dimension(), "max_seq_length": st.max_seq_length}


def cmd_info(args: argparse.Namespace) -> None:
    info = _sentence_transformers_info(args) if _is_sentence_transformers(args.model) else load_encoder(args).info()
    if args.json:
        from l3prune.files import dumps

        print(dumps(info))
        return
    for key, value in info.items():
        if key == "parameters":
            value = f"{value:,}"
        elif key == "pruning":  # {"criterion": ..., "reason": ...}, or {} for a model nobody pruned
            value = f"{value.get('criterion')}: {value.get('reason') or 'no reason given'}" if value else "none"
        print(f"{key:>16}: {value}")


def _check_batch_size(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise L3PruneError(f"--batch-size must be at least 1, got {args.batch_size}")


def cmd_encode(args: argparse.Namespace) -> None:
    from l3prune.encode_file import encode_file

    _check_batch_size(args)
    path = encode_file(lambda: load_encoder(args), args.input, args.output, instruction=args.instruction,
                       batch_size=args.batch_size, normalize=args.normalize, overwrite=args.overwrite)
    print(f"wrote {path}")


def cmd_prune(args: argparse.Namespace) -> None:
    from l3prune.pruning.commands import prune_to_folder

    spec = prune_spec(args)
    if not spec.given:
        raise L3PruneError("say how much to keep: --num-layers N, --drop-fraction P, --layers I,J,.. or --config small|large")
    path = prune_to_folder(
        args.model, args.out, spec, load=load_options(args), data=args.data, overwrite=args.overwrite,
    )
    print(f"wrote {path}")


def cmd_train(args: argparse.Namespace) -> None:
    from l3prune.training import TrainConfig, build_config, build_load_options, read_recipe, train_to_folder

    recipe = read_recipe(args.recipe) if args.recipe else {}
    config = build_config(recipe, **options_from(args, TrainConfig))
    load = build_load_options(recipe, **options_from(args, LoadOptions))
    prune = prune_spec(args)
    for flag, value in (("--prompt", args.prompt), ("--normalize", args.normalize),
                        ("--require-stock", args.require_stock)):
        if value and not args.export:
            raise L3PruneError(f"{flag} applies to the exported folder; add --export DIR")
    written = train_to_folder(args.model, args.out, config, load=load, prune=prune, run_dir=args.run_dir,
                              resume=args.resume, overwrite=args.overwrite, export=args.export,
                              prompts=dict(args.prompt or []), normalize=args.normalize,
                              require_stock=args.require_stock)
    for kind, path in written.items():  # empty except on the main rank under torchrun/accelerate
        print(f"wrote {path}" + (" (sentence-transformers)" if kind == "sentence_transformers" else ""))


def _build_info(sub) -> None:
    p = sub.add_parser("info", help="layers, parameters, hidden size and pooling of a model",
                       description="Print the layers, parameters, hidden size and pooling of a model.")
    add_model_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_info)


def _build_encode(sub) -> None:
    p = sub.add_parser("encode", help="embed a text file into a .npy matrix",
                       description="Embed every line of a .txt file (or the 'text' of each .jsonl/.json entry or .csv "
                                   "row) into a .npy matrix, streaming in chunks.")
    add_model_args(p)
    p.add_argument("--input", required=True, help=".txt (one text per line), .jsonl/.ndjson or .json with 'text' and "
                                                   "optional 'instruction', or .csv/.tsv with a 'text' column")
    p.add_argument("--output", required=True, help="output .npy file")
    p.add_argument("--instruction", help="instruction for every text (attended to, not pooled)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    p.add_argument("--normalize", action="store_true", help="L2-normalise the embeddings")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_encode)


def _build_prune(sub) -> None:
    p = sub.add_parser("prune", help="keep some layers and save a smaller encoder",
                       description="Keep a subset of layers, chosen by a criterion, and save the smaller encoder. "
                                   "The output folder loads back with the same CLI and library.")
    add_model_args(p, size=False)
    add_prune_size_args(p)
    p.add_argument("--criterion", help="how to choose the layers (default: l3prune with --config, else last = keep "
                                        "the first n)")
    p.add_argument("--data", nargs="*", help="calibration/scan triplets for data-driven criteria (default: shipped data)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_prune)


def _build_train(sub) -> None:
    from l3prune.training import TrainConfig
    from l3prune.training.config import TRAIN_LOAD

    p = sub.add_parser("train", help="prune, train with the contrastive recipe, merge LoRA and save an encoder",
                       description="Prune a model, train it on (query, positive, negative) triplets with the paper's "
                                   "contrastive recipe (LoRA r16, lr 2e-4, 1000 steps, batch 64), merge the adapters "
                                   "and save a ready encoder. Settings come from the defaults, then --recipe, then "
                                   "flags. Multi-GPU: torchrun --nproc_per_node=K -m l3prune.cli train ...")
    add_model_args(p, size=False, defaults=TRAIN_LOAD)  # MODEL, --pooling, --max-length, --dtype, --device
    add_prune_size_args(p)
    p.add_argument("--criterion", help="how to choose the layers (default: l3prune with --config, else last = "
                                        "keep the first n)")
    p.add_argument("--recipe", help="YAML or JSON file of training settings (keys as below, with underscores)")
    add_options(p, TrainConfig)
    p.add_argument("--out", required=True, help="output folder for the trained encoder")
    p.add_argument("--run-dir", help="checkpoints, loss log and curve (default: OUT.run)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output folder, run folder and export folder")
    add_export_args(p, required=False)
    p.set_defaults(func=cmd_train)


def cmd_scan(args: argparse.Namespace) -> None:
    from l3prune.pruning.scan import scan_model

    profile, paths = scan_model(
        args.model, args.out or f"scan_{_stem(args.model)}", data=args.data, num_batches=args.num_batches,
        batch_size=args.batch_size, seed=args.seed, load=load_options(args), overwrite=args.overwrite,
    )
    print(f"small = {profile.small} layers (loss {profile.loss_mean[profile.small - 1]:.4f}), "
          f"large = {profile.large} layers (loss {profile.loss_mean[profile.large - 1]:.4f}) of {profile.num_layers}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def _stem(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(model).rstrip("/").split("/")[-1]) or "model"


def _build_scan(sub) -> None:
    p = sub.add_parser("scan", help="L3Prune's per-layer loss profile: pick the small and large depths",
                       description="One forward pass per batch of (query, positive, negative) triplets gives the "
                                   "contrastive loss of every depth k (keep the first k layers). Writes the profile "
                                   "as JSON, CSV and a PNG plot; small = best depth in 1..L//2, large = best in "
                                   "L//2+1..L.")
    add_model_args(p, size=False)
    p.add_argument("--data", nargs="*", help="triplet .jsonl/.json files or folders (default: the shipped triplets)")
    p.add_argument("--num-batches", type=int, default=100, help="batches to scan (default: 100, as in the paper)")
    p.add_argument("--batch-size", type=int, default=64, help="triplets per batch, all from one source (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order")
    p.add_argument("--out", help="output prefix (writes OUT.json/.csv/.png) or existing folder "
                                 "(default: ./scan_<model name>)")
    p.add_argument("--overwrite", action="store_true", help="replace existing profile files written by l3prune")
    p.set_defaults(func=cmd_scan)


def _prompt(value: str) -> tuple[str, str]:
    name, sep, instruction = value.partition("=")
    if not sep or not name.strip() or not instruction.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=INSTRUCTION, e.g. query='Given a question, retrieve passages'; got {value!r}")
    return name.strip(), instruction


def cmd_export(args: argparse.Namespace) -> None:
    from l3prune.encoder import LLMEncoder
    from l3prune.export import export_sentence_transformers, preflight_export
    from l3prune.layers import PruneSpec
    from l3prune.loading import resolve

    from l3prune.devices import check_device

    load = load_options(args)
    check_device(load.device)  # before a GGUF is converted
    source = resolve(args.model)
    prompts = dict(args.prompt or [])
    # the plan needs only the tokenizer and settings: a non-stock export fails before the weights load
    preflight_export(source, args.out, pooling=load.pooling, prompts=prompts, require_stock=args.require_stock,
                     overwrite=args.overwrite)
    prune = PruneSpec(num_layers=args.num_layers, drop_fraction=args.drop_fraction)
    path = export_sentence_transformers(lambda: LLMEncoder.from_source(source, prune, load), args.out,
                                        prompts=prompts, normalize=args.normalize, overwrite=args.overwrite,
                                        require_stock=args.require_stock)
    print(f"wrote {path}")


def _build_export(sub) -> None:
    p = sub.add_parser("export", help="write a sentence-transformers folder",
                       description="Write a folder that loads with sentence_transformers.SentenceTransformer(path) "
                                   "and with l3prune, giving the same embeddings. Instructions become named prompts.")
    add_model_args(p)
    p.add_argument("--out", required=True, help="output folder")
    add_export_args(p, required=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_export)


def add_export_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    """The export options ``export`` and ``train --export`` share."""
    if not required:
        p.add_argument("--export", metavar="DIR",
                       help="after training, also write a sentence-transformers folder here (see l3prune export)")
    p.add_argument("--prompt", type=_prompt, action="append", metavar="NAME=INSTRUCTION",
                   help="store an instruction as the named prompt of the exported folder (repeatable), "
                        "e.g. query='Given a question, ...'")
    p.add_argument("--normalize", action="store_true", help="exported folder: add a Normalize module "
                                                            "(unit-length embeddings)")
    p.add_argument("--require-stock", action="store_true",
                   help="fail unless stock sentence-transformers loads the folder exactly without trust_remote_code")


def cmd_eval(args: argparse.Namespace) -> None:
    from l3prune.evaluation import SentenceTransformerEncoder, format_table, run_suite
    from l3prune.evaluation.results import write_results
    from l3prune.evaluation.suite import check_tasks

    progress = _eval_progress_file(args)
    if args.quick:
        from l3prune.evaluation.quick import QUICK_SIZES, select_quick_tasks

        tasks = select_quick_tasks(args.tasks or ["all"])
    else:
        from l3prune.evaluation import select_tasks

        tasks = select_tasks(args.tasks or ["all"])
    _check_batch_size(args)
    check_tasks(tasks)  # bad data fails before the model loads
    if _is_sentence_transformers(args.model):
        _refuse_llm_flags(args)
        from l3prune.devices import check_device

        check_device(args.device)  # before sentence-transformers loads
        encoder, info = SentenceTransformerEncoder(args.model, device=args.device), {"kind": "sentence-transformers"}
    else:
        llm = load_encoder(args)
        encoder, info = llm, llm.info()
    if args.quick:
        info = {**info, "quick_suite": QUICK_SIZES}
    results = run_suite(encoder, tasks, model_id=str(args.model), batch_size=args.batch_size, info=info,
                        progress_file=progress)
    print(format_table(results))
    if args.out:
        print(f"wrote {write_results(results, args.out, overwrite=args.overwrite)}")
        progress.unlink(missing_ok=True)


def _refuse_llm_flags(args: argparse.Namespace) -> None:
    """A stock sentence-transformers model is evaluated as it is: flags that would prune or re-pool an l3prune
    encoder do not apply, and are refused rather than silently ignored."""
    given = [flag for flag, value in (("--num-layers", args.num_layers), ("--drop-fraction", args.drop_fraction),
                                      ("--pooling", args.pooling), ("--max-length", args.max_length))
             if value is not None]
    if args.dtype not in (None, "auto"):
        given.append("--dtype")
    if given:
        raise L3PruneError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to l3prune encoders, but "
                           f"{args.model} is a sentence-transformers model, evaluated as it is; drop "
                           f"{'it' if len(given) == 1 else 'them'}")


def _eval_progress_file(args: argparse.Namespace) -> Path | None:
    """Where ``eval --out R.json`` keeps its results after each task (``R.partial.json``), checked before the run.

    A stopped run's progress is continued only with ``--resume``, and never silently replaced.
    """
    from l3prune.evaluation.results import check_results_path

    if not args.out:
        if args.resume:
            raise L3PruneError("--resume needs --out: an evaluation keeps its progress beside its results file")
        return None
    out = check_results_path(args.out, overwrite=args.overwrite)
    progress = out.with_name(out.stem + ".partial.json")
    if progress.exists() and not args.resume:
        raise L3PruneError(f"{progress} holds the progress of a stopped evaluation; pass --resume to continue it "
                           "(the tasks it scored are not run again), or delete it to start over")
    check_results_path(progress, overwrite=True)
    return progress


def _build_eval(sub) -> None:
    p = sub.add_parser("eval", help="score a model on the offline evaluation suite (MTEB protocols)",
                       description="Evaluate an l3prune encoder, an alias, a sentence-transformers folder or the "
                                   "'minilm' baseline on local data, following MTEB's protocols. Prints a table "
                                   "and optionally writes JSON.")
    add_model_args(p)
    p.add_argument("--tasks", nargs="+",
                   help="groups (all, sts, retrieval, classification, clustering, pair_classification, reranking, "
                        "dev), task names (STS13, msmarco_5k, ...), dataset paths or kind:path (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="fixed seeded subsamples of the shipped tasks (minutes on CPU, for side-by-side comparisons; "
                        "published MTEB figures need the full suite)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--resume", action="store_true",
                   help="continue a stopped evaluation from the progress that --out keeps after each task "
                        "(OUT.partial.json), without running again the tasks it scored")
    p.set_defaults(func=cmd_eval)


BUILDERS: list[Callable] = [_build_info, _build_encode, _build_prune, _build_train, _build_scan, _build_export, _build_eval]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="l3prune",
        description="Turn a decoder LLM into a small, fast text encoder: scan -> prune -> train -> evaluate -> export.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true", help="on an error, also print the traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for build in BUILDERS:
        build(sub)
    for command in sub.choices.values():  # also accepted after the command: l3prune eval ... --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def cli_message(message: str) -> str:
    """A library message as the command line says it: Python parameters become flags, one line."""
    for parameter, flag in PARAMETER_FLAGS.items():
        message = message.replace(parameter, flag)
    return " ".join(message.split())


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {cli_message(str(exc))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        for noisy in ("sentence_transformers", "httpx", "urllib3", "mteb"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: every failure becomes one line
        if debug:
            traceback.print_exc()
        print(f"error: {_describe_failure(exc, debug)}", file=sys.stderr)
        return 2 if isinstance(exc, (L3PruneError, OSError)) else 1
    return 0


def _describe_failure(exc: Exception, debug: bool) -> str:
    if isinstance(exc, L3PruneError):
        return cli_message(str(exc))
    if isinstance(exc, OSError) and exc.strerror:  # the environment: disk full, permissions, a vanished file
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    hint = "" if debug else "; run again with --debug to see the traceback"
    first = str(exc).strip().splitlines()
    return f"unexpected {type(exc).__name__}: {first[0] if first else 'no message'}{hint}, and please report it"


if __name__ == "__main__":
    sys.exit(main())
