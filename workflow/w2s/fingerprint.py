"""Content hashes of the code each stage runs, so a rule reruns when (and only when) its code changes.

Rules carry ``code_hash(rule)`` in their ``params``; Snakemake's params trigger then reruns a job
whose stage code changed, while a fresh clone or an edit elsewhere (README, another stage) does not.

A stage's code is what ``python -m w2s <command>`` can run: ``w2s/__main__.py``, the CLI (``cli.py``)
less the other commands' handlers and parser entries, and every ``w2s`` module reachable from there
and from the stage's entry module (``w2s.stages``) through imports, read from the syntax tree (module-
and function-level, absolute and relative), with the packages whose ``__init__`` an import runs.
The hash is taken over the parsed syntax trees without docstrings, so comments, docstrings and
formatting do not count.

Reading the trees costs a few seconds, and Snakemake parses the Snakefile on every invocation (and on
every Slurm job), so the hashes of all stages are kept in ``<W2S_CACHE>/fingerprints/``, one file per
exact content of the package's sources (and Python version): any edit to any source is a new key.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from functools import cache
from pathlib import Path

from .io import write_json
from .models import cache_root
from .stages import STAGES, stage

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = "w2s"
CLI = f"{PACKAGE}.cli"
# Modules that define commands: each one is read as a command sees it (its handler and parser entry
# only), so editing one command's handler changes that command's hash alone.
CLI_MODULES = frozenset({CLI, *(f"{PACKAGE}.cli_{part}" for part in ("reasoning", "sharing", "weak_sources"))})
MAIN = f"{PACKAGE}.__main__"


class Package:
    """The ``w2s`` sources under one directory (the real package, or a copy in a test), parsed once."""

    def __init__(self, root: Path = PACKAGE_DIR) -> None:
        self.root = Path(root)
        self._trees: dict[tuple[str, str | None], ast.Module] = {}
        self._digests: dict[tuple[str, str | None], str] = {}
        self._imports: dict[tuple[str, str | None], set[str]] = {}

    def forget(self, module: str) -> None:
        """Drop what was read of one module, so the next use reads its file again (after an edit)."""
        for store in (self._trees, self._digests, self._imports):
            for key in [key for key in store if key[0] == module]:
                del store[key]

    def path(self, module: str) -> Path | None:
        """The source file of a dotted ``w2s`` module or package, or None when there is none."""
        parts = module.split(".")[1:]
        base = self.root.joinpath(*parts)
        if parts and base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return base / "__init__.py" if (base / "__init__.py").is_file() else None

    def is_package(self, module: str) -> bool:
        path = self.path(module)
        return path is not None and path.name == "__init__.py"

    def tree(self, module: str, command: str | None = None) -> ast.Module:
        """The module's syntax tree without docstrings; the CLI's as ``command`` sees it (cli_tree)."""
        key = (module, command if module in CLI_MODULES else None)
        if key not in self._trees:
            path = self.path(module)
            if path is None:
                raise ValueError(f"no source for module {module} under {self.root}")
            tree = _strip_docstrings(ast.parse(path.read_text(), filename=str(path)))
            if key[1] is not None:
                tree = cli_tree(tree, command)
            self._trees[key] = tree
        return self._trees[key]

    def imports(self, module: str, command: str | None = None) -> set[str]:
        """The ``w2s`` modules the module's imports load (the CLI's: as ``command`` sees it)."""
        key = (module, command if module in CLI_MODULES else None)
        if key not in self._imports:
            self._imports[key] = imported_modules(self, module, self.tree(module, command))
        return self._imports[key]

    def digest(self, module: str, command: str | None = None) -> str:
        """sha256 of the module's normalized syntax tree (comments, docstrings, layout left out)."""
        key = (module, command if module in CLI_MODULES else None)
        if key not in self._digests:
            dump = ast.dump(self.tree(module, command), annotate_fields=False, include_attributes=False)
            self._digests[key] = hashlib.sha256(dump.encode()).hexdigest()
        return self._digests[key]


def _absolute(package: Package, module: str, node: ast.ImportFrom) -> str | None:
    """The absolute name of ``from <node.module> import ...`` inside ``module``."""
    if node.level == 0:
        return node.module
    anchor = module.split(".")
    if not package.is_package(module):
        anchor = anchor[:-1]
    if node.level > 1:
        anchor = anchor[: -(node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _inside(name: str | None) -> bool:
    return name is not None and (name == PACKAGE or name.startswith(PACKAGE + "."))


def imported_modules(package: Package, module: str, tree: ast.AST) -> set[str]:
    """The ``w2s`` modules that the imports anywhere in ``tree`` (the source of ``module``) load."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if _inside(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, module, node)
            if not _inside(base):
                continue
            found.add(base)
            # `from pkg import name` loads the submodule pkg.name when there is one.
            found.update(
                f"{base}.{alias.name}" for alias in node.names if package.path(f"{base}.{alias.name}") is not None
            )
    return {name for name in found if package.path(name) is not None}


def _with_parents(modules: set[str]) -> set[str]:
    """Importing ``w2s.a.b`` runs ``w2s/__init__.py`` and ``w2s/a/__init__.py`` first."""
    result = set(modules)
    for module in modules:
        parts = module.split(".")
        result.update(".".join(parts[:n]) for n in range(1, len(parts)))
    return result


def _registrations(tree: ast.Module) -> dict[str, tuple[str, ast.Call]]:
    """The CLI's ``add("<command>", <handler>, ...)`` calls: command -> (handler name, call)."""
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and isinstance(node.args[1], ast.Name)
            and node.args[1].id in functions
        ):
            found[node.args[0].value] = (node.args[1].id, node)
    return found


def _drop_other_commands(tree: ast.Module, registrations: dict[str, tuple[str, ast.Call]], command: str) -> None:
    """Remove the other commands' handlers and parser entries from the CLI's tree, in place."""
    handlers = {handler for name, (handler, _) in registrations.items() if name != command}
    if command in registrations:
        handlers.discard(registrations[command][0])
    calls = {id(call) for name, (_, call) in registrations.items() if name != command}
    for node in ast.walk(tree):
        if isinstance(getattr(node, "body", None), list):
            node.body = [
                child
                for child in node.body
                if not (isinstance(child, ast.FunctionDef) and child.name in handlers)
                and not (isinstance(child, ast.Expr) and id(child.value) in calls)
            ]


def cli_tree(tree: ast.Module, command: str) -> ast.Module:
    """A CLI module's syntax tree (modified in place) reduced to the parts that ``w2s <command>`` runs:
    without the other commands' handlers and parser entries (all of them, when the module does not
    define ``command``)."""
    _drop_other_commands(tree, _registrations(tree), command)
    return tree


def cli_commands(package: Package) -> set[str]:
    """Every command the CLI modules register."""
    found: set[str] = set()
    for module in CLI_MODULES:
        path = package.path(module)
        if path is not None:
            found |= set(_registrations(ast.parse(path.read_text(), filename=str(path))))
    return found


def stage_modules(rule: str, package: Package | None = None) -> tuple[str, ...]:
    """The ``w2s`` modules the rule's command runs: the import closure of ``__main__`` (with the CLI
    reduced to the command) and of the stage's entry module."""
    package = package or Package()
    spec = stage(rule)
    if spec.command not in cli_commands(package):
        raise ValueError(f"the w2s CLI ({package.root}) has no command {spec.command!r}")
    todo = _with_parents({MAIN, f"{PACKAGE}.{spec.entry}"})
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        seen.add(module)
        found = package.imports(module, spec.command)
        todo |= _with_parents(found) - seen
    return tuple(sorted(seen))


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    """Remove the docstrings of the module, its classes and functions, in place."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:]
    return tree


def stage_hash(rule: str, package: Package | None = None, length: int = 16) -> str:
    """sha256 over the normalized syntax trees of the modules ``rule`` runs (see the module docstring)."""
    package = package or Package()
    command = stage(rule).command
    digest = hashlib.sha256()
    for module in stage_modules(rule, package):
        digest.update(f"{module}\0{package.digest(module, command)}\0".encode())
    return digest.hexdigest()[:length]


def sources_digest(root: Path = PACKAGE_DIR) -> str:
    """sha256 over every source file of the package (path and bytes) and the Python version, whose
    ``ast`` the trees come from: the key of the stored stage hashes."""
    digest = hashlib.sha256(f"{sys.version}\0".encode())
    for path in sorted(Path(root).rglob("*.py")):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def all_stage_hashes(root: Path = PACKAGE_DIR) -> dict[str, str]:
    """Full-length hashes of every stage in the package under ``root``, read from the store when these
    exact sources were hashed before, else computed and stored (atomically; a failed write only costs
    the next process the recomputation)."""
    stored = cache_root() / "fingerprints" / f"{sources_digest(root)}.json"
    try:
        return json.loads(stored.read_text())
    except (OSError, ValueError):
        pass
    package = Package(root)
    hashes = {rule: stage_hash(rule, package, length=64) for rule in STAGES}
    try:
        write_json(hashes, stored)
    except OSError:
        pass
    return hashes


@cache
def _hashes() -> dict[str, str]:
    return all_stage_hashes(PACKAGE_DIR)


def code_hash(rule: str, length: int = 16) -> str:
    """The code hash of a rule's stage in this checkout."""
    try:
        stage(rule)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    return _hashes()[rule][:length]
