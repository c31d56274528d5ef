"""A shared store of experiment results: one immutable JSON record per (experiment, seed, method).

Configured like the label store (``results_store``: a directory or an fsspec URL). A record holds an
experiment's metrics and intervals (with ``n_test`` and ``n_transfer``), its seed, its comparability
key, the method (name, resolved options, plugin identity), code hashes, package versions, the
precision that ran, the team and a timestamp. It lives at ``<root>/records/<id[:2]>/<id>.json``,
where ``id`` is the sha256 of the record without its timestamp: concurrent publishers of different
records never write the same file, and republishing identical inputs writes nothing. Files are
written whole under a temporary name and renamed into place, so a reader never sees half a record.

The comparability key is the sha256 of everything except the method and the seed that decides
whether two numbers may be pooled: the task and its data hash, the split sizes, the weak source and
strong model (checkpoints, weights fingerprints, training settings, mode), the labeling settings and
the evaluation settings (:func:`comparability_inputs`). ``w2s.leaderboard`` pools only records with
the same key.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .experiments import model_reference, strong_spec, teacher_train_settings
from .io import atomic_path, read_json, read_provenance, stable_hash
from .models import fingerprint
from .store_keys import LABELING_RUNTIME_KEYS

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
RECORDS = "records"
TIMESTAMP = "published_at"  # the one field left out of a record's id
# The stages whose code made a record's numbers.
RECORD_STAGES = (
    "prepare_data",
    "train_weak",
    "label_weak",
    "extract_features",
    "train_ceiling",
    "train_student",
    "evaluate",
)
# Packages whose versions a record names (those installed; the labeling engine's comes from the labels).
PACKAGES = (
    "w2s-workflow",
    "torch",
    "transformers",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "peft",
    "vllm",
    "snakemake",
)
# Metrics JSON keys that are not metrics: the experiment's axes and nested tables.
_NOT_METRICS = {"task", "seed", "weak_model", "strong_model", "mode", "method", "reliability", "settings"}


class ResultsStoreError(RuntimeError):
    """A results store that cannot be written, or a record that conflicts with a stored one."""


def team_name(configured: str | None) -> str:
    """The config's ``team``, or the login name when it is null."""
    return configured or getpass.getuser()


@cache
def _fingerprint(reference: str) -> str:
    return fingerprint(reference)


def weak_source_inputs(config: dict, weak: str) -> dict:
    """What determines a weak source's labels: a teacher's checkpoint and training, or an ensemble's,
    aggregation's or degradation's settings with the inputs of the sources it is made of."""
    section = config["weak"]
    if weak in section["ensembles"]:
        spec = section["ensembles"][weak]
        return {"ensemble": spec, "members": {m: weak_source_inputs(config, m) for m in spec["members"]}}
    if weak in section["aggregated"]:
        spec = section["aggregated"][weak]
        return {"aggregated": spec, "teachers": {t: weak_source_inputs(config, t) for t in spec["teachers"]}}
    if weak in section["degraded"]:
        spec = section["degraded"][weak]
        return {"degraded": spec, "source": weak_source_inputs(config, spec["source"])}
    reference = model_reference(config, weak)
    return {
        "checkpoint": reference,
        "fingerprint": _fingerprint(reference),
        "seed_offset": config["models"][weak]["seed_offset"],
        "train": teacher_train_settings(config, weak),
    }


def comparability_inputs(config: dict, task: str, weak: str, strong: str) -> dict:
    """Everything from the config, except the method and the seed, that decides whether two runs'
    numbers may be pooled. The data hash and realized split sizes join it from the manifest."""
    reference = model_reference(config, strong)
    return {
        "task": task,
        "task_spec": config["tasks"][task],
        "weak_model": weak,
        "weak": weak_source_inputs(config, weak),
        "strong_model": strong,
        "strong": {"checkpoint": reference, "fingerprint": _fingerprint(reference), **strong_spec(config, strong)},
        "labeling": {k: v for k, v in config["labeling"].items() if k not in LABELING_RUNTIME_KEYS},
        "evaluation": config["evaluation"],
    }


def comparability_key(inputs: dict) -> str:
    return stable_hash(inputs, length=64)


def environment_packages() -> dict[str, str]:
    """Versions of the installed packages of :data:`PACKAGES` in this environment."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


@dataclass(frozen=True)
class RunFiles:
    """One experiment's files a record is built from (paths; ``teacher_info`` may not exist)."""

    metrics: str
    manifest: str
    weak_labels: str
    student: str
    ceiling: str
    teacher_info: str | None = None


def _plugin(*sources: dict) -> object:
    """The plugin identities of a method: those its student's provenance records for its extensions
    (loss, selection rule) when a plugin provides them, else a ``plugin`` in its options; else None."""
    for source in sources:
        extensions = source.get("extensions") or []
        found = [ext["plugin"] for ext in extensions if isinstance(ext, dict) and ext.get("plugin") is not None]
        if found:
            return found[0] if len(found) == 1 else found
        for place in (source, source.get("method") if isinstance(source.get("method"), dict) else {}):
            if place.get("plugin") is not None:
                return place["plugin"]
    return None


def build_record(
    files: RunFiles,
    comparability: dict,
    method_options: dict,
    team: str,
    code: dict[str, str] | None,
    packages: dict[str, str],
) -> dict:
    """The record of one experiment: its metrics file and provenance, the config's comparability
    inputs and method options, the code hashes (None when unknown) and package versions."""
    metrics = read_json(files.metrics)
    manifest = read_json(files.manifest)
    labels, student, ceiling = (read_provenance(path) for path in (files.weak_labels, files.student, files.ceiling))
    teacher = read_json(files.teacher_info) if files.teacher_info and Path(files.teacher_info).is_file() else {}
    inputs = {
        **comparability,
        "data_hash": manifest["data_hash"],
        "split_sizes": {name: split["n"] for name, split in sorted(manifest["splits"].items())},
    }
    engine = (
        {labels["engine"]: labels["engine_version"]} if labels.get("engine") and labels.get("engine_version") else {}
    )
    torch_version = {"torch": student["torch_version"]} if student.get("torch_version") else {}
    return {
        "format_version": FORMAT_VERSION,
        "comparability_key": comparability_key(inputs),
        "comparability": inputs,
        "experiment": {axis: metrics.get(axis) for axis in ("task", "weak_model", "strong_model", "mode")},
        "seed": int(metrics["seed"]),
        "method": {"name": metrics["method"], "options": method_options, "plugin": _plugin(student, method_options)},
        "metrics": {k: v for k, v in metrics.items() if k not in _NOT_METRICS},
        "code": code,
        "packages": {**packages, **torch_version, **engine},
        "precision": {
            "teacher": teacher.get("precision"),
            "labeling_dtype": labels.get("dtype"),
            "student": student.get("precision"),
            "ceiling": ceiling.get("precision"),
        },
        "team": team,
        TIMESTAMP: datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _canonical(record: dict) -> bytes:
    content = {k: v for k, v in record.items() if k != TIMESTAMP}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()


def record_id(record: dict) -> str:
    """sha256 of the record's content without its timestamp: its name in the store."""
    return hashlib.sha256(_canonical(record)).hexdigest()


_ID_FILE = re.compile(r"^[0-9a-f]{64}\.json$")


class ResultsStore:
    """Records under ``<root>/records/<id[:2]>/<id>.json``, on a local directory or an fsspec URL."""

    def __init__(self, root: str):
        self.root = str(root).rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.root)
        self.local = isinstance(self.fs, LocalFileSystem)

    def record_path(self, rid: str) -> str:
        return f"{self.base}/{RECORDS}/{rid[:2]}/{rid}.json"

    def url(self, path: str) -> str:
        """A path of this store as a link: a file:// URI locally, the protocol's URL otherwise."""
        return Path(path).resolve().as_uri() if self.local else self.fs.unstrip_protocol(path)

    def publish(self, record: dict, source: str = "a new record") -> tuple[str, bool]:
        """Store ``record``; returns its path and whether it was written (False: already stored).

        A stored file at the record's path with other content is a conflict (the file was edited):
        an error naming both. A store that cannot be written: an error naming its URL.
        """
        rid = record_id(record)
        path = self.record_path(rid)
        try:
            if self.fs.exists(path):
                self._check_same(path, rid, source)
                return path, False
            data = (json.dumps(record, indent=1, sort_keys=True, default=str) + "\n").encode()
            if self.local:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(data)
            else:
                tmp = f"{path}.{uuid.uuid4().hex}.tmp"
                self.fs.makedirs(str(Path(path).parent), exist_ok=True)
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
        except ResultsStoreError:
            raise
        except (OSError, ValueError) as error:
            raise ResultsStoreError(f"cannot write to the results store {self.root}: {error}") from error
        return path, True

    def _check_same(self, path: str, rid: str, source: str) -> None:
        try:
            stored = json.loads(self.fs.cat_file(path))
            same = record_id(stored) == rid
        except ValueError:
            same = False
        if not same:
            raise ResultsStoreError(
                f"results store record {self.url(path)} has content that does not hash to its name, so it cannot "
                f"be the record of {source} that claims this path: the stored file was edited or damaged. "
                f"Move it away to publish {source}."
            )

    def record_files(self) -> list[str]:
        """Every record file's path (temporary files left out)."""
        return sorted(p for p in self.fs.glob(f"{self.base}/{RECORDS}/*/*.json") if _ID_FILE.match(Path(p).name))

    def read_all(self) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
        """(path, record) of every readable record, and (path, reason) of every record skipped: not
        JSON (truncated), a newer format version, missing fields, or content that does not hash to its
        name. Skipped records are logged as warnings naming the file."""
        records, skipped = [], []
        paths = self.record_files()
        contents = self.fs.cat(paths) if paths else {}
        for path in paths:
            reason = None
            try:
                record = json.loads(contents[path])
            except ValueError as error:
                reason = f"not a JSON record ({error})"
            else:
                reason = _invalid(record, Path(path).stem)
            if reason:
                log.warning("skipping results store record %s: %s", self.url(path), reason)
                skipped.append((self.url(path), reason))
            else:
                records.append((self.url(path), record))
        return records, skipped


_REQUIRED = ("comparability_key", "comparability", "experiment", "seed", "method", "metrics", "team", TIMESTAMP)


def _invalid(record: object, name: str) -> str | None:
    """Why a parsed record cannot be used, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    version = record.get("format_version")
    if not isinstance(version, int):
        return "no format_version"
    if version > FORMAT_VERSION:
        return f"format version {version} is newer than this reader's {FORMAT_VERSION}; update w2s"
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    if record_id(record) != name:
        return "content does not hash to the file's name (edited or damaged)"
    return None


def publish_records(
    store: str,
    runs: list[tuple[RunFiles, dict, dict]],
    team: str,
    code: dict[str, str] | None,
    packages: dict[str, str],
) -> list[dict]:
    """Build and publish the record of each (files, comparability inputs, method options) run; one
    receipt per run: the record's id, its store path and whether it was new."""
    results = ResultsStore(store)
    receipts = []
    for files, comparability, options in runs:
        record = build_record(files, comparability, options, team, code, packages)
        path, written = results.publish(record, source=files.metrics)
        receipts.append(
            {"metrics": files.metrics, "record_id": record_id(record), "path": results.url(path), "written": written}
        )
    return receipts


def current_code() -> dict[str, str]:
    """The code hashes of :data:`RECORD_STAGES` in this checkout."""
    from .fingerprint import code_hash

    return {stage: code_hash(stage) for stage in RECORD_STAGES}


def _as_regex(pattern: str) -> re.Pattern:
    """A path pattern of ``w2s.paths`` as a regex with one named group per wildcard."""
    parts = re.split(r"\{(\w+)\}", pattern)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts)) + "$")


def existing_runs(results_dir: str | Path) -> list[tuple[RunFiles, dict, dict]]:
    """Every experiment of an existing results directory with its comparability inputs and method
    options, read from the directory's resolved config (written by ``summarize``)."""
    import yaml

    from . import paths

    root = Path(results_dir)
    config_file = root / Path(paths.RESOLVED_CONFIG).relative_to(paths.RESULTS)
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{config_file} not found: import-results needs a results directory that a "
            "summarize job finished (its resolved config names each run's settings)"
        )
    config = yaml.safe_load(config_file.read_text())

    def local(pattern: str, **wildcards: str) -> str:
        return str(root / Path(pattern.format(**wildcards)).relative_to(paths.RESULTS))

    metrics_pattern = _as_regex(str(Path(paths.METRICS).relative_to(paths.RESULTS)))
    runs = []
    for metrics in sorted(root.glob("*/seed*/metrics/*/*/*.json")):
        match = metrics_pattern.match(metrics.relative_to(root).as_posix())
        if not match:
            continue
        w = match.groupdict()
        if w["method"] not in config["strong"]["methods"] or w["task"] not in config["tasks"]:
            log.warning("skipping %s: its task or method is not in %s", metrics, config_file)
            continue
        files = RunFiles(
            metrics=str(metrics),
            manifest=local(paths.DATA_MANIFEST, **w),
            weak_labels=local(paths.WEAK_LABELS, **w, split="test"),
            student=local(f"{paths.STUDENT}/predictions.parquet", **w),
            ceiling=local(f"{paths.CEILING}/predictions.parquet", **w),
            teacher_info=local(f"{paths.TEACHER_MODEL}/train_info.json", **w),
        )
        runs.append(
            (
                files,
                comparability_inputs(config, w["task"], w["weak"], w["strong"]),
                config["strong"]["methods"][w["method"]],
            )
        )
    return runs
