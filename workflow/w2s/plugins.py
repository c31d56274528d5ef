"""Plugins: the config's ``plugins:`` entries, imported so that they register their extensions.

An entry is a Python file (a path relative to the config's directory, or absolute) or an importable
module name. The workflow imports every entry before it checks the config, and each job that runs a
plugin's extension gets the same entries (``w2s --plugins ...``) and imports them before it runs; a
path that resolves the same on every node of a shared filesystem works under Slurm too.

A plugin's identity (its entry, the file and the sha256 of its bytes, or the package and version of
a module or entry point) goes into the code hash of the jobs that use it and into their outputs'
provenance, so editing a plugin reruns exactly those jobs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from .registry import Entry


class PluginError(ValueError):
    """A plugin entry that does not exist or fails to import."""


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: the entry as resolved, the module it became, and what identifies its source."""

    entry: str  # an absolute file path, or a module name
    module: str
    source: str  # "sha256:<hex>" of the file, or "<distribution> <version>"

    def identity(self) -> dict:
        return asdict(self)


LOADED: dict[str, Plugin] = {}  # module name -> plugin, of this process


def resolve_entry(entry: str, base_dir: str | Path | None = None) -> str:
    """A file entry as an absolute path (relative ones against ``base_dir``); a module name as is."""
    if entry.endswith(".py") or "/" in entry:
        path = Path(entry)
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        return str(path.resolve())
    return entry


def _module_name(path: Path) -> str:
    """A module name for a plugin file, unique per path, so two plugins named alike do not collide."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    return f"w2s_plugin_{path.stem}_{digest}"


def _distribution_of(module: str) -> str | None:
    top = module.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        return f"{dist} {metadata.version(dist)}"
    return None


def load_plugin(entry: str, base_dir: str | Path | None = None) -> Plugin:
    """Import one entry (once per process) and return its identity; a PluginError names the entry."""
    resolved = resolve_entry(entry, base_dir)
    known = next((p for p in LOADED.values() if p.entry == resolved), None)
    if known is not None:
        return known
    if resolved.endswith(".py") or "/" in resolved:
        path = Path(resolved)
        if not path.is_file():
            raise PluginError(f"plugin {entry!r}: no such file {path}")
        name = _module_name(path)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001 - every import failure is reported with its entry
            sys.modules.pop(name, None)
            raise PluginError(f"plugin {entry!r} ({path}) failed to import: {type(error).__name__}: {error}") from error
        plugin = Plugin(resolved, name, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
    else:
        try:
            module = importlib.import_module(resolved)
        except Exception as error:  # noqa: BLE001
            raise PluginError(f"plugin {entry!r} failed to import: {type(error).__name__}: {error}") from error
        source = _distribution_of(resolved)
        if source is None:
            file = getattr(module, "__file__", None)
            source = "sha256:" + hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else "unversioned"
        plugin = Plugin(resolved, resolved, source)
    LOADED[plugin.module] = plugin
    return plugin


def load_plugins(entries: Iterable[str], base_dir: str | Path | None = None) -> list[Plugin]:
    """Import every entry in order; the first that fails is a PluginError naming it."""
    return [load_plugin(entry, base_dir) for entry in entries]


def provenance(entry: Entry) -> dict:
    """Who provides a registered extension: its name and source, and the plugin's identity when a
    plugin (a file or module of ``plugins:``) or an installed package (an entry point) registered it."""
    module = getattr(entry.obj, "__module__", "") or ""
    plugin = next((p for name, p in LOADED.items() if module == name or module.startswith(name + ".")), None)
    if plugin is None and module.split(".")[0] != "w2s":
        # an installed package's extension (an entry point): identified by its distribution and version
        dist = _distribution_of(module)
        plugin = Plugin(module, module, dist) if dist else None
    return {"name": entry.name, "source": entry.source, "plugin": plugin.identity() if plugin else None}
