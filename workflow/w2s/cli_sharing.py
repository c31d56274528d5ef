"""The commands that share work between runs and teams: the label store (``store-*``), the results
store and leaderboard, and the suite's hub check; :mod:`w2s.cli` registers them. Each command's code
hash holds its own handler and parser entry only (:mod:`w2s.fingerprint`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .cli_args import LIST, PAIRS, REQ, Adder, mapping

log = logging.getLogger("w2s")


def cmd_store_fetch(args: argparse.Namespace) -> None:
    from .io import read_json
    from .label_store import LabelStore

    # The precision check resolves `auto` here: the rule runs this on the producer's kind of device.
    manifest = LabelStore(args.store).fetch(args.key, mapping(args.outputs), json.loads(args.precision))
    expected, local = manifest["provenance"].get("data_hash"), read_json(args.manifest)["data_hash"]
    if expected != local:
        for path in mapping(args.outputs).values():
            os.remove(path)
        raise SystemExit(
            f"label store entry {args.key} was made from data {expected}, but the local splits are "
            f"{local}: the source data changed under the same spec. Remove the entry "
            f"(w2s store-gc --store {args.store} --remove {args.key}) to recompute it."
        )
    log.info(
        "store entry %s fetched from %s (published by %s at %s)",
        args.key,
        args.store,
        manifest["published_by"],
        manifest["published_at"],
    )


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
    runs = [
        (
            RunFiles(metrics, args.manifest, args.weak_labels, student, args.ceiling, args.teacher_info),
            json.loads(args.comparability),
            options[method],
        )
        for method, metrics, student in zip(args.methods, args.metrics, args.students, strict=True)
    ]
    receipts = publish_records(args.store, runs, team_name(args.team), current_code(), environment_packages())
    write_json({"store": args.store, "records": receipts}, args.out)
    log.info("%d records in %s, %d new", len(receipts), args.store, sum(r["written"] for r in receipts))


def cmd_import_results(args: argparse.Namespace) -> None:
    from .results_store import existing_runs, publish_records, team_name

    receipts = publish_records(args.store, existing_runs(args.results_dir), team_name(args.team), None, {})
    log.info(
        "%d records of %s in %s, %d new",
        len(receipts),
        args.results_dir,
        args.store,
        sum(r["written"] for r in receipts),
    )


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from .leaderboard import build_leaderboard, load_records, write_leaderboard

    filters = {"tasks": args.task, "pairs": args.pair, "teams": args.team, "since": args.since, "until": args.until}
    board = build_leaderboard(load_records(args.store), strict=args.strict, filters=filters)
    paths = write_leaderboard(board, args.out_dir)
    log.info(
        "leaderboard of %d records (%d skipped): %s",
        board.n_records,
        len(board.skipped),
        ", ".join(str(p) for p in paths.values()),
    )


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


def store_commands(add: Adder) -> None:
    """The shared label store (weak labels, reasoning samples): fetch and publish an entry, look after it."""
    store = (("--store",), REQ)
    add(
        "store-fetch",
        cmd_store_fetch,
        store,
        (("--key",), REQ),
        (("--manifest",), REQ),
        (("--outputs",), PAIRS),
        (("--precision",), {**REQ, "help": "JSON: this run's precision settings (w2s.store_keys.precision_settings)"}),
    )
    add(
        "store-publish",
        cmd_store_publish,
        store,
        (("--key",), REQ),
        (("--key-inputs",), REQ),
        (("--manifest",), REQ),
        (("--files",), PAIRS),
        (("--out",), REQ),
    )
    add("store-list", cmd_store_list, store)
    add("store-show", cmd_store_show, store, (("--key",), REQ))
    add(
        "store-gc",
        cmd_store_gc,
        store,
        (("--remove",), {"nargs": "*", "default": [], "metavar": "KEY"}),
        (("--older-than-days",), {"type": float}),
        (("--dry-run",), {"action": "store_true"}),
    )


def results_commands(add: Adder) -> None:
    """The shared results store: publish a run's records, import an old results/ directory, the leaderboard."""
    store = (("--store",), {**REQ, "help": "the results store: a directory or an fsspec URL"})
    team = (("--team",), {"default": None, "help": "team or user name (default: the login name)"})
    add(
        "publish-results",
        cmd_publish_results,
        store,
        team,
        (("--comparability",), REQ),
        (("--method-options",), {**REQ, "help": "JSON: method name -> resolved options"}),
        (("--methods",), LIST),
        (("--metrics",), LIST),
        (("--students",), LIST),
        (("--manifest",), REQ),
        (("--weak-labels",), REQ),
        (("--ceiling",), REQ),
        (("--teacher-info",), {"default": None}),
        (("--out",), REQ),
    )
    add("import-results", cmd_import_results, (("results_dir",), {"metavar": "RESULTS_DIR"}), store, team)
    many = {"action": "append", "default": None}
    add(
        "leaderboard",
        cmd_leaderboard,
        (("--store",), {**REQ, "action": "append", "help": "a store (repeatable)"}),
        (("--out-dir",), REQ),
        (("--task",), many),
        (("--pair",), {**many, "metavar": "WEAK:STRONG"}),
        (("--team",), many),
        (("--since",), {"metavar": "DATE"}),
        (("--until",), {"metavar": "DATE"}),
        (("--strict",), {"action": "store_true", "help": "one column per code version"}),
    )


def suite_commands(add: Adder) -> None:
    """Checks of the task suite against the hub (needs the network; writes nothing)."""
    add(
        "check-suite",
        cmd_check_suite,
        (("tasks",), {"nargs": "*", "metavar": "TASK", "help": "suite tasks (default: all)"}),
        (("--rows",), {"type": int, "default": 20, "help": "rows streamed per split"}),
        (
            ("--local",),
            {"default": None, "metavar": "DIR", "help": "read task T from DIR/T, a tree laid out like its hub branch"},
        ),
    )
