"""A plugin loss end to end through Snakemake: a file beside the config, named under `plugins:`, trains a
student; its identity is in the student's provenance; editing it reruns exactly that student (and the
evaluation and summary downstream of it); a broken plugin stops the workflow before any job runs."""

from __future__ import annotations

import copy
import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, jobs_in, snakemake, write_config

from w2s.io import read_provenance

pytestmark = pytest.mark.slow

PLUGIN = ROOT / "examples" / "plugins" / "my_losses.py"
STUDENTS = "results/rotten_tomatoes/seed0/strong/tiny_strong/students/tiny_weak"
UPSTREAM = {"prepare_data", "train_weak", "label_weak", "extract_features", "train_ceiling"}


@pytest.fixture(scope="module")
def frozen(tmp_path_factory) -> dict:
    """A copy of the workflow and package taken once: only the plugin edit below changes code while the
    module's runs compare hashes, even when the sources of the checkout change meanwhile."""
    root = tmp_path_factory.mktemp("frozen_workflow")
    shutil.copy(ROOT / "Snakefile", root / "Snakefile")
    for path in ("workflow", "envs"):
        shutil.copytree(ROOT / path, root / path, ignore=shutil.ignore_patterns("__pycache__"))
    return {"snakefile_root": root, "env": {"PYTHONPATH": str(root / "workflow")}}


@pytest.fixture(scope="module")
def plugin_run(tiny_config, tmp_path_factory, frozen) -> tuple[Path, dict, dict]:
    workdir = tmp_path_factory.mktemp("plugins")
    shutil.copy(PLUGIN, workdir / "my_losses.py")
    config = copy.deepcopy(tiny_config)
    config["labeling"]["engine"] = "transformers"  # the plugin does not touch labeling; keep it quick
    config["plugins"] = ["my_losses.py"]  # relative to the config file's directory
    config["strong"]["methods"] = {"xent": {}, "gce": {"loss": "gce", "loss_options": {"q": 0.7}}}
    ran = jobs_in(snakemake(workdir, configfile=write_config(workdir / "config.yaml", config), **frozen))
    assert ran["train_student"] == 2
    return workdir, config, frozen


def dry_run(workdir: Path, config: dict, frozen: dict) -> dict[str, int]:
    return jobs_in(snakemake(workdir, "-n", configfile=write_config(workdir / "config.yaml", config), **frozen))


def test_the_plugin_student_records_the_plugin(plugin_run):
    workdir = plugin_run[0]
    provenance = read_provenance(workdir / STUDENTS / "gce/predictions.parquet")
    loss = provenance["extensions"][0]
    assert loss["name"] == "gce"
    assert loss["plugin"]["entry"] == str((workdir / "my_losses.py").resolve())
    assert loss["plugin"]["source"] == "sha256:" + hashlib.sha256((workdir / "my_losses.py").read_bytes()).hexdigest()
    builtin = read_provenance(workdir / STUDENTS / "xent/predictions.parquet")["extensions"][0]
    assert builtin["name"] == "xent" and builtin["plugin"] is None


def test_editing_the_plugin_reruns_exactly_its_student(plugin_run):
    workdir, config, frozen = plugin_run
    assert dry_run(workdir, config, frozen) == {}
    plugin = workdir / "my_losses.py"
    original = plugin.read_text()
    try:
        plugin.write_text(original.replace("q: float = 0.7", "q: float = 0.6"))
        result = snakemake(workdir, "-n", configfile=workdir / "config.yaml", **frozen)
    finally:
        plugin.write_text(original)
    ran = jobs_in(result)
    outputs = [line for line in (result.stdout + result.stderr).splitlines() if line.strip().startswith("output:")]
    assert ran.pop("train_student") == 1
    assert any(f"{STUDENTS}/gce/" in line for line in outputs)
    assert not any(f"{STUDENTS}/xent/" in line for line in outputs)
    assert {"evaluate", "summarize"} <= set(ran) and not set(ran) & UPSTREAM, ran  # and what follows them
    assert dry_run(workdir, config, frozen) == {}


def test_a_broken_plugin_stops_the_workflow_before_any_job(plugin_run):
    workdir, config, frozen = plugin_run
    broken = {**config, "plugins": ["missing_losses.py"]}
    result = snakemake(workdir, "-n", configfile=write_config(workdir / "broken.yaml", broken), check=False, **frozen)
    assert result.returncode != 0
    assert "plugin 'missing_losses.py': no such file" in result.stdout + result.stderr
    assert jobs_in(result) == {}
