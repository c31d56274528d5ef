"""The leaderboard: pooling only comparable records, the PGR of seed means per cell, mean ranks,
code versions, filters, skipped records, and two teams publishing into one store at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_results_store import CONFIG, make_run

from w2s.cli import main
from w2s.config import resolve_config
from w2s.leaderboard import build_leaderboard, differing_fields, load_records, mean_ranks, write_leaderboard
from w2s.metrics import ratio_interval
from w2s.results_store import ResultsStore, comparability_inputs, publish_records


@pytest.fixture()
def config() -> dict:
    return resolve_config(json.loads(json.dumps(CONFIG)))


def publish(config, store: Path, workdir: Path, team: str, runs: list[tuple[int, str, tuple]], **kwargs) -> None:
    """Publish (seed, method, accuracies) runs of one team from its own results directory."""
    items = []
    for seed, method, accs in runs:
        files = make_run(workdir / f"{method}-{seed}", seed=seed, method=method, accs=accs, **kwargs)
        items.append(
            (files, comparability_inputs(config, "toy", "weak_m", "strong_m"), config["strong"]["methods"][method])
        )
    publish_records(str(store), items, team, {"evaluate": "c0de"}, {})


def test_pgr_of_seed_means_pinned_by_hand(config, tmp_path):
    runs = [(0, "xent", (0.6, 0.7, 0.8)), (1, "xent", (0.5, 0.65, 0.75)), (2, "xent", (0.55, 0.64, 0.78))]
    publish(config, tmp_path / "store", tmp_path, "a", runs)
    board = build_leaderboard(load_records([str(tmp_path / "store")]))
    (cell,) = board.cells.to_dict("records")
    # means: weak 0.55, student 1.99 / 3, ceiling 2.33 / 3 -> (0.34 / 3) / (0.68 / 3) = 0.5
    assert cell["pgr"] == pytest.approx(0.5)
    # Fieller over seeds of student - weak (0.1, 0.15, 0.09) over ceiling - weak (0.2, 0.25, 0.23)
    low, high = ratio_interval(np.array([0.1, 0.15, 0.09]), np.array([0.2, 0.25, 0.23]), 0.95)
    assert (cell["pgr_ci_low"], cell["pgr_ci_high"]) == (pytest.approx(float(low)), pytest.approx(float(high)))
    assert 0.18 < cell["pgr_ci_low"] < 0.181 and 0.754 < cell["pgr_ci_high"] < 0.755
    assert cell["n_seeds"] == 3 and cell["seeds"] == "0,1,2" and cell["teams"] == "a"


def test_records_of_one_seed_count_once_as_their_mean(config, tmp_path):
    store = tmp_path / "store"
    publish(config, store, tmp_path / "a", "a", [(0, "xent", (0.6, 0.7, 0.8))])
    publish(config, store, tmp_path / "b", "b", [(0, "xent", (0.6, 0.8, 0.8))])
    (cell,) = build_leaderboard(load_records([str(store)])).cells.to_dict("records")
    assert cell["n_seeds"] == 1 and cell["n_records"] == 2 and cell["teams"] == "a,b"
    assert cell["pgr"] == pytest.approx((0.75 - 0.6) / (0.8 - 0.6))
    assert cell["pgr_ci_low"] is None or np.isnan(cell["pgr_ci_low"])  # one seed: no interval


def test_mean_ranks_pinned_by_hand():
    cells = pd.DataFrame(
        {"method": ["a", "b", "c", "a", "b"], "column": ["x", "x", "x", "y", "y"], "pgr": [0.9, 0.5, 0.5, 0.1, 0.2]}
    )
    ranks = mean_ranks(cells).set_index("method")
    # column x: a 1, b and c tie at 2.5; column y: b 1, a 2
    assert ranks.loc["a", "mean_rank"] == 1.5 and ranks.loc["b", "mean_rank"] == 1.75
    assert ranks.loc["c", "mean_rank"] == 2.5 and list(ranks["n_tasks"]) == [2, 2, 1]
    assert list(ranks.index) == ["a", "b", "c"]


def test_differing_fields_name_only_what_differs():
    diff = differing_fields(
        {"k1": {"sizes": {"test": 10, "val": 4}, "task": "t"}, "k2": {"sizes": {"test": 500, "val": 4}, "task": "t"}}
    )
    assert diff == {"k1": "sizes.test=10", "k2": "sizes.test=500"}


def test_two_teams_publishing_at_once_one_with_an_extra_method(config, tmp_path):
    store = tmp_path / "shared-store"
    team_runs = {
        "alpha": [(s, m, (0.6, 0.7 + 0.01 * s, 0.8)) for s in (0, 1) for m in ("xent", "conf")],
        "beta": [(s, "xent", (0.62, 0.69 + 0.02 * s, 0.81)) for s in (1, 2)],
    }
    errors = []

    def run(team: str) -> None:
        try:
            publish(config, store, tmp_path / team, team, team_runs[team])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(team,)) for team in team_runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = load_records([str(store)])
    assert len(records.frame) == 6 and records.skipped == []
    board = build_leaderboard(records)
    cells = board.cells.set_index("method")
    assert set(cells.index) == {"xent", "conf"} and cells.loc["xent", "teams"] == "alpha,beta"
    assert cells.loc["conf", "teams"] == "alpha" and board.columns.shape[0] == 1
    # The numbers from the records themselves: per seed the mean over teams, then PGR of the seed means.
    stored = [r for _, r in ResultsStore(str(store)).read_all()[0]]
    for method in ("xent", "conf"):
        by_seed = {}
        for record in stored:
            if record["method"]["name"] == method:
                m = record["metrics"]
                by_seed.setdefault(record["seed"], []).append((m["weak_acc"], m["student_acc"], m["ceiling_acc"]))
        means = np.array([np.mean(v, axis=0) for _, v in sorted(by_seed.items())])
        weak, student, ceiling = means.mean(axis=0)
        assert cells.loc[method, "pgr"] == pytest.approx((student - weak) / (ceiling - weak))
        assert cells.loc[method, "n_seeds"] == len(by_seed)


def test_a_record_with_other_split_sizes_is_not_pooled(config, tmp_path):
    store = tmp_path / "store"
    publish(config, store, tmp_path / "default", "a", [(0, "xent", (0.6, 0.7, 0.8)), (1, "xent", (0.6, 0.7, 0.8))])
    publish(config, store, tmp_path / "small", "a", [(0, "xent", (0.5, 0.9, 1.0))], test_n=500)
    board = build_leaderboard(load_records([str(store)]))
    assert len(board.columns) == 2
    by_column = board.cells.set_index("column")
    default = by_column.loc["toy · weak_m→strong_m [settings.split_sizes.test=10]"]
    other = by_column.loc["toy · weak_m→strong_m [settings.split_sizes.test=500]"]
    assert default["pgr"] == pytest.approx(0.5) and default["n_seeds"] == 2
    assert other["pgr"] == pytest.approx(0.8) and other["n_seeds"] == 1


def test_code_versions_are_flagged_and_strict_mode_separates_them(config, tmp_path):
    store = tmp_path / "store"
    publish(config, store, tmp_path / "a", "a", [(0, "xent", (0.6, 0.7, 0.8))])
    items = [
        (
            make_run(tmp_path / "b", seed=1, accs=(0.6, 0.75, 0.8)),
            comparability_inputs(config, "toy", "weak_m", "strong_m"),
            config["strong"]["methods"]["xent"],
        )
    ]
    publish_records(str(store), items, "a", {"evaluate": "other"}, {})
    records = load_records([str(store)])
    (pooled,) = build_leaderboard(records).cells.to_dict("records")
    assert pooled["n_code_versions"] == 2 and pooled["n_seeds"] == 2
    page = write_leaderboard(build_leaderboard(records), tmp_path / "out")["html"].read_text()
    assert "2 code versions" in page
    strict = build_leaderboard(records, strict=True)
    assert len(strict.columns) == 2 and set(strict.cells["n_code_versions"]) == {1}


def test_filters_by_team_task_pair_and_date(config, tmp_path):
    store = tmp_path / "store"
    publish(config, store, tmp_path / "a", "a", [(0, "xent", (0.6, 0.7, 0.8))])
    publish(config, store, tmp_path / "b", "b", [(0, "conf", (0.6, 0.7, 0.8))])
    records = load_records([str(store)])
    assert set(build_leaderboard(records, filters={"teams": ["b"]}).cells["method"]) == {"conf"}
    assert build_leaderboard(records, filters={"tasks": ["other"]}).cells.empty
    assert len(build_leaderboard(records, filters={"pairs": ["weak_m:strong_m"]}).cells) == 2
    assert build_leaderboard(records, filters={"since": "2999-01-01"}).cells.empty
    today = records.frame["published_at"].iloc[0][:10]
    assert len(build_leaderboard(records, filters={"until": today}).cells) == 2
    with pytest.raises(ValueError, match="WEAK:STRONG"):
        build_leaderboard(records, filters={"pairs": ["weak_m-strong_m"]})


def test_corrupt_and_newer_records_are_skipped_and_counted_in_the_footer(config, tmp_path, caplog):
    store = tmp_path / "store"
    publish(config, store, tmp_path / "a", "a", [(0, "xent", (0.6, 0.7, 0.8)), (1, "xent", (0.5, 0.9, 0.9))])
    paths = sorted((store / "records").rglob("*.json"))
    victim = paths[0]
    kept = json.loads(paths[1].read_text())
    victim.write_text(victim.read_text()[:40])
    newer = {**kept, "format_version": 99}
    (store / "records" / "ff").mkdir(exist_ok=True)
    newer_path = store / "records" / "ff" / ("f" * 64 + ".json")
    newer_path.write_text(json.dumps(newer))
    out = tmp_path / "out"
    main(["leaderboard", "--store", str(store), "--out-dir", str(out)])
    assert victim.name in caplog.text and newer_path.name in caplog.text
    page = (out / "leaderboard.html").read_text()
    assert "2 record(s) skipped" in page and victim.name in page
    table = pd.read_csv(out / "leaderboard.csv")
    acc = kept["metrics"]
    assert table.loc[0, "pgr"] == pytest.approx(
        (acc["student_acc"] - acc["weak_acc"]) / (acc["ceiling_acc"] - acc["weak_acc"])
    )
    assert table.loc[0, "n_records"] == 1 and (out / "leaderboard.png").stat().st_size > 0


def test_html_puts_the_headline_first_and_links_each_cell_to_its_records(config, tmp_path):
    store = tmp_path / "store"
    publish(
        config,
        store,
        tmp_path / "a",
        "a",
        [(0, "xent", (0.6, 0.7, 0.8)), (1, "xent", (0.5, 0.65, 0.75)), (2, "xent", (0.55, 0.64, 0.78))],
    )
    paths = write_leaderboard(build_leaderboard(load_records([str(store)])), tmp_path / "out")
    page = paths["html"].read_text()
    assert page.index("mean rank") < page.index("Cells and their records")
    assert "0.500 [0.181, 0.754]" in page and "href='#cell-0'" in page and "id='cell-0'" in page
    for record in (store / "records").rglob("*.json"):
        assert record.resolve().as_uri() in page


def test_summary_page_puts_method_student_accuracy_and_pgr_interval_first():
    from w2s.tables import pgr_with_interval, summary_page

    assert pgr_with_interval(0.5, 0.181, 0.754) == "0.500 [0.181, 0.754]"
    assert pgr_with_interval(0.5, None, None, True) == "0.500 [-inf, inf]"
    assert pgr_with_interval(0.5, float("nan"), float("nan"), False) == "0.500"
    assert pgr_with_interval(None, None, None) == "undefined"
    summary = pd.DataFrame(
        {
            "task": ["t"],
            "weak_model": ["w"],
            "strong_model": ["s"],
            "mode": ["m"],
            "seed": [0],
            "method": ["xent"],
            "n_test": [10],
            "weak_acc": [0.6],
            "student_acc": [0.7],
            "ceiling_acc": [0.8],
            "pgr": [0.5],
            "pgr_ci_low": [0.2],
            "pgr_ci_high": [0.8],
            "weak_ece": [0.1],
        }
    )
    by_seed = pd.DataFrame(
        {
            "task": ["t"],
            "method": ["xent"],
            "student_acc_mean": [0.7],
            "pgr_of_means": [0.5],
            "pgr_of_means_ci_low": [0.3],
            "pgr_of_means_ci_high": [0.6],
            "n_seeds": [3],
        }
    )
    page = summary_page(summary, by_seed)
    over_seeds, per_experiment = page.split("<h3>Per experiment</h3>")
    headers = [h.split("</th>")[0] for h in per_experiment.split("<th>")[1:]]
    assert headers[:3] == ["method", "student_acc", "PGR [interval]"] and headers.index("weak_ece") > 3
    assert "0.500 [0.200, 0.800]" in per_experiment and "0.500 [0.300, 0.600]" in over_seeds
    assert [h.split("</th>")[0] for h in over_seeds.split("<th>")[1:]][:3] == [
        "method",
        "student_acc_mean",
        "PGR of seed means [interval]",
    ]


def test_a_one_seed_cell_shows_the_runs_set_over_test_items():
    import pandas as pd

    from w2s.leaderboard import cell_numbers

    row = {
        "seed": 0,
        "weak_acc": 0.6,
        "student_acc": 0.7,
        "ceiling_acc": 0.8,
        "min_pgr_gap": 0.01,
        "confidence_level": 0.95,
        "item_kind": "bounded",
        "item_low": 0.3,
        "item_high": 0.8,
        "item_ray_low": None,
        "item_ray_high": None,
        "item_unbounded": False,
    }
    cell = cell_numbers(pd.DataFrame([row, dict(row)]))  # two identical records (reruns) of one seed
    assert cell["pgr"] == pytest.approx(0.5) and cell["interval"] == "test items"
    assert (cell["pgr_ci_kind"], cell["pgr_ci_low"], cell["pgr_ci_high"]) == ("bounded", 0.3, 0.8)
    two_seeds = cell_numbers(pd.DataFrame([row, {**row, "seed": 1, "student_acc": 0.72}]))
    assert two_seeds["interval"] == "seeds" and two_seeds["n_seeds"] == 2
