"""Local copies of suite tasks' hub repos, laid out file for file like the branch each task reads.

The parquet export branch (``refs/convert/parquet``) holds ``<config>/<split>/0000.parquet`` and a
``.gitattributes``, and no README: the dataset viewer's converter deletes it there. Main branches
converted to parquet hold one file per split (``data/`` for a ``default`` config, else a folder
named after the config) and a README whose ``configs:`` block names the config and globs its
files. Anthropic/hh-rlhf's main holds JSON lines per subset and a README without configs.
Every suite test loads such a tree through ``load_suite`` with ``path``, the hub's code path.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from w2s.suite import SUITE
from w2s.suite.base import PARQUET_EXPORT, SuiteTask

GITATTRIBUTES = "*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def write_rows(path: Path, frame: pd.DataFrame) -> None:
    """``frame`` as the file type its name says (parquet, or gzipped JSON lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(frame.to_json(orient="records", lines=True))
    else:
        frame.to_parquet(path, index=False)


def main_config_name(entry: SuiteTask) -> str:
    """The config a converted main's README declares: the entry's, else its files' folder
    (``data`` is the folder of the ``default`` config)."""
    folder = entry.main_files.split("/")[0]
    return entry.hf_config or ("default" if folder == "data" else folder)


def main_readme(entry: SuiteTask) -> str:
    """A converted main's README front matter: one config, a glob per split, marked default."""
    if entry.main_files.endswith(".jsonl.gz"):
        return "---\nlicense: mit\ntags:\n- human-feedback\n---\n"
    lines = ["---", "configs:", f"- config_name: {main_config_name(entry)}", "  data_files:"]
    for split in entry.splits:
        glob = entry.main_files.format(split=split).rsplit("-00000-of-", 1)[0] + "-*"
        lines += [f"  - split: {split}", f"    path: {glob}"]
    return "\n".join(lines + ["  default: true", "---", "# Dataset card", ""])


def hub_tree(
    root: Path,
    name: str,
    frames: pd.DataFrame | Mapping[str, pd.DataFrame],
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """Write task ``name``'s branch as the hub stores it under ``root``; every split holds
    ``frames`` (or its own frame). ``extra``: more files (path -> rows) the real branch also
    holds, such as other configs' folders, which the task must not read."""
    entry = SUITE[name]
    root.mkdir(parents=True)
    (root / ".gitattributes").write_text(GITATTRIBUTES)
    for split in entry.splits:
        frame = frames if isinstance(frames, pd.DataFrame) else frames[split]
        write_rows(root / entry.files.format(split=split), frame)
    for relative, frame in (extra or {}).items():
        write_rows(root / relative, frame)
    if entry.revision != PARQUET_EXPORT:
        (root / "README.md").write_text(main_readme(entry))
    return str(root)
