"""One registry per kind of extension: losses, selection rules, aggregators, labeling functions, checks.

An extension registers itself under a name with a decorator; its options are a dataclass whose fields
have types and defaults::

    @LOSS_REGISTRY.register("my_loss", options=MyOptions)
    class MyLoss: ...

Built-ins register through this same decorator, and so do plugins: a Python file or module named by
the config's ``plugins:`` (see :mod:`w2s.plugins`), or an installed package that declares an entry
point in the registry's group (``w2s.losses``, ...). Entry points are loaded at the first lookup. A
lookup of an unknown name lists every registered name; two extensions under one name are an error
naming both sources; :meth:`Registry.options` turns a config mapping into the typed options and
names an unknown option, a wrong type or a bad value together with the extension.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any


class RegistryError(ValueError):
    """A bad extension name, a bad option or a clash of two registrations."""


@dataclass(frozen=True)
class Entry:
    """One registered extension: its object, its options dataclass (None: no options) and its source."""

    name: str
    obj: Any
    options: type | None
    source: str  # "module (file)" of the registering code, or the entry point and its distribution
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def source_of(obj: Any) -> str:
    """Where ``obj`` was defined: ``module (file)``, or ``module`` when the module has no file."""
    module = getattr(obj, "__module__", None) or "?"
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None)
    return f"{module} ({path})" if path else module


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (bool is not a number; an int is a valid float)."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


class Registry:
    """Named extensions of one kind (``kind`` names it in errors; ``group`` is its entry-point group)."""

    def __init__(self, kind: str, group: str, builtins: str):
        self.kind, self.group, self.builtins = kind, group, builtins  # builtins: the module registering them
        self._entries: dict[str, Entry] = {}
        self._entry_points_loaded = False

    def register(self, name: str, *, options: type | None = None, **meta: Any) -> Callable[[Any], Any]:
        """Decorator registering a class or function under ``name``; ``meta`` is free per-kind data
        (e.g. ``uses_labels`` of an aggregator). A second registration of ``name`` from another source
        raises a RegistryError naming both; the same source registering again (a re-import) replaces."""
        if options is not None and not dataclasses.is_dataclass(options):
            raise RegistryError(f"{self.kind} {name!r}: options must be a dataclass, got {options!r}")

        def decorate(obj: Any) -> Any:
            self.add(Entry(name, obj, options, source_of(obj), dict(meta)))
            return obj

        return decorate

    def add(self, entry: Entry) -> None:
        old = self._entries.get(entry.name)
        if old is not None and (old.source, getattr(old.obj, "__qualname__", None)) != (
            entry.source,
            getattr(entry.obj, "__qualname__", None),
        ):
            raise RegistryError(
                f"{self.kind} {entry.name!r} is registered twice: by {old.source} and by {entry.source}"
            )
        self._entries[entry.name] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's or a notebook's temporary extension); unknown names are an error."""
        self.entry(name)
        del self._entries[name]

    def load_entry_points(self) -> None:
        """Import every installed entry point of :attr:`group` (once): importing its module registers
        what it decorates; an object that is not registered yet is registered under the entry point's name."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        importlib.import_module(self.builtins)  # the built-ins first, so a clash names the plugin second
        for point in metadata.entry_points(group=self.group):
            try:
                obj = point.load()
            except Exception as error:  # noqa: BLE001 - any import failure is reported with its entry point
                raise RegistryError(
                    f"entry point {point.name!r} of group {self.group!r} ({point.value}) "
                    f"failed to import: {type(error).__name__}: {error}"
                ) from error
            if not any(e.obj is obj for e in self._entries.values()):
                dist = getattr(point, "dist", None)
                where = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "?"
                self.add(
                    Entry(
                        point.name,
                        obj,
                        getattr(obj, "Options", None),
                        f"entry point {self.group}:{point.name} ({where})",
                    )
                )

    def names(self) -> list[str]:
        """Every registered name in registration order (built-ins first; entry points included)."""
        self.load_entry_points()
        return list(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry of ``name``, or a RegistryError listing every registered name."""
        self.load_entry_points()
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {sorted(self._entries)}")
        return self._entries[name]

    def get(self, name: str) -> Any:
        """The registered object of ``name``."""
        return self.entry(name).obj

    def __contains__(self, name: object) -> bool:
        self.load_entry_points()
        return name in self._entries

    def options(self, name: str, mapping: Mapping[str, Any] | None = None) -> Any:
        """The typed options of ``name`` from a config mapping (defaults for what it leaves out).

        An unknown option, a value of the wrong type or one the dataclass rejects (its
        ``__post_init__`` raising ValueError) is a RegistryError naming the option and the extension.
        An extension without options accepts only an empty mapping and gives None.
        """
        entry, mapping = self.entry(name), dict(mapping or {})
        if entry.options is None:
            if mapping:
                raise RegistryError(f"{self.kind} {name!r} takes no options; got {sorted(mapping)}")
            return None
        hints = typing.get_type_hints(entry.options)
        known = [f.name for f in dataclasses.fields(entry.options) if f.init]
        for key, value in mapping.items():
            if key not in known:
                raise RegistryError(f"unknown option {key!r} for {self.kind} {name!r}; its options: {known}")
            if not _type_ok(value, hints.get(key, Any)):
                raise RegistryError(
                    f"{self.kind} {name!r} option {key!r}: expected {hints[key]}, got {type(value).__name__} {value!r}"
                )
            if hints.get(key) is float and isinstance(value, int):
                mapping[key] = float(value)
        try:
            return entry.options(**mapping)
        except (TypeError, ValueError) as error:
            raise RegistryError(f"{self.kind} {name!r} options {mapping}: {error}") from error

    def view(self, where: Callable[[Entry], bool] | None = None) -> RegistryView:
        """A read-only mapping name -> object of this registry, live (it sees later registrations)."""
        return RegistryView(self, where)


class RegistryView(Mapping):
    """Read-only, live mapping name -> registered object (optionally only the entries ``where`` keeps)."""

    def __init__(self, registry: Registry, where: Callable[[Entry], bool] | None = None):
        self._registry, self._where = registry, where

    def _names(self) -> list[str]:
        return [n for n in self._registry.names() if self._where is None or self._where(self._registry.entry(n))]

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        return self._registry.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"<{self._registry.kind} registry: {self._names()}>"


def accepts(obj: Callable, parameter: str) -> bool:
    """Whether the callable (a class: its constructor) takes a parameter named ``parameter``."""
    try:
        return parameter in inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False


LOSS_REGISTRY = Registry("loss", "w2s.losses", "w2s.losses")
SELECTION_REGISTRY = Registry("selection rule", "w2s.selection", "w2s.methods")
AGGREGATOR_REGISTRY = Registry("aggregator", "w2s.aggregators", "w2s.verifiers.builtins")
LABELING_FUNCTION_REGISTRY = Registry("labeling function", "w2s.labeling_functions", "w2s.labeling_functions")
ANSWER_CHECK_REGISTRY = Registry("answer check", "w2s.answer_checks", "w2s.reasoning.checks")
