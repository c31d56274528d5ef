"""The generative reasoning track's commands (``python -m w2s reasoning-<step> ...``); :mod:`w2s.cli`
registers them. Kept apart from the classification commands, and read by the code hashes the same
way (each command's hash holds its own handler and parser entry only)."""

from __future__ import annotations

import argparse
import json
import logging

from .cli_args import DEVICE, REQ, SEED, Adder, mapping

log = logging.getLogger("w2s")


def cmd_reasoning_problems(args: argparse.Namespace) -> None:
    from .reasoning.problems import prepare_problems

    manifest = prepare_problems(args.task, json.loads(args.spec), args.seed, args.out_dir)
    log.info("problems written: %s", manifest["counts"])


def cmd_reasoning_sample(args: argparse.Namespace) -> None:
    from .reasoning.generation import sample_problems

    n = {split: int(value) for split, value in mapping(args.n).items()}
    summary = sample_problems(
        args.checkpoint,
        args.problems,
        n,
        json.loads(args.sampling),
        json.loads(args.engine),
        args.seed,
        args.generator,
        args.out,
        json.loads(args.provenance),
        process_exits=args.process_exits,
    )
    log.info("%s sampled: %s", args.generator, summary)


def cmd_reasoning_score(args: argparse.Namespace) -> None:
    from .reasoning.scoring import score_file

    log.info("scored: %s", score_file(args.samples, args.checks, json.loads(args.aggregation), args.out))


def cmd_reasoning_train_set(args: argparse.Namespace) -> None:
    from .reasoning.selection import write_train_set

    settings = json.loads(args.settings)
    counts = write_train_set(
        json.loads(args.method),
        args.problems,
        mapping(args.samples),
        args.weak_scores,
        settings["threshold"],
        settings["pairs_per_problem"],
        args.out,
        json.loads(args.provenance),
    )
    log.info("train set rows per stage: %s", counts)


def cmd_reasoning_train(args: argparse.Namespace) -> None:
    from .reasoning.launch import relaunch_if_several_gpus
    from .reasoning.tuning import tune_student

    if relaunch_if_several_gpus(args):  # several GPUs: ran under accelerate launch (FSDP)
        return
    info = tune_student(
        args.checkpoint,
        args.train_set,
        json.loads(args.settings),
        json.loads(args.prompt),
        args.seed,
        args.out_dir,
        args.device,
    )
    log.info("trained in %.0f s: sft %s, dpo %s", info["seconds"], info.get("sft"), info.get("dpo"))


def cmd_reasoning_evaluate(args: argparse.Namespace) -> None:
    from .reasoning.evaluate import evaluate_experiment

    evaluation = json.loads(args.evaluation)
    report = evaluate_experiment(
        args.problems,
        json.loads(args.generators),
        evaluation["k"],
        evaluation,
        args.out_json,
        args.out_csv,
        args.out_plot,
        json.loads(args.context),
    )
    for name, metrics in report["generators"].items():
        log.info("%s: pass@1 %.3f selection@1 %.3f", name, metrics["pass@1"], metrics["selection@1"])


def cmd_reasoning_summarize(args: argparse.Namespace) -> None:
    from .reasoning.evaluate import summarize_runs

    evaluation = json.loads(args.evaluation)
    pooled = summarize_runs(
        args.metrics, evaluation["confidence_level"], args.out_runs, args.out_by_seed, evaluation.get("min_gap", 0.0)
    )
    log.info("reasoning summary: %d task x generator rows", len(pooled))


def reasoning_commands(add: Adder) -> None:
    """The generative reasoning track."""
    add(
        "reasoning-problems",
        cmd_reasoning_problems,
        (("--task",), REQ),
        (("--spec",), REQ),
        SEED,
        (("--out-dir",), REQ),
    )
    add(
        "reasoning-sample",
        cmd_reasoning_sample,
        (("--checkpoint",), REQ),
        (("--problems",), REQ),
        (("--n",), {"nargs": "+", "required": True, "metavar": "SPLIT=N"}),
        (("--sampling",), {"default": "{}"}),
        (("--engine",), {"default": "{}"}),
        SEED,
        (("--generator",), REQ),
        (("--out",), REQ),
        (("--provenance",), {"default": "{}"}),
    )
    add(
        "reasoning-score",
        cmd_reasoning_score,
        (("--samples",), REQ),
        (("--checks",), {"nargs": "+", "required": True}),
        (("--aggregation",), {"default": "{}"}),
        (("--out",), REQ),
    )
    add(
        "reasoning-train-set",
        cmd_reasoning_train_set,
        (("--method",), REQ),
        (("--problems",), REQ),
        (("--samples",), {"nargs": "*", "default": [], "metavar": "GENERATOR=PATH"}),
        (("--weak-scores",), {"default": None}),
        (("--settings",), {**REQ, "help": "JSON: threshold (reasoning.verifiers), pairs_per_problem"}),
        (("--out",), REQ),
        (("--provenance",), {"default": "{}"}),
    )
    add(
        "reasoning-train",
        cmd_reasoning_train,
        (("--checkpoint",), REQ),
        (("--train-set",), REQ),
        (("--settings",), {"default": "{}"}),
        (("--prompt",), {"default": "{}"}),
        SEED,
        DEVICE,
        (("--out-dir",), REQ),
    )
    add(
        "reasoning-evaluate",
        cmd_reasoning_evaluate,
        (("--problems",), REQ),
        (("--generators",), REQ),
        (("--evaluation",), {**REQ, "help": "JSON: the reasoning.evaluation section"}),
        (("--context",), {"default": "{}"}),
        (("--out-json",), REQ),
        (("--out-csv",), REQ),
        (("--out-plot",), REQ),
    )
    add(
        "reasoning-summarize",
        cmd_reasoning_summarize,
        (("--metrics",), {"nargs": "+", "required": True}),
        (("--evaluation",), {**REQ, "help": "JSON: the reasoning.evaluation section"}),
        (("--out-runs",), REQ),
        (("--out-by-seed",), REQ),
    )
