"""``w2s check-suite``: streams the first rows of each task and formats them, one line per task.

Offline, the hub is stood in for by local trees laid out like each task's branch (``--local``);
with HF_HUB_OFFLINE=1 every hub read fails fast, which is the network-failure case.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hub_trees import hub_tree

from w2s.cli import main
from w2s.suite import SuiteError
from w2s.suite.check import check_suite

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def mc_taco_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sentence": [f"He ate {i}." for i in range(n)],
            "question": ["How long?"] * n,
            "answer": ["20 minutes"] * n,
            "label": [i % 2 for i in range(n)],
            "category": ["Event Duration"] * n,
        }
    )


def boolq_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question": [f"is {i} even" for i in range(n)],
            "answer": [i % 2 == 0 for i in range(n)],
            "passage": [f"Number {i}." for i in range(n)],
        }
    )


@pytest.fixture
def local_hub(tmp_path) -> Path:
    """mc_taco (export branch) and boolq (main) trees of 7 rows per split; ethics_justice broken:
    its folder lacks the 'scenario' column."""
    root = tmp_path / "hub"
    hub_tree(root / "mc_taco", "mc_taco", mc_taco_rows(7))
    hub_tree(root / "boolq", "boolq", boolq_rows(7))
    hub_tree(root / "ethics_justice", "ethics_justice", pd.DataFrame({"label": [1, 0]}))
    return root


def test_rows_are_capped_and_items_counted(local_hub):
    results = check_suite(["mc_taco", "boolq"], rows=3, local_root=str(local_hub))
    # mc_taco: 2 splits x 3 rows, one item a row; boolq: 2 splits x 3 rows
    assert [r.line() for r in results] == ["ok   mc_taco  6 items from 6 rows", "ok   boolq  6 items from 6 rows"]


def test_a_failing_task_is_one_line_and_the_others_still_run(local_hub, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check-suite", "ethics_justice", "mc_taco", "--rows", "2", "--local", str(local_hub)])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "FAIL ethics_justice  SuiteError: suite task 'ethics_justice': missing column(s) ['scenario']"
    )
    assert lines[1] == "ok   mc_taco  4 items from 4 rows"


def test_unknown_task_lists_the_registry(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check-suite", "boolq", "nope", "--rows", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown suite task(s) ['nope']" in err and "'boolq'" in err and "'mc_taco'" in err
    with pytest.raises(SuiteError, match="--rows must be at least 1"):
        check_suite(["boolq"], rows=0)


def test_network_failure_is_one_line_per_task_not_a_traceback(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "w2s", "check-suite", "mc_taco", "ethics_virtue", "--rows", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["FAIL", "mc_taco"], ["FAIL", "ethics_virtue"]]
    assert "CogComp/mc_taco" in lines[0] and "Traceback" not in run.stdout + run.stderr
    assert not (tmp_path / "results").exists()
