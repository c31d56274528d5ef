"""The weak-source commands: ensembles, degraded teachers, aggregated verifiers and their report;
:mod:`w2s.cli` registers them. Each command's code hash holds its own handler and parser entry only
(:mod:`w2s.fingerprint`)."""

from __future__ import annotations

import argparse
import json
import logging

from .cli_args import PAIRS, REQ, SEED, Adder, mapping

log = logging.getLogger("w2s")


def cmd_combine_labels(args: argparse.Namespace) -> None:
    from .weak_sources.ensembles import combine_weak_labels

    members = _source_files(args.members)
    for split, out in mapping(args.outputs).items():
        combine_weak_labels(
            {m: files[split] for m, files in members.items()}, args.rule, out, json.loads(args.provenance)
        )


def cmd_degrade_labels(args: argparse.Namespace) -> None:
    from .weak_sources.ensembles import degrade_weak_labels

    source, gold = mapping(args.source), mapping(args.gold)
    for offset, (split, out) in enumerate(mapping(args.outputs).items()):
        achieved = degrade_weak_labels(
            source[split], gold[split], args.target_accuracy, args.seed + offset, out, json.loads(args.provenance)
        )
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
        _source_files(args.teachers),
        mapping(args.outputs),
        json.loads(args.settings),
        fit_split="transfer",
        labeling_functions=args.labeling_functions,
        table_out=args.table_out,
        metadata_out=args.metadata_out,
        provenance=json.loads(args.provenance),
    )
    log.info("aggregated %s with %s", metadata.get("teachers"), metadata.get("aggregator", "the label model"))


def cmd_evaluate_verifiers(args: argparse.Namespace) -> None:
    import pyarrow as pa

    from .io import write_json, write_parquet
    from .weak_sources.report import evaluate_verifiers

    report, table = evaluate_verifiers(
        _source_files(args.teachers),
        args.labeling_functions,
        json.loads(args.settings),
        {"transfer": args.gold_transfer, "test": args.gold_test},
    )
    write_json(report, args.out_json)
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), args.out_table)
    log.info(
        "aggregator test accuracy: %s", {k: round(v["test_accuracy"], 4) for k, v in report["aggregators"].items()}
    )
    log.info(
        "label model: %d EM iterations, converged %s, merged %s",
        report["label_model"]["n_iter"],
        report["label_model"]["converged"],
        report["label_model"]["merged"],
    )


def weak_source_commands(add: Adder) -> None:
    """Weak-label sources beyond one teacher: ensembles, degraded labels, aggregated verifiers."""
    outputs = (("--outputs",), PAIRS)
    sources = {"nargs": "+", "required": True, "metavar": "SOURCE/SPLIT=PATH"}
    add(
        "combine-weak-labels",
        cmd_combine_labels,
        (("--members",), sources),
        (("--rule",), {"default": "mean"}),
        outputs,
        (("--provenance",), {"default": "{}"}),
    )
    add(
        "degrade-weak-labels",
        cmd_degrade_labels,
        (("--source",), PAIRS),
        (("--gold",), PAIRS),
        (("--target-accuracy",), {"type": float, "required": True}),
        SEED,
        outputs,
        (("--provenance",), {"default": "{}"}),
    )
    teachers = (("--teachers",), sources)
    functions = (("--labeling-functions",), {"nargs": "*", "default": []})
    add(
        "aggregate-weak-labels",
        cmd_aggregate_labels,
        teachers,
        functions,
        (("--settings",), {"default": "{}"}),
        outputs,
        (("--table-out",), REQ),
        (("--metadata-out",), REQ),
        (("--provenance",), {"default": "{}"}),
    )
    add(
        "evaluate-verifiers",
        cmd_evaluate_verifiers,
        teachers,
        functions,
        (("--settings",), {"default": "{}"}),
        (("--gold-transfer",), REQ),
        (("--gold-test",), REQ),
        (("--out-json",), REQ),
        (("--out-table",), REQ),
    )
