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
from typing import Callable


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
    from .teacher import train_teacher_files

    info = train_teacher_files(args.train, args.val, args.manifest, args.checkpoint, json.loads(args.settings),
                               args.seed, args.out_dir, args.device)
    log.info("weak teacher trained: %d steps, final loss %.4f, val accuracy %s",
             info["steps"], info["final_loss"], info.get("val_accuracy"))


def cmd_label(args: argparse.Namespace) -> None:
    from .labeling import label_splits

    label_splits(args.checkpoint, _mapping(args.inputs), _mapping(args.outputs), json.loads(args.settings),
                 provenance=json.loads(args.provenance), process_exits=args.process_exits)


def cmd_combine_labels(args: argparse.Namespace) -> None:
    from .weak_sources.ensembles import combine_weak_labels

    members = _source_files(args.members)
    for split, out in _mapping(args.outputs).items():
        combine_weak_labels({m: files[split] for m, files in members.items()}, args.rule, out,
                            json.loads(args.provenance))


def cmd_degrade_labels(args: argparse.Namespace) -> None:
    from .weak_sources.ensembles import degrade_weak_labels

    source, gold = _mapping(args.source), _mapping(args.gold)
    for offset, (split, out) in enumerate(_mapping(args.outputs).items()):
        achieved = degrade_weak_labels(source[split], gold[split], args.target_accuracy, args.seed + offset, out,
                                       json.loads(args.provenance))
        log.info("%s: weak-label accuracy set to %.4f", split, achieved)


def _source_files(pairs: list[str]) -> dict[str, dict[str, str]]:
    """Parse ``SOURCE/SPLIT=PATH`` arguments into {source: {split: path}}, sources in their order."""
    files: dict[str, dict[str, str]] = {}
    for name, path in _mapping(pairs).items():
        source, sep, split = name.rpartition("/")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected SOURCE/SPLIT=PATH, got {name}={path}")
        files.setdefault(source, {})[split] = path
    return files


def cmd_aggregate_labels(args: argparse.Namespace) -> None:
    from .weak_sources.aggregate import aggregate_label_files

    metadata = aggregate_label_files(
        _source_files(args.teachers), _mapping(args.outputs),
        json.loads(args.settings), fit_split="transfer", labeling_functions=args.labeling_functions,
        table_out=args.table_out, metadata_out=args.metadata_out, provenance=json.loads(args.provenance))
    log.info("aggregated %s with %s", metadata.get("teachers"), metadata.get("aggregator", "the label model"))


def cmd_evaluate_verifiers(args: argparse.Namespace) -> None:
    import pyarrow as pa

    from .io import write_json, write_parquet
    from .weak_sources.report import evaluate_verifiers

    report, table = evaluate_verifiers(_source_files(args.teachers), args.labeling_functions,
                                       json.loads(args.settings), {"transfer": args.gold_transfer, "test": args.gold_test})
    write_json(report, args.out_json)
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), args.out_table)
    log.info("aggregator test accuracy: %s", {k: round(v["test_accuracy"], 4) for k, v in report["aggregators"].items()})
    log.info("label model: %d EM iterations, converged %s, merged %s", report["label_model"]["n_iter"],
             report["label_model"]["converged"], report["label_model"]["merged"])


def cmd_extract_features(args: argparse.Namespace) -> None:
    from .features import extract_features

    settings = json.loads(args.settings)
    extract_features(args.checkpoint, _mapping(args.inputs), _mapping(args.outputs), settings["max_length"],
                     settings["batch_size"], args.device, layer=settings["layer"], pooling=settings["pooling"])


def cmd_train_strong(args: argparse.Namespace) -> None:
    from .io import read_json
    from .strong import train_role

    info = train_role(args.role, json.loads(args.spec), json.loads(args.method), args.targets, args.test,
                      _mapping(args.features), args.checkpoint, read_json(args.manifest)["label_names"],
                      args.seed, args.device, args.out_model, args.out_predictions)
    log.info("strong %s trained (%s) in %.1f s", args.role, info["mode"], info["seconds"])


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import EvaluationSettings, evaluate_students
    from .settings import from_config

    settings = from_config(EvaluationSettings, json.loads(args.settings), "evaluation")
    if not len(args.methods) == len(args.students) == len(args.outputs):
        raise SystemExit(f"evaluate: {len(args.methods)} methods, {len(args.students)} student prediction files "
                         f"and {len(args.outputs)} outputs; each method needs one of each, in the same order")
    metrics = evaluate_students(args.test, args.transfer, args.weak_test, args.weak_transfer,
                                dict(zip(args.methods, args.students)), args.ceiling, settings,
                                json.loads(args.experiment), dict(zip(args.methods, args.outputs)))
    for method, m in metrics.items():
        log.info("%s: weak %.4f  student %.4f  ceiling %.4f  PGR %s [%s, %s]", method, m["weak_acc"], m["student_acc"],
                 m["ceiling_acc"], m["pgr"], m["pgr_ci_low"], m["pgr_ci_high"])


def cmd_summarize(args: argparse.Namespace) -> None:
    from .evaluate import EvaluationSettings, summarize, write_resolved_config
    from .settings import from_config

    settings = from_config(EvaluationSettings, json.loads(args.settings), "evaluation")
    summary, by_seed = summarize(args.metrics, args.out_parquet, args.out_csv, args.out_by_seed_parquet,
                                 args.out_by_seed_csv, args.out_html, settings.confidence_level,
                                 models=json.loads(args.config).get("models"))
    if args.out_config:
        write_resolved_config(json.loads(args.config), args.out_config)
    log.info("summary of %d experiments in %d seed groups:\n%s", len(summary), len(by_seed), summary.to_string())


def cmd_plots(args: argparse.Namespace) -> None:
    import pandas as pd

    from .family_plots import make_family_plots
    from .io import read_json
    from .plots import make_plots

    summary, by_seed, outputs = pd.read_parquet(args.summary), pd.read_parquet(args.by_seed), _mapping(args.outputs)
    paths = make_plots(summary, by_seed, [read_json(path) for path in args.metrics], outputs)
    paths |= make_family_plots(summary, by_seed, args.method, outputs, args.weak_order, args.strong_order)
    log.info("plots written: %s", ", ".join(str(path) for path in paths.values()))


def cmd_store_fetch(args: argparse.Namespace) -> None:
    from .io import read_json
    from .label_store import LabelStore

    manifest = LabelStore(args.store).fetch(args.key, _mapping(args.outputs))
    expected, local = manifest["provenance"].get("data_hash"), read_json(args.manifest)["data_hash"]
    if expected != local:
        for path in _mapping(args.outputs).values():
            os.remove(path)
        raise SystemExit(f"label store entry {args.key} was made from data {expected}, but the local splits are "
                         f"{local}: the source data changed under the same spec. Remove the entry "
                         f"(w2s store-gc --store {args.store} --remove {args.key}) to recompute it.")
    log.info("store entry %s fetched from %s (published by %s at %s)", args.key, args.store,
             manifest["published_by"], manifest["published_at"])


def cmd_store_publish(args: argparse.Namespace) -> None:
    from .io import read_json, write_json
    from .label_store import LabelStore

    files = _mapping(args.files)
    provenance = {"data_hash": read_json(args.manifest)["data_hash"]}
    published = LabelStore(args.store).publish(args.key, files, json.loads(args.key_inputs), provenance)
    write_json({"store": args.store, "key": args.key, "published_now": published}, args.out)
    log.info("store entry %s %s in %s", args.key, "published" if published else "found", args.store)


def cmd_store_list(args: argparse.Namespace) -> None:
    from .label_store import LabelStore

    print(LabelStore(args.store).list().to_string(index=False))


def cmd_store_show(args: argparse.Namespace) -> None:
    from .label_store import LabelStore

    print(json.dumps(LabelStore(args.store).show(args.key), indent=2, sort_keys=True))


def cmd_store_gc(args: argparse.Namespace) -> None:
    from .label_store import LabelStore

    store = LabelStore(args.store)
    keep = None if not args.remove else set(store.keys()) - set(args.remove)
    for path in store.gc(keep=keep, older_than_days=args.older_than_days, dry_run=args.dry_run):
        print(("would remove " if args.dry_run else "removed ") + path)


def cmd_reasoning_problems(args: argparse.Namespace) -> None:
    from .reasoning.problems import prepare_problems

    manifest = prepare_problems(args.task, json.loads(args.spec), args.seed, args.out_dir)
    log.info("problems written: %s", manifest["counts"])


def cmd_reasoning_sample(args: argparse.Namespace) -> None:
    from .reasoning.generation import sample_problems

    n = {split: int(value) for split, value in _mapping(args.n).items()}
    summary = sample_problems(args.checkpoint, args.problems, n, json.loads(args.sampling), json.loads(args.engine),
                              args.seed, args.generator, args.out, json.loads(args.provenance),
                              process_exits=args.process_exits)
    log.info("%s sampled: %s", args.generator, summary)


def cmd_reasoning_score(args: argparse.Namespace) -> None:
    from .reasoning.scoring import score_file

    log.info("scored: %s", score_file(args.samples, args.checks, json.loads(args.aggregation), args.out))


def cmd_reasoning_train_set(args: argparse.Namespace) -> None:
    from .reasoning.selection import write_train_set

    settings = json.loads(args.settings)
    counts = write_train_set(json.loads(args.method), args.problems, _mapping(args.samples), args.weak_scores,
                             settings["threshold"], settings["pairs_per_problem"], args.out,
                             json.loads(args.provenance))
    log.info("train set rows per stage: %s", counts)


def cmd_reasoning_train(args: argparse.Namespace) -> None:
    from .reasoning.launch import relaunch_if_several_gpus
    from .reasoning.tuning import tune_student

    if relaunch_if_several_gpus(args):  # several GPUs: ran under accelerate launch (FSDP)
        return
    info = tune_student(args.checkpoint, args.train_set, json.loads(args.settings), json.loads(args.prompt),
                        args.seed, args.out_dir, args.device)
    log.info("trained in %.0f s: sft %s, dpo %s", info["seconds"], info.get("sft"), info.get("dpo"))


def cmd_reasoning_evaluate(args: argparse.Namespace) -> None:
    from .reasoning.evaluate import evaluate_experiment

    evaluation = json.loads(args.evaluation)
    report = evaluate_experiment(args.problems, json.loads(args.generators), evaluation["k"], evaluation,
                                 args.out_json, args.out_csv, args.out_plot, json.loads(args.context))
    for name, metrics in report["generators"].items():
        log.info("%s: pass@1 %.3f selection@1 %.3f", name, metrics["pass@1"], metrics["selection@1"])


def cmd_reasoning_summarize(args: argparse.Namespace) -> None:
    from .reasoning.evaluate import summarize_runs

    pooled = summarize_runs(args.metrics, json.loads(args.evaluation)["confidence_level"], args.out_runs,
                            args.out_by_seed)
    log.info("reasoning summary: %d task x generator rows", len(pooled))


Adder = Callable[..., None]
REQ = {"required": True}  # a required flag
SEED = (("--seed",), {"type": int, "required": True})
DEVICE = (("--device",), {"default": "auto", "choices": ["auto", "cpu", "cuda"]})
PAIRS = {"nargs": "+", "required": True, "metavar": "SPLIT=PATH"}
LIST = {"nargs": "+", "required": True}
# The `evaluation` section as JSON ({}: the schema's defaults, through EvaluationSettings).
EVALUATION = (("--settings",), {"default": "{}", "help": "JSON: the evaluation section"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2s", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], *options: tuple) -> None:
        command = sub.add_parser(name)
        for flags, kwargs in options:
            command.add_argument(*flags, **kwargs)
        command.set_defaults(handler=handler)

    for add_commands in (_stage_commands, _evaluation_commands, _weak_source_commands, _store_commands,
                         _reasoning_commands):
        add_commands(add)
    return parser


def _stage_commands(add: Adder) -> None:
    """The classification stages that train and label: data, teacher, labels, features, strong."""
    add("prepare-data", cmd_prepare_data, (("--task",), REQ), (("--spec",), REQ), SEED, (("--out-dir",), REQ))
    add("train-teacher", cmd_train_teacher, (("--train",), REQ), (("--val",), REQ), (("--manifest",), REQ),
        (("--checkpoint",), REQ),
        (("--settings",), {"default": "{}"}), SEED, DEVICE, (("--out-dir",), REQ))
    add("label", cmd_label, (("--checkpoint",), REQ), (("--inputs",), PAIRS), (("--outputs",), PAIRS),
        (("--settings",), {"default": "{}"}), (("--provenance",), {"default": "{}"}))
    add("extract-features", cmd_extract_features, (("--checkpoint",), REQ), (("--inputs",), PAIRS),
        (("--outputs",), PAIRS), (("--settings",), {**REQ, "help": "JSON: max_length, batch_size, layer, pooling"}),
        DEVICE)
    add("train-strong", cmd_train_strong, (("--role",), {"required": True, "choices": ["student", "ceiling"]}),
        (("--spec",), REQ), (("--method",), {"default": "{}"}), (("--targets",), REQ), (("--manifest",), REQ),
        (("--test",), REQ), (("--features",), {"nargs": "*", "default": []}), (("--checkpoint",), REQ),
        SEED, DEVICE, (("--out-model",), REQ), (("--out-predictions",), REQ))


def _evaluation_commands(add: Adder) -> None:
    """Scoring, the summary over experiments and seeds, and the plots."""
    add("evaluate", cmd_evaluate, (("--test",), REQ), (("--transfer",), REQ), (("--weak-test",), REQ),
        (("--weak-transfer",), REQ), (("--methods",), LIST), (("--students",), LIST), (("--ceiling",), REQ),
        EVALUATION, (("--experiment",), {"default": "{}"}), (("--outputs",), LIST))
    add("summarize", cmd_summarize, (("--metrics",), {"nargs": "+", "required": True}),
        (("--out-parquet",), REQ), (("--out-csv",), REQ), (("--out-by-seed-parquet",), REQ),
        (("--out-by-seed-csv",), REQ), (("--out-html",), REQ), EVALUATION,
        (("--config",), {"default": "{}"}), (("--out-config",), {}))
    add("plots", cmd_plots, (("--summary",), REQ), (("--by-seed",), REQ),
        (("--metrics",), {"nargs": "+", "required": True}),
        (("--outputs",), {"nargs": "+", "required": True, "metavar": "PLOT=PATH"}),
        (("--method",), {"required": True, "help": "the method the model-family plots show"}),
        (("--weak-order",), {"nargs": "+", "required": True, "metavar": "WEAK"}),
        (("--strong-order",), {"nargs": "+", "required": True, "metavar": "STRONG"}))


def _weak_source_commands(add: Adder) -> None:
    """Weak-label sources beyond one teacher: ensembles, degraded labels, aggregated verifiers."""
    outputs = (("--outputs",), PAIRS)
    sources = {"nargs": "+", "required": True, "metavar": "SOURCE/SPLIT=PATH"}
    add("combine-labels", cmd_combine_labels, (("--members",), sources), (("--rule",), {"default": "mean"}), outputs,
        (("--provenance",), {"default": "{}"}))
    add("degrade-labels", cmd_degrade_labels, (("--source",), PAIRS), (("--gold",), PAIRS),
        (("--target-accuracy",), {"type": float, "required": True}), SEED, outputs,
        (("--provenance",), {"default": "{}"}))
    teachers = (("--teachers",), sources)
    functions = (("--labeling-functions",), {"nargs": "*", "default": []})
    add("aggregate-labels", cmd_aggregate_labels, teachers, functions, (("--settings",), {"default": "{}"}), outputs,
        (("--table-out",), REQ), (("--metadata-out",), REQ),
        (("--provenance",), {"default": "{}"}))
    add("evaluate-verifiers", cmd_evaluate_verifiers, teachers, functions, (("--settings",), {"default": "{}"}),
        (("--gold-transfer",), REQ), (("--gold-test",), REQ), (("--out-json",), REQ), (("--out-table",), REQ))


def _store_commands(add: Adder) -> None:
    """The shared label store (weak labels, reasoning samples): fetch and publish an entry, look after it."""
    store = (("--store",), REQ)
    add("store-fetch", cmd_store_fetch, store, (("--key",), REQ), (("--manifest",), REQ), (("--outputs",), PAIRS))
    add("store-publish", cmd_store_publish, store, (("--key",), REQ), (("--key-inputs",), REQ),
        (("--manifest",), REQ), (("--files",), PAIRS), (("--out",), REQ))
    add("store-list", cmd_store_list, store)
    add("store-show", cmd_store_show, store, (("--key",), REQ))
    add("store-gc", cmd_store_gc, store, (("--remove",), {"nargs": "*", "default": [], "metavar": "KEY"}),
        (("--older-than-days",), {"type": float}), (("--dry-run",), {"action": "store_true"}))


def _reasoning_commands(add: Adder) -> None:
    """The generative reasoning track."""
    add("reasoning-problems", cmd_reasoning_problems, (("--task",), REQ), (("--spec",), REQ), SEED,
        (("--out-dir",), REQ))
    add("reasoning-sample", cmd_reasoning_sample, (("--checkpoint",), REQ), (("--problems",), REQ),
        (("--n",), {"nargs": "+", "required": True, "metavar": "SPLIT=N"}), (("--sampling",), {"default": "{}"}),
        (("--engine",), {"default": "{}"}), SEED, (("--generator",), REQ), (("--out",), REQ),
        (("--provenance",), {"default": "{}"}))
    add("reasoning-score", cmd_reasoning_score, (("--samples",), REQ), (("--checks",), {"nargs": "+", "required": True}),
        (("--aggregation",), {"default": "{}"}), (("--out",), REQ))
    add("reasoning-train-set", cmd_reasoning_train_set, (("--method",), REQ), (("--problems",), REQ),
        (("--samples",), {"nargs": "*", "default": [], "metavar": "GENERATOR=PATH"}),
        (("--weak-scores",), {"default": None}),
        (("--settings",), {**REQ, "help": "JSON: threshold (reasoning.verifiers), pairs_per_problem"}), (("--out",), REQ),
        (("--provenance",), {"default": "{}"}))
    add("reasoning-train", cmd_reasoning_train, (("--checkpoint",), REQ), (("--train-set",), REQ),
        (("--settings",), {"default": "{}"}), (("--prompt",), {"default": "{}"}), SEED, DEVICE, (("--out-dir",), REQ))
    add("reasoning-evaluate", cmd_reasoning_evaluate, (("--problems",), REQ), (("--generators",), REQ),
        (("--evaluation",), {**REQ, "help": "JSON: the reasoning.evaluation section"}),
        (("--context",), {"default": "{}"}), (("--out-json",), REQ), (("--out-csv",), REQ), (("--out-plot",), REQ))
    add("reasoning-summarize", cmd_reasoning_summarize, (("--metrics",), {"nargs": "+", "required": True}),
        (("--evaluation",), {**REQ, "help": "JSON: the reasoning.evaluation section"}), (("--out-runs",), REQ),
        (("--out-by-seed",), REQ))


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
    a command may leave to the exit what only a process that goes on needs undone."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    args = build_parser().parse_args(argv)
    args.process_exits = process_exits
    log.info("%s: CUDA_VISIBLE_DEVICES=%s", args.command, os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    limit_threads(args.threads)
    args.handler(args)


if __name__ == "__main__":
    main(process_exits=True)
