"""The docs site builds strictly (a broken link or API reference fails), and the README stays a front door."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 220


def build_site(project: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the project whose mkdocs.yml is in `project`, into `site`."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(project / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of mkdocs.yml and docs/ (the package linked in), for planting faults without touching the tree."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", project / "docs")
    (project / "workflow").symlink_to(ROOT / "workflow")
    return project


def test_the_site_builds_strictly_with_the_api_reference(tmp_path):
    result = build_site(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    api_page = (tmp_path / "site" / "api" / "index.html").read_text()
    # mkdocstrings rendered the module's functions from their docstrings (their anchors), not just
    # the page's prose, which may name them too.
    assert 'id="w2s.api.prepare_splits"' in api_page and 'id="w2s.api.train_student"' in api_page


@pytest.mark.parametrize(
    "fault, message",
    [
        ("See [the pipeline](no_such_page.md).", "no_such_page.md"),
        ("See [evaluation](pipeline.md#no-such-section).", "no-such-section"),
        ("::: w2s.no_such_module", "w2s.no_such_module"),
    ],
)
def test_a_broken_link_or_reference_fails_the_build(project_copy, tmp_path, fault, message):
    page = project_copy / "docs" / "testing.md"
    page.write_text(page.read_text() + f"\n{fault}\n")
    result = build_site(project_copy, tmp_path / "site")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_a_page_missing_from_the_nav_fails_the_build(project_copy, tmp_path):
    (project_copy / "docs" / "orphan.md").write_text("# Orphan\n")
    result = build_site(project_copy, tmp_path / "site")
    assert result.returncode != 0
    assert "orphan.md" in result.stdout + result.stderr


def test_the_readme_is_short_and_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"
    first_screen = "\n".join(lines[:40])
    for command in ("make experiment", "make test"):
        assert re.search(rf"^{command}\b", first_screen, re.MULTILINE), f"{command!r} not in the README's first screen"


def test_the_readme_links_only_to_files_that_exist():
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    assert targets, "the README links to nothing"
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
