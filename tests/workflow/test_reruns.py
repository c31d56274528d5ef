"""Rerun only what changed, and share weak labels between teams through the label store.

Real Snakemake runs on a tiny config: team A computes and publishes; team B, in its own working
directory with the same store, fetches and runs no teacher or labeling job; concurrent publishers
leave one entry; a corrupted entry is recomputed. Dry runs assert exactly which jobs a change reruns.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import ROOT, jobs_in, snakemake, write_config

from w2s.label_store import LabelStore

pytestmark = pytest.mark.slow

AFTER_LABELS = {"train_student", "evaluate", "summarize", "plots", "publish_results", "all"}
LABELS = "results/rotten_tomatoes/seed0/weak/tiny_weak/labels"
STORE_ENTRY = f"{LABELS}/store_entry.json"  # what publishing or fetching an entry leaves; targets skip the students


@pytest.fixture(scope="module")
def team_config(tiny_config, tmp_path_factory) -> dict:
    config = copy.deepcopy(tiny_config)
    config["labeling"]["engine"] = "transformers"  # the store does not depend on the engine; keep it quick
    config["label_store"] = str(tmp_path_factory.mktemp("shared") / "label-store")
    return config


@pytest.fixture(scope="module")
def team_a(team_config, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("team_a")
    ran = jobs_in(snakemake(workdir, configfile=write_config(workdir / "config.yaml", team_config)))
    assert {"train_weak", "label_weak", "store_publish_weak_labels"} <= set(
        ran
    ) and "store_fetch_weak_labels" not in ran
    assert len(LabelStore(team_config["label_store"]).keys()) == 1
    return workdir


def dry_run(workdir: Path, config: dict, **kwargs) -> set[str]:
    return set(jobs_in(snakemake(workdir, "-n", configfile=write_config(workdir / "changed.yaml", config), **kwargs)))


def test_unchanged_config_reruns_nothing(team_a, team_config):
    assert dry_run(team_a, team_config) == set()


def test_student_hyperparameter_reruns_students_and_ceiling_only(team_a, team_config):
    changed = copy.deepcopy(team_config)
    changed["strong"]["probe"]["lr"] = 3e-3
    assert dry_run(team_a, changed) == AFTER_LABELS | {"train_ceiling"}


def test_method_setting_reruns_that_student_only(team_a, team_config):
    changed = copy.deepcopy(team_config)
    changed["strong"]["methods"] = {"xent": {"weighting": "confidence"}}
    assert dry_run(team_a, changed) == AFTER_LABELS


def test_weak_model_setting_reruns_everything_downstream_of_the_teacher(team_a, team_config):
    changed = copy.deepcopy(team_config)
    changed["weak"]["train"]["lr"] = 1e-4
    assert dry_run(team_a, changed) == {"train_weak", "label_weak", "store_publish_weak_labels"} | AFTER_LABELS


def test_fresh_clone_readme_and_comment_edits_rerun_nothing(team_a, team_config, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for path in ("workflow", "tests", "README.md", "Snakefile", "config.yaml", "envs", "pyproject.toml"):
        source = ROOT / path
        if source.is_dir():
            shutil.copytree(source, clone / path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, clone / path)
    (clone / "README.md").write_text((clone / "README.md").read_text() + "\nAn edit.\n")
    teacher = clone / "workflow" / "w2s" / "teacher.py"
    source = teacher.read_text()
    assert "\nimport time\n" in source
    teacher.write_text(source.replace("\nimport time\n", "\n# a comment\nimport time\n"))
    env = {"PYTHONPATH": str(clone / "workflow")}
    assert dry_run(team_a, team_config, snakefile_root=clone, env=env) == set()

    evaluate = clone / "workflow" / "w2s" / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\n\ndef _new_helper() -> None:\n    return None\n")
    assert dry_run(team_a, team_config, snakefile_root=clone, env=env) == {
        "evaluate",
        "summarize",
        "plots",
        "publish_results",
        "all",
    }


def test_team_b_fetches_from_the_store_and_runs_no_teacher_or_labeling(team_a, team_config, tmp_path):
    labels = [f"{LABELS}/{split}.parquet" for split in ("transfer", "test")]
    ran = jobs_in(snakemake(tmp_path, *labels, configfile=write_config(tmp_path / "config.yaml", team_config)))
    assert "store_fetch_weak_labels" in ran
    assert not {"train_weak", "label_weak"} & set(ran)
    for name in labels:
        assert (tmp_path / name).read_bytes() == (team_a / name).read_bytes()


def test_concurrent_publishers_leave_one_valid_entry(team_config, tmp_path):
    config = copy.deepcopy(team_config)
    config["label_store"] = str(tmp_path / "fresh-store")
    results = {}

    def run(name: str) -> None:
        workdir = tmp_path / name
        workdir.mkdir()
        results[name] = snakemake(workdir, STORE_ENTRY, configfile=write_config(workdir / "config.yaml", config))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = LabelStore(config["label_store"])
    assert len(store.keys()) == 1 and store.verify(store.keys()[0]) is not None
    assert not list((tmp_path / "fresh-store" / ".tmp").iterdir())


def test_corrupt_entry_is_detected_and_recomputed(team_a, team_config, tmp_path):
    store = LabelStore(team_config["label_store"])
    (key,) = store.keys()
    victim = Path(store.entry_dir(key)) / "transfer.parquet"
    victim.write_bytes(victim.read_bytes()[:100])
    result = snakemake(tmp_path, STORE_ENTRY, configfile=write_config(tmp_path / "config.yaml", team_config))
    assert "is corrupt" in result.stdout + result.stderr
    ran = jobs_in(result)
    assert {"train_weak", "label_weak", "store_publish_weak_labels"} <= set(
        ran
    ) and "store_fetch_weak_labels" not in ran
    assert store.verify(key) is not None  # republished, valid again
