"""Code hashes follow the imports (w2s.fingerprint): every stage, every module, on a copy of the package.

A semantic edit to any module a stage's command runs changes that stage's hash; an edit anywhere else,
or a comment, docstring or formatting change anywhere, leaves it alone.
"""

from __future__ import annotations

import ast
import json
import modulefinder
import shutil
from pathlib import Path

import pytest

from w2s.fingerprint import (
    CLI,
    PACKAGE_DIR,
    Package,
    all_stage_hashes,
    code_hash,
    imported_modules,
    sources_digest,
    stage_hash,
    stage_modules,
)
from w2s.stages import STAGES

PROBE = "\n\ndef _fingerprint_probe() -> int:\n    return 1\n"


@pytest.fixture
def package_copy(tmp_path) -> Path:
    root = tmp_path / "w2s"
    shutil.copytree(PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def hashes(root: Path) -> dict[str, str]:
    package = Package(root)  # a fresh Package reads the files again
    return {rule: stage_hash(rule, package) for rule in STAGES}


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(("w2s", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def test_an_edit_to_a_module_changes_exactly_the_stages_that_import_it(package_copy):
    package = Package(package_copy)
    before = {rule: stage_hash(rule, package) for rule in STAGES}
    modules = {rule: set(stage_modules(rule, package)) for rule in STAGES}
    untouched = {rule: 0 for rule in STAGES}
    for path in sorted(package_copy.rglob("*.py")):
        name, source = module_name(package_copy, path), path.read_text()
        path.write_text(source + PROBE)
        package.forget(name)  # the other modules' parsed trees are reused: only this file changed
        after = {rule: stage_hash(rule, package) for rule in STAGES}
        path.write_text(source)
        package.forget(name)
        changed = {rule for rule in STAGES if after[rule] != before[rule]}
        assert changed == {rule for rule in STAGES if name in modules[rule]}, name
        for rule in STAGES:
            untouched[rule] += name not in modules[rule]
    # Every stage also saw edits that must not (and did not) change it; restored, nothing changed.
    assert all(untouched.values()), untouched
    assert {rule: stage_hash(rule, package) for rule in STAGES} == before == hashes(package_copy)


def test_comments_docstrings_and_formatting_do_not_count(package_copy):
    before = hashes(package_copy)
    for path in package_copy.rglob("*.py"):
        tree = ast.parse(path.read_text())
        if ast.get_docstring(tree) is not None:
            tree.body = tree.body[1:]
        # Reformatted by ast.unparse (no comments), with a new docstring and a comment.
        path.write_text(f'"""A new docstring."""\n# a comment\n\n\n{ast.unparse(tree)}\n')
    assert hashes(package_copy) == before


def test_a_cli_edit_changes_only_the_stages_that_run_that_command(package_copy):
    before = hashes(package_copy)
    cli = package_copy / "cli.py"
    source = cli.read_text()
    handler = source.replace(
        "def cmd_plots(args: argparse.Namespace) -> None:\n",
        "def cmd_plots(args: argparse.Namespace) -> None:\n    args.extra = 1\n",
    )
    option = source.replace(
        '(("--experiment",), {"default": "{}"}),',
        '(("--experiment",), {"default": "{}", "help": "what was run"}),',
    )
    for edited, rule in ((handler, "plots"), (option, "evaluate")):
        assert edited != source
        cli.write_text(edited)
        after = hashes(package_copy)
        assert {r for r in STAGES if after[r] != before[r]} == {rule}
    cli.write_text(source + PROBE)  # code outside any command's handler runs for every command
    after = hashes(package_copy)
    assert all(after[rule] != before[rule] for rule in STAGES)


def test_an_edit_to_a_reasoning_command_changes_only_its_stage(package_copy):
    before = hashes(package_copy)
    module = package_copy / "cli_reasoning.py"
    source = module.read_text()
    edited = source.replace(
        "def cmd_reasoning_score(args: argparse.Namespace) -> None:\n",
        "def cmd_reasoning_score(args: argparse.Namespace) -> None:\n    args.extra = 1\n",
    )
    assert edited != source
    module.write_text(edited)
    after = hashes(package_copy)
    assert {r for r in STAGES if after[r] != before[r]} == {"reasoning_score"}


def test_a_stage_whose_command_left_the_cli_is_an_error(package_copy):
    cli = package_copy / "cli.py"
    source = cli.read_text()
    assert '"plots",\n        cmd_plots,' in source
    cli.write_text(source.replace('"plots",\n        cmd_plots,', '"draw",\n        cmd_plots,'))
    with pytest.raises(ValueError, match="no command 'plots'"):
        stage_hash("plots", Package(package_copy))


def test_every_import_form_is_followed(tmp_path):
    root = tmp_path / "w2s"
    files = {
        "__init__.py": "",
        "a.py": "X = 1\n",
        "b.py": "Y = 1\n",
        "c.py": "Z = 1\n",
        "d.py": "",
        "e.py": "",
        "f.py": "",
        "sub/__init__.py": "from . import s2\n",
        "sub/s1.py": (
            "from . import s2\nfrom .s3 import thing\nfrom .. import a\nfrom ..b import Y\n"
            "import w2s.c\nfrom w2s import d\nimport os\nfrom numpy import array\n"
            "def late():\n    from ..e import E\n    import w2s.sub.s4 as s4\n"
        ),
        "sub/s2.py": "",
        "sub/s3.py": "thing = 1\n",
        "sub/s4.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    package = Package(root)
    found = imported_modules(package, "w2s.sub.s1", package.tree("w2s.sub.s1"))
    assert found == {
        "w2s",
        "w2s.a",
        "w2s.b",
        "w2s.c",
        "w2s.d",
        "w2s.e",
        "w2s.sub.s2",
        "w2s.sub.s3",
        "w2s.sub",
        "w2s.sub.s4",
    }
    assert imported_modules(package, "w2s.sub", package.tree("w2s.sub")) == {"w2s.sub", "w2s.sub.s2"}


@pytest.mark.parametrize("rule", sorted(STAGES))
def test_modules_include_what_an_independent_import_scan_finds(rule):
    """Python's own modulefinder (bytecode, not our syntax walk) finds no module the hash misses."""
    finder = modulefinder.ModuleFinder(path=[str(PACKAGE_DIR.parent)])
    finder.import_hook(f"w2s.{STAGES[rule].entry}")
    found = {name for name in finder.modules if name == "w2s" or name.startswith("w2s.")}
    assert found <= set(stage_modules(rule))
    assert {CLI, "w2s.__main__"} <= set(stage_modules(rule))


def test_the_modules_the_old_hand_kept_lists_missed_are_covered():
    def has(rule: str, *modules: str) -> bool:
        return {f"w2s.{m}" for m in modules} <= set(stage_modules(rule))

    assert has("label_weak", "runtime")
    assert has("plots", "summary", "tables")
    assert has("aggregate_weak_labels", "tables") and has("evaluate_verifiers", "tables")
    assert has("train_weak", "settings") and has("train_ceiling", "settings") and has("train_student", "settings")
    assert not has("prepare_data", "models") and not has("evaluate", "plots")


def test_code_hash_knows_only_rules():
    first = code_hash("train_weak")
    assert first == stage_hash("train_weak") and len(first) == 16
    with pytest.raises(ValueError, match="unknown rule 'teacher'"):
        code_hash("teacher")


def test_stage_hashes_are_stored_per_exact_sources(package_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    computed = all_stage_hashes(package_copy)
    assert computed == {rule: stage_hash(rule, Package(package_copy), length=64) for rule in STAGES}
    stored = tmp_path / "cache" / "fingerprints" / f"{sources_digest(package_copy)}.json"
    assert json.loads(stored.read_text()) == computed

    # The stored file is what a later process reads: it is not recomputed while the sources stay.
    stored.write_text(json.dumps({**computed, "train_weak": "stored"}))
    assert all_stage_hashes(package_copy)["train_weak"] == "stored"

    # Any edit to any source, even a comment, is a new key, and the hashes are taken afresh.
    data = package_copy / "data.py"
    data.write_text(data.read_text() + "\n# a comment\n")
    assert all_stage_hashes(package_copy) == computed
    evaluate = package_copy / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + PROBE)
    again = all_stage_hashes(package_copy)
    assert again["evaluate"] != computed["evaluate"] and again["train_weak"] == computed["train_weak"]


def test_an_unreadable_store_only_costs_the_recomputation(package_copy, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("W2S_CACHE", str(blocker))
    assert all_stage_hashes(package_copy) == {
        rule: stage_hash(rule, Package(package_copy), length=64) for rule in STAGES
    }
