"""The summary stage: the per-experiment and over-seed tables, their files, and the resolved configuration."""

import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from w2s.summary import aggregate_seeds, summarize, summary_table, write_resolved_config

AXES = {"task": "t", "weak_model": "w", "strong_model": "s", "mode": "linear_probe"}


def test_metric_columns_with_undefined_values_become_floats_and_flags_stay_flags():
    rows = [
        AXES | {"method": "x", "seed": 0, "pgr": 0.5, "pgr_ci_low": None, "pgr_ci_unbounded": True, "n_test": 10},
        AXES | {"method": "x", "seed": 1, "pgr": None, "pgr_ci_low": None, "pgr_ci_unbounded": None, "n_test": 12},
    ]
    summary = summary_table(rows)
    assert summary["pgr"].dtype == np.float64 and summary["pgr"].iloc[0] == 0.5 and np.isnan(summary["pgr"].iloc[1])
    # undefined in every row: still a float column, of NaN
    assert summary["pgr_ci_low"].dtype == np.float64 and summary["pgr_ci_low"].isna().all()
    assert summary["pgr_ci_unbounded"].tolist() == [True, None]
    assert summary["n_test"].tolist() == [10, 12] and summary["task"].tolist() == ["t", "t"]


def test_seed_groups_come_out_sorted_with_spreads_over_two_seeds_and_the_worst_bootstrap_share():
    # a hand-made table, not summary_table's: rows out of order, PGR an object column holding None
    rows = [("b", 0, 0.2, 0.5, 0.1), ("b", 1, 0.6, 0.7, 0.3), ("a", 1, None, 0.6, 0.0), ("a", 0, 0.4, 0.6, 0.5)]
    summary = pd.DataFrame(
        [
            AXES
            | {"method": m, "seed": seed, "pgr": pgr, "weak_acc": acc, "weak_acc_se": 0.1, "n_test": 10}
            | {"pgr_boot_undefined_frac": f}
            for m, seed, pgr, acc, f in rows
        ]
    )
    summary["pgr"] = pd.Series([pgr for _, _, pgr, _, _ in rows], dtype=object)
    by_seed = aggregate_seeds(summary, confidence_level=0.95)
    assert by_seed["method"].tolist() == ["a", "b"]
    a, b = by_seed.iloc[0], by_seed.iloc[1]
    assert (a["seeds"], a["n_seeds_pgr_defined"], a["n_seeds_pgr_undefined"]) == ("0,1", 1, 1)
    assert a["pgr_mean"] == pytest.approx(0.4) and np.isnan(a["pgr_seed_sd"])
    assert a["pgr_boot_undefined_frac_max"] == 0.5 and b["pgr_boot_undefined_frac_max"] == 0.3
    # two seeds: sd of (0.2, 0.6) is 0.4 / sqrt(2), of (0.5, 0.7) 0.2 / sqrt(2)
    assert b["pgr_mean"] == pytest.approx(0.4) and b["pgr_seed_sd"] == pytest.approx(0.4 / math.sqrt(2))
    assert b["weak_acc_mean"] == pytest.approx(0.6) and b["weak_acc_sd"] == pytest.approx(0.2 / math.sqrt(2))
    assert not {"n_test_mean", "weak_acc_se_mean", "pgr_boot_undefined_frac_mean"} & set(by_seed)


def test_pgr_of_means_without_a_recorded_minimum_gap_needs_only_a_positive_mean_gap():
    rows = [
        AXES | {"method": "x", "seed": seed, "pgr": None, "weak_acc": 0.6, "student_acc": s, "ceiling_acc": 0.605}
        for seed, s in enumerate([0.602, 0.604])
    ]
    row = aggregate_seeds(summary_table(rows), confidence_level=0.95).iloc[0]
    # mean gap 0.005, mean gain 0.003
    assert row["pgr_of_means"] == pytest.approx(0.6)


def test_tables_are_written_without_an_index_with_six_significant_digits_at_95_percent(tmp_path):
    paths = []
    for seed, (pgr, acc) in enumerate([(0.5, 1 / 3), (0.7, 2 / 3), (0.6, 1 / 7)]):
        path = tmp_path / f"m{seed}.json"
        path.write_text(
            json.dumps(AXES | {"method": "x", "seed": seed, "weak_acc": acc, "pgr": pgr, "weak_ece": 1.5e-7})
        )
        paths.append(path)
    out = {name: tmp_path / name for name in ("s.parquet", "s.csv", "b.parquet", "b.csv", "s.html")}
    summary, by_seed = summarize(paths, *out.values())
    assert out["s.csv"].read_text() == (
        "task,weak_model,strong_model,mode,method,seed,weak_acc,pgr,weak_ece\n"
        "t,w,s,linear_probe,x,0,0.333333,0.5,1.5e-07\n"
        "t,w,s,linear_probe,x,1,0.666667,0.7,1.5e-07\n"
        "t,w,s,linear_probe,x,2,0.142857,0.6,1.5e-07\n"
    )
    assert out["b.csv"].read_text().startswith("task,weak_model,strong_model,mode,method,n_seeds,")
    # the Parquet files hold the columns and no index, not even a range index in the pandas metadata
    for name, frame in (("s.parquet", summary), ("b.parquet", by_seed)):
        schema = pq.read_schema(out[name])
        assert schema.names == list(frame.columns) and schema.pandas_metadata["index_columns"] == []
    # the default level is 95%: PGR 0.5, 0.7, 0.6 have mean 0.6, sd 0.1 and t_{0.975, 2} = 4.302653
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert by_seed["pgr_seed_ci_low"].iloc[0] == pytest.approx(0.6 - half, rel=1e-6)


def test_resolved_config_is_a_commented_yaml_file_in_the_configs_own_key_order(tmp_path):
    config = {"tasks": {"sst2": {"sizes": {"test": 8}}}, "evaluation": {"min_pgr_gap": 0.01}, "alpha": {"beta": 1}}
    out = tmp_path / "report" / "config.resolved.yaml"
    write_resolved_config(config, out)
    text = out.read_text()
    first, rest = text.split("\n", 1)
    assert first == "# Resolved configuration: config file(s) plus schema defaults."
    assert yaml.safe_load(text) == config
    # the order the config file and schema gave, not alphabetical
    assert [line for line in rest.splitlines() if not line.startswith(" ")] == ["tasks:", "evaluation:", "alpha:"]
    assert list(tmp_path.joinpath("report").iterdir()) == [out]  # no temporary left beside it
