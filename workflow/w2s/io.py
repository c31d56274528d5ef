"""Atomic, durable writes and content hashes for the files that form stage boundaries.

Every output is written under a temporary name beside it (``.<name>.<12 hex digits>.tmp``) and moved
into place with a rename, so a crash leaves either the old output or none, never half of one. The
temporary file (every file of a temporary directory) is fsynced before the rename and its directory
after it, so a node that crashes right after a job cannot leave an empty or partial file under the
final name either (a rename alone may reach the disk before the data it names). A write that was
killed leaves its temporary behind; the next write of the same output removes it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE_KEY = b"w2s.provenance"

# Filesystems that cannot fsync a directory say so with one of these; their renames are then as
# durable as they can make them.
_NO_DIR_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF}


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush ``path``'s directory entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str | os.PathLike) -> None:
    """Flush every file under ``path``, then every directory from the deepest up to ``path`` itself."""
    for root, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_dir(root)


def _temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"


def _remove_strays(path: Path) -> None:
    """Remove what killed writes of ``path`` left: temporaries named after it, and nothing else."""
    stray = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.tmp")
    for entry in path.parent.iterdir():
        if stray.fullmatch(entry.name):
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _new_temp_file(path: Path) -> Path:
    """An empty file beside ``path``, with the mode a plain open() gives (the umask applies)."""
    while True:
        tmp = _temp_name(path)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def _new_temp_dir(path: Path) -> Path:
    """An empty directory beside ``path``, with the mode a plain mkdir() gives."""
    while True:
        tmp = _temp_name(path)
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def _replace_all(temps: Mapping[str, Path], finals: Mapping[str, Path]) -> None:
    """Rename every temporary onto its output. If one rename fails, the outputs already renamed are put
    back as they were (restored from a link to, or copy of, the old file; removed if there was none)."""
    backups: dict[str, Path] = {}
    done: list[str] = []
    try:
        if len(finals) > 1:
            for key, final in finals.items():
                if final.exists():
                    backups[key] = _temp_name(final)
                    try:
                        os.link(final, backups[key])
                    except OSError:  # a filesystem without hard links
                        shutil.copy2(final, backups[key])
        for key, final in finals.items():
            os.replace(temps[key], final)
            done.append(key)
    except BaseException:
        for key in reversed(done):
            if key in backups:
                os.replace(backups.pop(key), finals[key])
            else:
                finals[key].unlink(missing_ok=True)
        raise
    finally:
        for backup in backups.values():
            backup.unlink(missing_ok=True)
        for directory in {final.parent for final in finals.values()}:
            fsync_dir(directory)


@contextlib.contextmanager
def atomic_paths(paths: Mapping[str, str | os.PathLike]) -> Iterator[dict[str, Path]]:
    """Yield a temporary path beside each of ``paths`` (name -> output path); when the block succeeds,
    fsync them and move them onto their outputs together: all of them or none. If the block fails, or
    one move fails, no output is created or changed and no temporary is left."""
    finals = {key: Path(path) for key, path in paths.items()}
    if len(set(finals.values())) != len(finals):
        raise ValueError(f"outputs {sorted(map(str, finals.values()))} name one file twice")
    temps: dict[str, Path] = {}
    try:
        for key, final in finals.items():
            final.parent.mkdir(parents=True, exist_ok=True)
            _remove_strays(final)
            temps[key] = _new_temp_file(final)
        yield dict(temps)
        for tmp in temps.values():
            fsync_file(tmp)
        for directory in {final.parent for final in finals.values()}:
            fsync_dir(directory)
        _replace_all(temps, finals)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; fsync it and move it onto ``path`` only on success."""
    with atomic_paths({"out": path}) as temps:
        yield temps["out"]


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; fsync everything in it and rename it to ``path``
    only on success. An old ``path`` is moved aside first and removed after, so a crash in between
    leaves it under a temporary name that the next write of ``path`` removes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_strays(path)
    tmp_path = _new_temp_dir(path)
    try:
        yield tmp_path
        fsync_tree(tmp_path)
        fsync_dir(path.parent)
        old = None
        if path.exists():
            old = _temp_name(path)
            os.rename(path, old)
        try:
            os.rename(tmp_path, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
            raise
        fsync_dir(path.parent)
        if old is not None:
            _remove(old)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def with_provenance(table: pa.Table, provenance: dict | None) -> pa.Table:
    """``table`` with ``provenance`` as JSON in its schema metadata (``table`` itself if None)."""
    if provenance is None:
        return table
    metadata = dict(table.schema.metadata or {})
    metadata[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    return table.replace_schema_metadata(metadata)


def write_parquet(table: pa.Table, path: str | os.PathLike, provenance: dict | None = None) -> None:
    """Write ``table`` atomically; ``provenance`` goes into the schema metadata as JSON."""
    with atomic_path(path) as tmp:
        pq.write_table(with_provenance(table, provenance), tmp)


def read_provenance(path: str | os.PathLike) -> dict:
    """The provenance dict stored by :func:`write_parquet` (empty if none)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_dir(path: str | os.PathLike) -> str:
    """Hash of every file's relative name and content under ``path``, in sorted order."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short sha256 of the canonical JSON of ``obj`` (key order does not matter)."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]
