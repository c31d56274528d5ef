"""The results store: records built from a run's files, content-derived paths, atomic and idempotent
publishing, conflicts and unwritable stores, and the import of an existing results directory."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from w2s.config import resolve_config
from w2s.io import write_json, write_parquet
from w2s.results_store import (
    FORMAT_VERSION,
    ResultsStore,
    ResultsStoreError,
    RunFiles,
    build_record,
    comparability_inputs,
    existing_runs,
    publish_records,
    record_id,
)

CONFIG = {
    "tasks": {
        "toy": {
            "source": "builtin",
            "name": "rotten_tomatoes",
            "sizes": {"weak_train": 20, "transfer": 20, "val": 4, "test": 10},
        }
    },
    "models": {"weak_m": {"checkpoint": "/nonexistent/weak"}, "strong_m": {"checkpoint": "/nonexistent/strong"}},
    "weak": {"models": ["weak_m"]},
    "strong": {"models": ["strong_m"], "methods": {"xent": {}, "conf": {"min_confidence": 0.7}}},
}


def make_run(
    root: Path,
    seed: int = 0,
    method: str = "xent",
    accs=(0.6, 0.7, 0.8),
    test_n: int = 10,
    student_provenance: dict | None = None,
) -> RunFiles:
    """The files one experiment leaves in results/: metrics, manifest, weak labels, predictions."""
    base = root / "toy" / f"seed{seed}"
    weak, student, ceiling = accs
    metrics = {
        "task": "toy",
        "seed": seed,
        "weak_model": "weak_m",
        "strong_model": "strong_m",
        "mode": "linear_probe",
        "method": method,
        "n_test": test_n,
        "n_transfer": 20,
        "weak_acc": weak,
        "student_acc": student,
        "ceiling_acc": ceiling,
        "pgr": (student - weak) / (ceiling - weak),
        "pgr_ci_low": 0.1,
        "pgr_ci_high": 0.9,
        "reliability": {"weak": {}},
        "settings": {"min_pgr_gap": 0.01},
    }
    write_json(metrics, base / f"metrics/weak_m/strong_m/{method}.json")
    write_json(
        {"data_hash": "d" * 16, "splits": {"test": {"n": test_n}, "transfer": {"n": 20}}}, base / "data/manifest.json"
    )
    table = pa.table({"id": ["a"]})
    write_parquet(
        table,
        base / "weak/weak_m/labels/test.parquet",
        provenance={"engine": "vllm", "engine_version": "0.1", "dtype": "float32"},
    )
    write_parquet(
        table,
        base / f"strong/strong_m/students/weak_m/{method}/predictions.parquet",
        provenance={"precision": "fp32", "torch_version": "2.0", **(student_provenance or {})},
    )
    write_parquet(table, base / "strong/strong_m/ceiling/predictions.parquet", provenance={"precision": "bf16"})
    write_json({"precision": "fp32"}, base / "weak/weak_m/model/train_info.json")
    return RunFiles(
        str(base / f"metrics/weak_m/strong_m/{method}.json"),
        str(base / "data/manifest.json"),
        str(base / "weak/weak_m/labels/test.parquet"),
        str(base / f"strong/strong_m/students/weak_m/{method}/predictions.parquet"),
        str(base / "strong/strong_m/ceiling/predictions.parquet"),
        str(base / "weak/weak_m/model/train_info.json"),
    )


@pytest.fixture()
def config() -> dict:
    return resolve_config(json.loads(json.dumps(CONFIG)))


def record_of(config: dict, files: RunFiles, method: str = "xent", team: str = "a", **kwargs) -> dict:
    return build_record(
        files,
        comparability_inputs(config, "toy", "weak_m", "strong_m"),
        config["strong"]["methods"][method],
        team,
        {"evaluate": "c0de"},
        {"numpy": "2"},
        **kwargs,
    )


def test_record_holds_metrics_key_method_code_packages_precision(config, tmp_path):
    record = record_of(config, make_run(tmp_path, method="conf"), method="conf")
    assert record["format_version"] == FORMAT_VERSION and record["seed"] == 0 and record["team"] == "a"
    assert record["metrics"]["student_acc"] == 0.7 and record["metrics"]["n_test"] == 10
    assert record["metrics"]["n_transfer"] == 20 and "reliability" not in record["metrics"]
    assert record["method"] == {"name": "conf", "options": config["strong"]["methods"]["conf"], "plugin": None}
    assert record["comparability"]["split_sizes"] == {"test": 10, "transfer": 20}
    assert record["comparability"]["data_hash"] == "d" * 16
    assert record["precision"] == {"teacher": "fp32", "labeling_dtype": "float32", "student": "fp32", "ceiling": "bf16"}
    assert record["packages"] == {"numpy": "2", "torch": "2.0", "vllm": "0.1"}
    assert record["code"] == {"evaluate": "c0de"}


def test_plugin_identity_is_carried_from_the_student_provenance(config, tmp_path):
    files = make_run(tmp_path, student_provenance={"method": {"loss": "gce", "plugin": "my_losses.py@abc"}})
    assert record_of(config, files)["method"]["plugin"] == "my_losses.py@abc"


def test_comparability_key_ignores_method_seed_and_team_but_not_split_sizes(config, tmp_path):
    key = record_of(config, make_run(tmp_path / "a"))["comparability_key"]
    assert (
        record_of(config, make_run(tmp_path / "b", seed=3, method="conf"), method="conf", team="b")["comparability_key"]
        == key
    )
    assert record_of(config, make_run(tmp_path / "c", test_n=500))["comparability_key"] != key
    config["evaluation"]["min_pgr_gap"] = 0.05
    assert record_of(config, make_run(tmp_path / "d"))["comparability_key"] != key


def test_record_id_leaves_out_only_the_timestamp(config, tmp_path):
    record = record_of(config, make_run(tmp_path))
    assert record_id({**record, "published_at": "1999-01-01"}) == record_id(record)
    assert record_id({**record, "team": "b"}) != record_id(record)
    assert record_id(json.loads(json.dumps(record))) == record_id(record)


def test_publish_writes_once_under_the_content_path(config, tmp_path):
    store = ResultsStore(str(tmp_path / "store"))
    record = record_of(config, make_run(tmp_path))
    path, written = store.publish(record)
    rid = record_id(record)
    assert written and path == f"{tmp_path}/store/records/{rid[:2]}/{rid}.json"
    assert json.loads(Path(path).read_text()) == record
    again, written = store.publish({**record, "published_at": "2100-01-01T00:00:00+00:00"})
    assert again == path and not written
    assert json.loads(Path(path).read_text())["published_at"] == record["published_at"]
    assert [p.name for p in Path(path).parent.iterdir()] == [f"{rid}.json"]  # no temporary file left


def test_an_edited_record_at_the_claimed_path_is_an_error_naming_both(config, tmp_path):
    store = ResultsStore(str(tmp_path / "store"))
    files = make_run(tmp_path)
    record = record_of(config, files)
    path, _ = store.publish(record)
    edited = json.loads(Path(path).read_text())
    edited["metrics"]["student_acc"] = 0.99
    Path(path).write_text(json.dumps(edited))
    with pytest.raises(ResultsStoreError) as error:
        store.publish(record, source=files.metrics)
    assert Path(path).name in str(error.value) and files.metrics in str(error.value)


def test_an_unwritable_store_fails_naming_its_url_and_leaves_results_alone(config, tmp_path):
    files = make_run(tmp_path / "results")
    before = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()}
    (tmp_path / "blocker").write_text("a file where the store's directory would be")
    url = str(tmp_path / "blocker" / "store")
    with pytest.raises(ResultsStoreError, match=f"results store {url}"):
        publish_records(url, [(files, comparability_inputs(config, "toy", "weak_m", "strong_m"), {})], "a", None, {})
    assert {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()} == before


def test_publish_through_fsspec_memory_filesystem(config, tmp_path):
    store = ResultsStore("memory://w2s-results-test")
    record = record_of(config, make_run(tmp_path))
    path, written = store.publish(record)
    assert written and not store.publish(record)[1]
    records, skipped = store.read_all()
    assert [r for _, r in records] == [record] and skipped == []
    store.fs.rm(store.base, recursive=True)


def test_read_all_skips_truncated_newer_and_edited_records_naming_them(config, tmp_path):
    store = ResultsStore(str(tmp_path / "store"))
    good, _ = store.publish(record_of(config, make_run(tmp_path)))
    truncated, _ = store.publish(record_of(config, make_run(tmp_path / "t", seed=1)))
    Path(truncated).write_text(Path(truncated).read_text()[:50])
    newer = {**record_of(config, make_run(tmp_path / "n", seed=2)), "format_version": FORMAT_VERSION + 1}
    newer_path = store.record_path(record_id(newer))
    write_json(newer, newer_path)
    records, skipped = store.read_all()
    assert [Path(p).name for p, _ in records] == [Path(good).name]
    reasons = {Path(p).name: r for p, r in skipped}
    assert "not a JSON record" in reasons[Path(truncated).name]
    assert "newer" in reasons[Path(newer_path).name]


def test_existing_results_directory_is_imported_with_its_config(config, tmp_path):
    results = tmp_path / "results"
    for method in ("xent", "conf"):
        make_run(results, method=method)
    (results / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    runs = existing_runs(results)
    assert sorted(Path(files.metrics).stem for files, _, _ in runs) == ["conf", "xent"]
    receipts = publish_records(str(tmp_path / "store"), runs, "old", None, {})
    assert all(r["written"] for r in receipts)
    assert not any(r["written"] for r in publish_records(str(tmp_path / "store"), runs, "old", None, {}))
    records, _ = ResultsStore(str(tmp_path / "store")).read_all()
    assert {r["method"]["name"]: r["method"]["options"]["min_confidence"] for _, r in records} == {
        "xent": 0.0,
        "conf": 0.7,
    }
    assert all(r["code"] is None for _, r in records)


def test_import_without_a_resolved_config_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.resolved.yaml"):
        existing_runs(tmp_path)


def test_the_plugin_identity_comes_from_the_students_extensions():
    from w2s.results_store import _plugin

    identity = {"name": "my_losses.py", "sha256": "ab12"}
    student = {
        "extensions": [
            {"name": "gce", "source": "my_losses", "plugin": identity},
            {"name": "none", "source": "w2s.methods", "plugin": None},
        ]
    }
    assert _plugin(student, {}) == identity
    assert _plugin({"extensions": [{"name": "xent", "plugin": None}]}, {"loss": "xent"}) is None
