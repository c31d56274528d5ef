"""Command line entry points, one subcommand per workflow stage (``python -m w2s <stage> ...``).

Rules pass files as files and settings one way: each config section a command reads is one JSON
argument (``--settings``, or the section's name such as ``--spec``, ``--sampling``, ``--evaluation``),
already filled with the schema's defaults, so a job's command line says everything that determines its
output. A ``{}`` default means the schema's defaults, read through the settings dataclasses.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable

from .cli_args import DEVICE, EVALUATION, LIST, PAIRS, REQ, SEED, Adder, mapping
from .cli_reasoning import reasoning_commands
from .cli_sharing import results_commands, store_commands, suite_commands
from .cli_weak_sources import weak_source_commands

log = logging.getLogger("w2s")


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from .data import prepare_splits

    manifest = prepare_splits(args.task, json.loads(args.spec), args.seed, args.out_dir)
    log.info("splits written: %s", {k: v["n"] for k, v in manifest["splits"].items()})


def cmd_train_teacher(args: argparse.Namespace) -> None:
    from .teacher import train_teacher_files

    info = train_teacher_files(
        args.train,
        args.val,
        args.manifest,
        args.checkpoint,
        json.loads(args.settings),
        args.seed,
        args.out_dir,
        args.device,
    )
    log.info(
        "weak teacher trained: %d steps, final loss %.4f, val accuracy %s",
        info["steps"],
        info["final_loss"],
        info.get("val_accuracy"),
    )


def cmd_label(args: argparse.Namespace) -> None:
    from .labeling import label_splits

    label_splits(
        args.checkpoint,
        mapping(args.inputs),
        mapping(args.outputs),
        json.loads(args.settings),
        provenance=json.loads(args.provenance),
        process_exits=args.process_exits,
    )


def cmd_extract_features(args: argparse.Namespace) -> None:
    from .features import extract_features

    settings = json.loads(args.settings)
    extract_features(
        args.checkpoint,
        mapping(args.inputs),
        mapping(args.outputs),
        settings["max_length"],
        settings["batch_size"],
        args.device,
        layer=settings["layer"],
        pooling=settings["pooling"],
    )


def cmd_train_strong(args: argparse.Namespace) -> None:
    from .io import read_json
    from .strong import train_role

    info = train_role(
        args.role,
        json.loads(args.spec),
        json.loads(args.method),
        args.targets,
        args.test,
        mapping(args.features),
        args.checkpoint,
        read_json(args.manifest)["label_names"],
        args.seed,
        args.device,
        args.out_model,
        args.out_predictions,
    )
    log.info("strong %s trained (%s) in %.1f s", args.role, info["mode"], info["seconds"])


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import EvaluationSettings, evaluate_students
    from .settings import from_config

    settings = from_config(EvaluationSettings, json.loads(args.settings), "evaluation")
    if not len(args.methods) == len(args.students) == len(args.outputs):
        raise SystemExit(
            f"evaluate: {len(args.methods)} methods, {len(args.students)} student prediction files "
            f"and {len(args.outputs)} outputs; each method needs one of each, in the same order"
        )
    metrics = evaluate_students(
        args.test,
        args.transfer,
        args.weak_test,
        args.weak_transfer,
        dict(zip(args.methods, args.students)),
        args.ceiling,
        settings,
        json.loads(args.experiment),
        dict(zip(args.methods, args.outputs)),
        json.loads(args.bands),
    )
    for method, m in metrics.items():
        log.info(
            "%s: weak %.4f  student %.4f  ceiling %.4f  PGR %s [%s, %s]",
            method,
            m["weak_acc"],
            m["student_acc"],
            m["ceiling_acc"],
            m["pgr"],
            m["pgr_ci_low"],
            m["pgr_ci_high"],
        )


def cmd_summarize(args: argparse.Namespace) -> None:
    from .evaluate import EvaluationSettings
    from .settings import from_config
    from .summary import summarize, write_resolved_config

    settings = from_config(EvaluationSettings, json.loads(args.settings), "evaluation")
    summary, by_seed = summarize(
        args.metrics,
        args.out_parquet,
        args.out_csv,
        args.out_by_seed_parquet,
        args.out_by_seed_csv,
        args.out_html,
        settings.confidence_level,
        models=json.loads(args.config).get("models"),
    )
    if args.out_config:
        write_resolved_config(json.loads(args.config), args.out_config)
    log.info("summary of %d experiments in %d seed groups:\n%s", len(summary), len(by_seed), summary.to_string())


def cmd_plots(args: argparse.Namespace) -> None:
    import pandas as pd

    from .family_plots import make_family_plots
    from .io import read_json
    from .plots import make_plots

    summary, by_seed, outputs = pd.read_parquet(args.summary), pd.read_parquet(args.by_seed), mapping(args.outputs)
    paths = make_plots(summary, by_seed, [read_json(path) for path in args.metrics], outputs)
    paths |= make_family_plots(summary, by_seed, args.method, outputs, args.weak_order, args.strong_order)
    log.info("plots written: %s", ", ".join(str(path) for path in paths.values()))


# Commands that took the name of their rule: the old names still work, with a warning, in this version.
RENAMED = {
    "train-teacher": "train-weak",
    "label": "label-weak",
    "combine-labels": "combine-weak-labels",
    "degrade-labels": "degrade-weak-labels",
    "aggregate-labels": "aggregate-weak-labels",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2s", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help="a plugin to import first (repeatable): an absolute file path or a module name",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], *options: tuple) -> None:
        command = sub.add_parser(name, aliases=[old for old, new in RENAMED.items() if new == name])
        for flags, kwargs in options:
            command.add_argument(*flags, **kwargs)
        command.set_defaults(handler=handler)

    for add_commands in (
        _stage_commands,
        _evaluation_commands,
        weak_source_commands,
        store_commands,
        reasoning_commands,
        suite_commands,
        results_commands,
    ):
        add_commands(add)
    return parser


def _stage_commands(add: Adder) -> None:
    """The classification stages that train and label: data, teacher, labels, features, strong."""
    add("prepare-data", cmd_prepare_data, (("--task",), REQ), (("--spec",), REQ), SEED, (("--out-dir",), REQ))
    add(
        "train-weak",
        cmd_train_teacher,
        (("--train",), REQ),
        (("--val",), REQ),
        (("--manifest",), REQ),
        (("--checkpoint",), REQ),
        (("--settings",), {"default": "{}"}),
        SEED,
        DEVICE,
        (("--out-dir",), REQ),
    )
    add(
        "label-weak",
        cmd_label,
        (("--checkpoint",), REQ),
        (("--inputs",), PAIRS),
        (("--outputs",), PAIRS),
        (("--settings",), {"default": "{}"}),
        (("--provenance",), {"default": "{}"}),
    )
    add(
        "extract-features",
        cmd_extract_features,
        (("--checkpoint",), REQ),
        (("--inputs",), PAIRS),
        (("--outputs",), PAIRS),
        (("--settings",), {**REQ, "help": "JSON: max_length, batch_size, layer, pooling"}),
        DEVICE,
    )
    add(
        "train-strong",
        cmd_train_strong,
        (("--role",), {"required": True, "choices": ["student", "ceiling"]}),
        (("--spec",), REQ),
        (("--method",), {"default": "{}"}),
        (("--targets",), REQ),
        (("--manifest",), REQ),
        (("--test",), REQ),
        (("--features",), {"nargs": "*", "default": []}),
        (("--checkpoint",), REQ),
        SEED,
        DEVICE,
        (("--out-model",), REQ),
        (("--out-predictions",), REQ),
    )


def _evaluation_commands(add: Adder) -> None:
    """Scoring, the summary over experiments and seeds, and the plots."""
    add(
        "evaluate",
        cmd_evaluate,
        (("--test",), REQ),
        (("--transfer",), REQ),
        (("--weak-test",), REQ),
        (("--weak-transfer",), REQ),
        (("--methods",), LIST),
        (("--students",), LIST),
        (("--ceiling",), REQ),
        EVALUATION,
        (("--experiment",), {"default": "{}"}),
        (("--outputs",), LIST),
        (("--bands",), {"default": "{}", "help": "JSON: {method: [low, high]} weak-confidence band it trains on"}),
    )
    add(
        "summarize",
        cmd_summarize,
        (("--metrics",), {"nargs": "+", "required": True}),
        (("--out-parquet",), REQ),
        (("--out-csv",), REQ),
        (("--out-by-seed-parquet",), REQ),
        (("--out-by-seed-csv",), REQ),
        (("--out-html",), REQ),
        EVALUATION,
        (("--config",), {"default": "{}"}),
        (("--out-config",), {}),
    )
    add(
        "plots",
        cmd_plots,
        (("--summary",), REQ),
        (("--by-seed",), REQ),
        (("--metrics",), {"nargs": "+", "required": True}),
        (("--outputs",), {"nargs": "+", "required": True, "metavar": "PLOT=PATH"}),
        (("--method",), {"required": True, "help": "the method the model-family plots show"}),
        (("--weak-order",), {"nargs": "+", "required": True, "metavar": "WEAK"}),
        (("--strong-order",), {"nargs": "+", "required": True, "metavar": "STRONG"}),
    )


def limit_threads(threads: int | None) -> None:
    """Cap torch's CPU threads without importing torch: stages that never touch it (data, evaluate,
    plots, the store) then start in about a second instead of paying torch's import on every job."""
    if not threads:
        return
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def main(argv: list[str] | None = None, *, process_exits: bool = False) -> None:
    """Run one command. ``process_exits``: the process ends when this returns (``python -m w2s``), so
    a command may leave to the exit what only a process that goes on needs undone.

    What a command must do so that nothing is lost at exit: write every output through
    :mod:`w2s.io` (or another writer it closes) and close it before returning, never leaving a write
    to a finalizer (``__del__``, ``weakref.finalize``) or to an exit handler. A vLLM job freezes its
    heap when its engine closes (:class:`w2s.vllm_engine.VLLMEngine`), and the exit then collects
    nothing made before, so such finalizers would not run."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    args.process_exits = process_exits
    if args.command in RENAMED:
        log.warning(
            "`w2s %s` is deprecated and will be removed in the next version: use `w2s %s`",
            args.command,
            RENAMED[args.command],
        )
    log.info("%s: CUDA_VISIBLE_DEVICES=%s", args.command, os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    limit_threads(args.threads)
    if args.plugin:
        from .plugins import load_plugins

        load_plugins(args.plugin)
    args.handler(args)


if __name__ == "__main__":
    main(process_exits=True)
