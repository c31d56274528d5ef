"""Command line entry points, one subcommand per workflow stage (``python -m w2s <stage> ...``).

Rules pass every setting explicitly (JSON for nested config), so a job's command line says
everything that determines its output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable

from .runtime import set_threads

log = logging.getLogger("w2s")


def _mapping(pairs: list[str]) -> dict[str, str]:
    """Parse ``name=value`` arguments."""
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {pair!r}")
        result[name] = value
    return result


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from .data import prepare_splits

    manifest = prepare_splits(args.task, json.loads(args.spec), args.seed, args.out_dir)
    log.info("splits written: %s", {k: v["n"] for k, v in manifest["splits"].items()})


def cmd_train_teacher(args: argparse.Namespace) -> None:
    from .teacher import train_teacher

    info = train_teacher(args.data_dir, args.checkpoint, json.loads(args.settings), args.seed, args.out_dir,
                         args.device)
    log.info("weak teacher trained: %d steps, final loss %.4f, val accuracy %s",
             info["steps"], info["final_loss"], info.get("val_accuracy"))


def cmd_label(args: argparse.Namespace) -> None:
    from .labeling import label_splits

    label_splits(args.checkpoint, _mapping(args.inputs), _mapping(args.outputs), json.loads(args.settings),
                 provenance=json.loads(args.provenance))


def cmd_extract_features(args: argparse.Namespace) -> None:
    from .strong import extract_features

    extract_features(args.checkpoint, _mapping(args.inputs), _mapping(args.outputs), args.max_length,
                     args.batch_size, args.device)


def cmd_train_strong(args: argparse.Namespace) -> None:
    from .io import read_json
    from .strong import train_finetune_role, train_probe_role

    label_names = read_json(args.manifest)["label_names"]
    if args.mode == "linear_probe":
        info = train_probe_role(args.role, args.targets, _mapping(args.features), len(label_names),
                                json.loads(args.probe), args.loss, args.out_model, args.out_predictions)
    else:
        info = train_finetune_role(args.role, args.targets, args.test, args.checkpoint, label_names,
                                   json.loads(args.settings), args.loss, args.seed, args.device,
                                   args.out_model, args.out_predictions)
    log.info("strong %s trained (%s) in %.1f s", args.role, args.mode, info["seconds"])


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_experiment

    metrics = evaluate_experiment(args.test, args.transfer, args.weak_test, args.weak_transfer, args.student,
                                  args.ceiling, args.min_pgr_gap, json.loads(args.experiment), args.out)
    log.info("weak %.4f  student %.4f  ceiling %.4f  PGR %s", metrics["weak_acc"], metrics["student_acc"],
             metrics["ceiling_acc"], metrics["pgr"])


def cmd_summarize(args: argparse.Namespace) -> None:
    from .evaluate import summarize

    frame = summarize(args.metrics, args.out_parquet, args.out_csv)
    log.info("summary of %d experiments:\n%s", len(frame), frame.to_string())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2s", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], *options: tuple) -> None:
        command = sub.add_parser(name)
        for flags, kwargs in options:
            command.add_argument(*flags, **kwargs)
        command.set_defaults(handler=handler)

    req = {"required": True}
    seed = (("--seed",), {"type": int, "required": True})
    device = (("--device",), {"default": "auto", "choices": ["auto", "cpu", "cuda"]})
    pairs = {"nargs": "+", "required": True, "metavar": "SPLIT=PATH"}

    add("prepare-data", cmd_prepare_data, (("--task",), req), (("--spec",), req), seed, (("--out-dir",), req))
    add("train-teacher", cmd_train_teacher, (("--data-dir",), req), (("--checkpoint",), req),
        (("--settings",), {"default": "{}"}), seed, device, (("--out-dir",), req))
    add("label", cmd_label, (("--checkpoint",), req), (("--inputs",), pairs), (("--outputs",), pairs),
        (("--settings",), {"default": "{}"}), (("--provenance",), {"default": "{}"}))
    add("extract-features", cmd_extract_features, (("--checkpoint",), req), (("--inputs",), pairs),
        (("--outputs",), pairs), (("--max-length",), {"type": int, "default": 128}),
        (("--batch-size",), {"type": int, "default": 32}), device)
    add("train-strong", cmd_train_strong, (("--role",), {"required": True, "choices": ["student", "ceiling"]}),
        (("--mode",), {"required": True, "choices": ["linear_probe", "full_finetune"]}),
        (("--targets",), req), (("--manifest",), req), (("--features",), {"nargs": "*", "default": []}),
        (("--test",), {}), (("--checkpoint",), {}), (("--settings",), {"default": "{}"}),
        (("--probe",), {"default": "{}"}), (("--loss",), {"default": "xent"}), seed, device,
        (("--out-model",), req), (("--out-predictions",), req))
    add("evaluate", cmd_evaluate, (("--test",), req), (("--transfer",), req), (("--weak-test",), req),
        (("--weak-transfer",), req), (("--student",), req), (("--ceiling",), req),
        (("--min-pgr-gap",), {"type": float, "default": 0.01}), (("--experiment",), {"default": "{}"}),
        (("--out",), req))
    add("summarize", cmd_summarize, (("--metrics",), {"nargs": "+", "required": True}),
        (("--out-parquet",), req), (("--out-csv",), req))
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    args.handler(args)


if __name__ == "__main__":
    main()
