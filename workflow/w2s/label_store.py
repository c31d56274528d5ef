"""A content-addressed store of weak labels, shared between teams on a shared filesystem or an
fsspec URL (``s3://bucket/w2s-labels``).

An entry is ``<root>/<key[:2]>/<key>/`` holding the weak-label Parquet files and ``entry.json``
(checksums, who published it and when, everything the key was computed from, the precision the
files were computed at and the library versions). ``entry.json`` is written last, so an entry
without it is incomplete and never used. On a local filesystem an entry is assembled in
``<root>/.tmp/``, flushed to disk (fsync of each file and of the directory) and renamed into place,
so concurrent publishers of one key leave exactly one valid entry and a crash leaves no entry with
empty files. Every read verifies the checksums; a corrupt entry is moved to ``<root>/.corrupt/``
and reported, and the labels are recomputed.

The key holds the precision *settings* (``auto``, ``bf16``, ...), not what ``auto`` resolves to on
the machine that ran, so teams on like hardware share. A fetch therefore compares the precision the
entry records with what ``auto`` resolves to where the fetch runs (the producer's kind of device)
and refuses a mismatch, naming both, before anything is copied (docs/architecture.md, "the label
store").
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path

import fsspec
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from .io import atomic_path, read_json, read_provenance, sha256_file, stable_hash

log = logging.getLogger(__name__)

ENTRY_MANIFEST = "entry.json"
DIR_MODE = 0o2775  # group-shared (setgid), never world-writable
FILE_MODE = 0o664
VERSIONED_PACKAGES = ("torch", "transformers", "vllm")  # recorded in entry.json; vllm only where installed


class PrecisionMismatch(ValueError):
    """A store entry was computed at another precision than this run resolves to."""


def label_key(key_inputs: dict) -> str:
    """The store key: a sha256 of everything that determines the weak labels."""
    return stable_hash(key_inputs, length=64)


def recorded_precision(files: dict[str, str | Path]) -> tuple[dict, str | None]:
    """What an entry's files were computed at, from the provenance their producer wrote: the engine's
    dtype (``dtype``: what ran, never ``auto``) and, for weak labels, the teacher's training precision
    (its checkpoint's ``train_info.json``). Also the model type, which decides what ``auto`` means on a
    GPU without bf16. Every file of an entry must agree."""
    found = set()
    for name, path in files.items():
        provenance = read_provenance(path)
        if "dtype" not in provenance:
            raise ValueError(
                f"{name} ({path}) records no engine dtype in its provenance; the store cannot say "
                "what precision it was computed at"
            )
        precision = {"engine_dtype": provenance["dtype"]}
        if "teacher_checkpoint" in provenance:  # weak labels: the teacher that made them
            checkpoint = Path(provenance["teacher_checkpoint"])
            info = checkpoint / "train_info.json"
            if not info.is_file():
                raise FileNotFoundError(
                    f"{name} ({path}) was labelled by {checkpoint}, which has no train_info.json "
                    "to record the teacher's training precision from"
                )
            precision["train_precision"] = read_json(info)["precision"]
        else:  # samples of a base generator: its checkpoint as the producer resolved it
            from .models import resolve_checkpoint

            checkpoint = resolve_checkpoint(provenance["checkpoint"])
        found.add((json.dumps(precision, sort_keys=True), _model_type(checkpoint)))
    if len(found) != 1:
        raise ValueError(f"the files {sorted(files)} record different precisions: {sorted(found)}")
    precision, model_type = found.pop()
    return json.loads(precision), model_type


def _model_type(checkpoint: str | Path) -> str | None:
    from .runtime import checkpoint_model_type

    return checkpoint_model_type(checkpoint)


def expected_precision(settings: dict, model_type: str | None) -> dict:
    """What this run's precision ``settings`` (``w2s.store_keys.precision_settings``) resolve to on this
    machine, by the functions the producing stages call: ``{"engine_dtype": ...}`` plus, for weak
    labels, ``"train_precision"``. Run it on the producer's kind of device (the fetch job asks for it)."""
    from .runtime import engine_dtype, pick_device, resolve_precision

    resolved = {"engine_dtype": engine_dtype(settings["engine_dtype"], settings["engine_device"], model_type)}
    if "train_precision" in settings:
        resolved["train_precision"] = resolve_precision(
            settings["train_precision"], pick_device(settings["train_device"])
        )
    return resolved


def library_versions() -> dict[str, str]:
    """Versions of the libraries that compute an entry (of this environment, which ran its producer)."""
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _describe(precision: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in sorted(precision.items())) or "no recorded precision"


def _fsync(path: str | Path) -> None:
    """Flush a file's or a directory's content (a directory: its names) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LabelStore:
    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.root)
        self.local = isinstance(self.fs, LocalFileSystem)

    def entry_dir(self, key: str) -> str:
        return f"{self.base}/{key[:2]}/{key}"

    def _read_manifest(self, key: str) -> dict | None:
        path = f"{self.entry_dir(key)}/{ENTRY_MANIFEST}"
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "r") as handle:
            return json.load(handle)

    def _checksum(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def verify(self, key: str) -> dict | None:
        """The entry's manifest if it exists and every file matches its checksum; else None.

        A complete entry with a bad checksum is quarantined and reported.
        """
        manifest = self._read_manifest(key)
        if manifest is None:
            return None
        bad = [
            name
            for name, meta in manifest["files"].items()
            if not self.fs.exists(f"{self.entry_dir(key)}/{name}")
            or self._checksum(f"{self.entry_dir(key)}/{name}") != meta["sha256"]
        ]
        if bad:
            self._quarantine(key)
            log.warning("label store entry %s is corrupt (%s); moved aside, labels will be recomputed", key, bad)
            return None
        return manifest

    def _quarantine(self, key: str) -> None:
        target = f"{self.base}/.corrupt/{key}.{uuid.uuid4().hex[:8]}"
        self.fs.makedirs(f"{self.base}/.corrupt", exist_ok=True)
        self.fs.mv(self.entry_dir(key), target, recursive=True)

    def fetch(self, key: str, outputs: dict[str, str | Path], precision: dict | None = None) -> dict:
        """Copy the entry's files to ``outputs`` (name -> local path), verifying checksums.

        ``precision``: this run's precision settings (``w2s.store_keys.precision_settings``). When given,
        they are resolved here (:func:`expected_precision`) and an entry recorded at another precision
        is refused with :class:`PrecisionMismatch`, naming both, before any output is touched.
        """
        manifest = self.verify(key)
        if manifest is None:
            raise FileNotFoundError(f"no valid label store entry {key} under {self.root}")
        if precision is not None:
            recorded = manifest.get("precision", {})
            expected = expected_precision(precision, manifest.get("model_type"))
            if recorded != expected:
                raise PrecisionMismatch(
                    f"label store entry {key} under {self.root} was computed at {_describe(recorded)}, but this "
                    f"run resolves {_describe(expected)} here; nothing was copied and the local files are "
                    "unchanged. Labels are shared only at one precision: set the precision this run should use "
                    "explicitly in the config (weak.train.precision, labeling.dtype or reasoning.engine.dtype), "
                    "which gives its own key, or run where the entry's precision resolves."
                )
        for name, destination in outputs.items():
            with atomic_path(destination) as tmp:
                self.fs.get(f"{self.entry_dir(key)}/{name}", str(tmp))
                if sha256_file(tmp) != manifest["files"][name]["sha256"]:
                    raise OSError(f"label store entry {key}: {name} changed while it was copied")
        return manifest

    def publish(self, key: str, files: dict[str, str | Path], key_inputs: dict, provenance: dict | None = None) -> bool:
        """Add an entry; returns False (and changes nothing) if a valid entry for ``key`` exists.

        The entry records the precision its files were computed at (:func:`recorded_precision`) and the
        library versions. A publish that fails for any other reason raises, naming the entry's path.
        """
        if self.verify(key) is not None:
            return False
        precision, model_type = recorded_precision(files)
        manifest = {
            "key": key,
            "files": {
                name: {"sha256": sha256_file(path), "bytes": os.path.getsize(path)} for name, path in files.items()
            },
            "key_inputs": key_inputs,
            "precision": precision,
            "model_type": model_type,
            "versions": library_versions(),
            "provenance": provenance or {},
            "published_by": getpass.getuser(),
            "host": socket.gethostname(),
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if self.local:
            return self._publish_local(key, files, manifest)
        entry = f"{self.root}/{key[:2]}/{key}"
        try:
            for name, path in files.items():
                self.fs.put(str(path), f"{self.entry_dir(key)}/{name}")
            # Last: a reader takes an entry without entry.json for one still uploading.
            with self.fs.open(f"{self.entry_dir(key)}/{ENTRY_MANIFEST}", "w") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
        except Exception as error:
            raise OSError(f"could not publish label store entry {entry}: {error}") from error
        return True

    def _publish_local(self, key: str, files: dict[str, str | Path], manifest: dict) -> bool:
        staging = Path(self.base) / ".tmp" / f"{key}.{uuid.uuid4().hex}"
        target = Path(self.entry_dir(key))
        try:
            for directory in (staging.parent, target.parent):
                directory.mkdir(parents=True, exist_ok=True)
                directory.chmod(DIR_MODE)
            staging.mkdir(mode=DIR_MODE)
            for name, path in files.items():
                shutil.copyfile(path, staging / name)
                if sha256_file(staging / name) != manifest["files"][name]["sha256"]:
                    raise OSError(f"copy of {path} into the label store does not match its checksum")
            (staging / ENTRY_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            for item in staging.iterdir():
                item.chmod(FILE_MODE)
                _fsync(item)
            staging.chmod(DIR_MODE)
            _fsync(staging)  # the names of the files, before the entry's name exists
            if self._rename_into_place(key, staging, target):
                _fsync(target.parent)  # the entry's name itself
                return True
            return False
        except OSError as error:
            raise OSError(f"could not publish label store entry {target}: {error}") from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _rename_into_place(self, key: str, staging: Path, target: Path) -> bool:
        """Rename ``staging`` to ``target`` (atomic; fails if ``target`` exists). False where another
        publisher got there first; an incomplete leftover under ``target`` is moved aside once."""
        for attempt in range(2):
            try:
                os.rename(staging, target)
                return True
            except OSError:
                if self.verify(key) is not None:
                    return False
                if attempt or not target.exists():
                    raise
                log.warning("label store entry %s is incomplete (no %s); moved aside", target, ENTRY_MANIFEST)
                self._quarantine(key)
        return False

    def keys(self) -> list[str]:
        return sorted(Path(path).parent.name for path in self.fs.glob(f"{self.base}/??/*/{ENTRY_MANIFEST}"))

    def list(self) -> pd.DataFrame:
        """One row per complete entry: key, who, when, host, size, and the main key inputs."""
        rows = []
        for key in self.keys():
            manifest = self._read_manifest(key) or {}
            inputs = manifest.get("key_inputs", {})
            rows.append(
                {
                    "key": key,
                    "published_by": manifest.get("published_by"),
                    "host": manifest.get("host"),
                    "published_at": manifest.get("published_at"),
                    "bytes": sum(f["bytes"] for f in manifest.get("files", {}).values()),
                    "task": inputs.get("task"),
                    "seed": inputs.get("seed"),
                    "weak_checkpoint": inputs.get("weak_checkpoint"),
                }
            )
        return pd.DataFrame(
            rows, columns=["key", "published_by", "host", "published_at", "bytes", "task", "seed", "weak_checkpoint"]
        )

    def show(self, key: str) -> dict:
        manifest = self._read_manifest(key)
        if manifest is None:
            raise KeyError(f"no entry {key} under {self.root}")
        return manifest

    def gc(
        self, keep: set[str] | None = None, older_than_days: float | None = None, dry_run: bool = False
    ) -> list[str]:
        """Remove incomplete/corrupt leftovers, and entries not in ``keep`` or older than the limit."""
        complete = {self.entry_dir(key) for key in self.keys()}
        removed = self.fs.glob(f"{self.base}/.tmp/*") + self.fs.glob(f"{self.base}/.corrupt/*")
        removed += [path for path in self.fs.glob(f"{self.base}/??/*") if path.rstrip("/") not in complete]
        now = datetime.now(timezone.utc)
        for key in self.keys():
            published = datetime.fromisoformat(self.show(key)["published_at"])
            too_old = older_than_days is not None and (now - published).days >= older_than_days
            if (keep is not None and key not in keep) or too_old:
                removed.append(self.entry_dir(key))
        if not dry_run:
            for path in removed:
                self.fs.rm(path, recursive=True)
        return removed


_STORES: dict[str, LabelStore] = {}
_VERIFIED: dict[tuple[str, str], bool] = {}


def has_entry(root: str, key: str) -> bool:
    """Whether ``root`` holds a valid entry for ``key``; asked once per key and process (DAG building)."""
    if (root, key) not in _VERIFIED:
        store = _STORES.setdefault(root, LabelStore(root))
        _VERIFIED[(root, key)] = store.verify(key) is not None
    return _VERIFIED[(root, key)]


def computed_locally(labels_path: str | Path, teacher_dir: str | Path, key: str) -> bool:
    """Whether these weak labels were made here, by this run's teacher, for ``key``.

    Then the labeling job stays their producer (nothing reruns); labels fetched from the store, or
    made for another key, are (re)fetched from the store instead.
    """
    return Path(teacher_dir).is_dir() and made_for_key(labels_path, key)


def made_for_key(path: str | Path, key: str) -> bool:
    """Whether ``path`` exists and its provenance names the store key ``key`` (written by its producer)."""
    return Path(path).is_file() and read_provenance(path).get("store_key") == key
