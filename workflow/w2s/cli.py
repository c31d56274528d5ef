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

log = logging.getLogger("w2s")


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from .data import prepare_splits

    manifest = prepare_splits(args.task, json.loads(args.spec), args.seed, args.out_dir)
    log.info("splits written: %s", {k: v["n"] for k, v in manifest["splits"].items()})


def cmd_check_suite(args: argparse.Namespace) -> None:
    """Stream the first rows of suite tasks from the hub and print one line per task; writes no
    files. Exit status 2 for an unknown task name (the registry is listed), 1 if a task failed."""
    from .suite import SuiteError
    from .suite.check import check_suite

    try:
        results = check_suite(args.tasks, args.rows, args.local)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for result in results:
        print(result.line(), flush=True)
    if not all(result.ok for result in results):
        raise SystemExit(1)


def cmd_train_teacher(args: argparse.Namespace) -> None:
    from .teacher import train_teacher_files

    info = train_teacher_files(args.train, args.val, args.manifest, args.checkpoint, json.loads(args.settings),
                               args.seed, args.out_dir, args.device)
    log.info("weak teacher trained: %d steps, final loss %.4f, val accuracy %s",
             info["steps"], info["final_loss"], info.get("val_accuracy"))


def cmd_label(args: argparse.Namespace) -> None:
    from .labeling import label_splits

    label_splits(args.checkpoint, mapping(args.inputs), mapping(args.outputs), json.loads(args.settings),
                 provenance=json.loads(args.provenance), process_exits=args.process_exits)


def cmd_combine_labels(args: argparse.Namespace) -> None:
    from .weak_sources.ensembles import combine_weak_labels

    members = _source_files(args.members)
    for split, out in mapping(args.outputs).items():
        combine_weak_labels({m: files[split] for m, files in members.items()}, args.rule, out,
                            json.loads(args.provenance))


def cmd_degrade_labels(args: argparse.Namespace) -> None:
    from .weak_sources.ensembles import degrade_weak_labels

    source, gold = mapping(args.source), mapping(args.gold)
    for offset, (split, out) in enumerate(mapping(args.outputs).items()):
        achieved = degrade_weak_labels(source[split], gold[split], args.target_accuracy, args.seed + offset, out,
                                       json.loads(args.provenance))
        log.info("%s: weak-label accuracy set to %.4f", split, achieved)


def _source_files(pairs: list[str]) -> dict[str, dict[str, str]]:
    """Parse ``SOURCE/SPLIT=PATH`` arguments into {source: {split: path}}, sources in their order."""
    files: dict[str, dict[str, str]] = {}
    for name, path in mapping(pairs).items():
        source, sep, split = name.rpartition("/")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected SOURCE/SPLIT=PATH, got {name}={path}")
        files.setdefault(source, {})[split] = path
    return files


def cmd_aggregate_labels(args: argparse.Namespace) -> None:
    from .weak_sources.aggregate import aggregate_label_files

    metadata = aggregate_label_files(
        _source_files(args.teachers), mapping(args.outputs),
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
    extract_features(args.checkpoint, mapping(args.inputs), mapping(args.outputs), settings["max_length"],
                     settings["batch_size"], args.device, layer=settings["layer"], pooling=settings["pooling"])


def cmd_train_strong(args: argparse.Namespace) -> None:
    from .io import read_json
    from .strong import train_role

    info = train_role(args.role, json.loads(args.spec), json.loads(args.method), args.targets, args.test,
                      mapping(args.features), args.checkpoint, read_json(args.manifest)["label_names"],
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
                                json.loads(args.experiment), dict(zip(args.methods, args.outputs)),
                                json.loads(args.bands))
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

    summary, by_seed, outputs = pd.read_parquet(args.summary), pd.read_parquet(args.by_seed), mapping(args.outputs)
    paths = make_plots(summary, by_seed, [read_json(path) for path in args.metrics], outputs)
    paths |= make_family_plots(summary, by_seed, args.method, outputs, args.weak_order, args.strong_order)
    log.info("plots written: %s", ", ".join(str(path) for path in paths.values()))


def cmd_store_fetch(args: argparse.Namespace) -> None:
    from .io import read_json
    from .label_store import LabelStore

    # The precision check resolves `auto` here: the rule runs this on the producer's kind of device.
    manifest = LabelStore(args.store).fetch(args.key, mapping(args.outputs), json.loads(args.precision))
    expected, local = manifest["provenance"].get("data_hash"), read_json(args.manifest)["data_hash"]
    if expected != local:
        for path in mapping(args.outputs).values():
            os.remove(path)
        raise SystemExit(f"label store entry {args.key} was made from data {expected}, but the local splits are "
                         f"{local}: the source data changed under the same spec. Remove the entry "
                         f"(w2s store-gc --store {args.store} --remove {args.key}) to recompute it.")
    log.info("store entry %s fetched from %s (published by %s at %s)", args.key, args.store,
             manifest["published_by"], manifest["published_at"])


def cmd_store_publish(args: argparse.Namespace) -> None:
    from .io import read_json, write_json
    from .label_store import LabelStore

    files = mapping(args.files)
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


def cmd_publish_results(args: argparse.Namespace) -> None:
    from .io import write_json
    from .results_store import RunFiles, current_code, environment_packages, publish_records, team_name

    options = json.loads(args.method_options)
    runs = [(RunFiles(metrics, args.manifest, args.weak_labels, student, args.ceiling, args.teacher_info),
             json.loads(args.comparability), options[method])
            for method, metrics, student in zip(args.methods, args.metrics, args.students, strict=True)]
    receipts = publish_records(args.store, runs, team_name(args.team), current_code(), environment_packages())
    write_json({"store": args.store, "records": receipts}, args.out)
    log.info("%d records in %s, %d new", len(receipts), args.store, sum(r["written"] for r in receipts))


def cmd_import_results(args: argparse.Namespace) -> None:
    from .results_store import existing_runs, publish_records, team_name

    receipts = publish_records(args.store, existing_runs(args.results_dir), team_name(args.team), None, {})
    log.info("%d records of %s in %s, %d new", len(receipts), args.results_dir, args.store,
             sum(r["written"] for r in receipts))


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from .leaderboard import build_leaderboard, load_records, write_leaderboard

    filters = {"tasks": args.task, "pairs": args.pair, "teams": args.team, "since": args.since, "until": args.until}
    board = build_leaderboard(load_records(args.store), strict=args.strict, filters=filters)
    paths = write_leaderboard(board, args.out_dir)
    log.info("leaderboard of %d records (%d skipped): %s", board.n_records, len(board.skipped),
             ", ".join(str(p) for p in paths.values()))


# Commands that took the name of their rule: the old names still work, with a warning, in this version.
RENAMED = {"train-teacher": "train-weak", "label": "label-weak", "combine-labels": "combine-weak-labels",
           "degrade-labels": "degrade-weak-labels", "aggregate-labels": "aggregate-weak-labels"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2s", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="a plugin to import first (repeatable): an absolute file path or a module name")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], *options: tuple) -> None:
        command = sub.add_parser(name, aliases=[old for old, new in RENAMED.items() if new == name])
        for flags, kwargs in options:
            command.add_argument(*flags, **kwargs)
        command.set_defaults(handler=handler)

    for add_commands in (_stage_commands, _evaluation_commands, _weak_source_commands, _store_commands,
                         reasoning_commands, _suite_commands, _results_commands):
        add_commands(add)
    return parser


def _stage_commands(add: Adder) -> None:
    """The classification stages that train and label: data, teacher, labels, features, strong."""
    add("prepare-data", cmd_prepare_data, (("--task",), REQ), (("--spec",), REQ), SEED, (("--out-dir",), REQ))
    add("train-weak", cmd_train_teacher, (("--train",), REQ), (("--val",), REQ), (("--manifest",), REQ),
        (("--checkpoint",), REQ),
        (("--settings",), {"default": "{}"}), SEED, DEVICE, (("--out-dir",), REQ))
    add("label-weak", cmd_label, (("--checkpoint",), REQ), (("--inputs",), PAIRS), (("--outputs",), PAIRS),
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
        EVALUATION, (("--experiment",), {"default": "{}"}), (("--outputs",), LIST),
        (("--bands",), {"default": "{}", "help": "JSON: {method: [low, high]} weak-confidence band it trains on"}))
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
    add("combine-weak-labels", cmd_combine_labels, (("--members",), sources), (("--rule",), {"default": "mean"}), outputs,
        (("--provenance",), {"default": "{}"}))
    add("degrade-weak-labels", cmd_degrade_labels, (("--source",), PAIRS), (("--gold",), PAIRS),
        (("--target-accuracy",), {"type": float, "required": True}), SEED, outputs,
        (("--provenance",), {"default": "{}"}))
    teachers = (("--teachers",), sources)
    functions = (("--labeling-functions",), {"nargs": "*", "default": []})
    add("aggregate-weak-labels", cmd_aggregate_labels, teachers, functions, (("--settings",), {"default": "{}"}), outputs,
        (("--table-out",), REQ), (("--metadata-out",), REQ),
        (("--provenance",), {"default": "{}"}))
    add("evaluate-verifiers", cmd_evaluate_verifiers, teachers, functions, (("--settings",), {"default": "{}"}),
        (("--gold-transfer",), REQ), (("--gold-test",), REQ), (("--out-json",), REQ), (("--out-table",), REQ))


def _store_commands(add: Adder) -> None:
    """The shared label store (weak labels, reasoning samples): fetch and publish an entry, look after it."""
    store = (("--store",), REQ)
    add("store-fetch", cmd_store_fetch, store, (("--key",), REQ), (("--manifest",), REQ), (("--outputs",), PAIRS),
        (("--precision",), {**REQ, "help": "JSON: this run's precision settings (w2s.store_keys.precision_settings)"}))
    add("store-publish", cmd_store_publish, store, (("--key",), REQ), (("--key-inputs",), REQ),
        (("--manifest",), REQ), (("--files",), PAIRS), (("--out",), REQ))
    add("store-list", cmd_store_list, store)
    add("store-show", cmd_store_show, store, (("--key",), REQ))
    add("store-gc", cmd_store_gc, store, (("--remove",), {"nargs": "*", "default": [], "metavar": "KEY"}),
        (("--older-than-days",), {"type": float}), (("--dry-run",), {"action": "store_true"}))


def _results_commands(add: Adder) -> None:
    """The shared results store: publish a run's records, import an old results/ directory, the leaderboard."""
    store = (("--store",), {**REQ, "help": "the results store: a directory or an fsspec URL"})
    team = (("--team",), {"default": None, "help": "team or user name (default: the login name)"})
    add("publish-results", cmd_publish_results, store, team, (("--comparability",), REQ),
        (("--method-options",), {**REQ, "help": "JSON: method name -> resolved options"}), (("--methods",), LIST),
        (("--metrics",), LIST), (("--students",), LIST), (("--manifest",), REQ), (("--weak-labels",), REQ),
        (("--ceiling",), REQ), (("--teacher-info",), {"default": None}), (("--out",), REQ))
    add("import-results", cmd_import_results, (("results_dir",), {"metavar": "RESULTS_DIR"}), store, team)
    many = {"action": "append", "default": None}
    add("leaderboard", cmd_leaderboard, (("--store",), {**REQ, "action": "append", "help": "a store (repeatable)"}),
        (("--out-dir",), REQ), (("--task",), many), (("--pair",), {**many, "metavar": "WEAK:STRONG"}),
        (("--team",), many), (("--since",), {"metavar": "DATE"}), (("--until",), {"metavar": "DATE"}),
        (("--strict",), {"action": "store_true", "help": "one column per code version"}))


def _suite_commands(add: Adder) -> None:
    """Checks of the task suite against the hub (needs the network; writes nothing)."""
    add("check-suite", cmd_check_suite,
        (("tasks",), {"nargs": "*", "metavar": "TASK", "help": "suite tasks (default: all)"}),
        (("--rows",), {"type": int, "default": 20, "help": "rows streamed per split"}),
        (("--local",), {"default": None, "metavar": "DIR",
                        "help": "read task T from DIR/T, a tree laid out like its hub branch"}))


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    args = build_parser().parse_args(argv)
    args.process_exits = process_exits
    if args.command in RENAMED:
        log.warning("`w2s %s` is deprecated and will be removed in the next version: use `w2s %s`",
                    args.command, RENAMED[args.command])
    log.info("%s: CUDA_VISIBLE_DEVICES=%s", args.command, os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    limit_threads(args.threads)
    if args.plugin:
        from .plugins import load_plugins

        load_plugins(args.plugin)
    args.handler(args)


if __name__ == "__main__":
    main(process_exits=True)
