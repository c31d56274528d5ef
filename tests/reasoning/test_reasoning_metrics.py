"""pass@k, majority@k, Selection@1 and the reasoning gap recovered against hand-computed values."""

import json

import numpy as np
import pandas as pd
import pytest

from w2s.reasoning.evaluate import evaluate_experiment
from w2s.reasoning.metrics import majority_correct, pass_at_k, per_problem


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (5, 0, 3, 0.0),
        (5, 3, 3, 1.0),  # n - c = 2 < k: every draw of 3 holds a correct one
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (3, 3, 2, 1.0),  # every sample correct
        (4, 0, 4, 0.0),  # k = n: all samples drawn, none correct
        (4, 1, 4, 1.0),  # k = n: all samples drawn, the correct one among them
    ],
)
def test_pass_at_k_matches_the_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 1, 5), (4, 1, 0)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match=rf"0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}"):
        pass_at_k(n, c, k)


def test_majority_takes_the_most_common_answer_and_breaks_ties_by_first_reached():
    assert majority_correct(["3", "5", "5"], [True, False, False]) is False
    assert majority_correct(["3", "5", "3.0"], [True, False, True]) is True  # 3 and 3.0 are one answer
    assert majority_correct(["5", "3"], [False, True]) is False  # tie: 5 came first
    assert majority_correct([None, None], [False, False]) is False
    assert majority_correct([None, "4", "3", "3"], [False, False, True, True]) is True  # judged by a sample stating it


def _samples(rows):
    return pd.DataFrame(rows, columns=["problem_id", "sample_id", "answer", "correct"])


def test_per_problem_metrics_by_hand():
    samples = _samples(
        [
            ("p1", 0, "1", False),
            ("p1", 1, "2", True),
            ("p1", 2, "1", False),
            ("p1", 3, "2", True),
            ("p2", 0, "7", True),
            ("p2", 1, "8", False),
            ("p2", 2, "8", False),
            ("p2", 3, None, False),
        ]
    )
    scores = pd.DataFrame(
        {
            "problem_id": ["p1"] * 4 + ["p2"] * 4,
            "sample_id": [0, 1, 2, 3] * 2,
            "score": [0.2, 0.9, 0.9, 0.1, 0.5, 0.5, 0.1, 0.0],
        }
    )
    table = per_problem(samples, [1, 2, 4], scores).set_index("problem_id")
    assert table.loc["p1", "pass@1"] == 0.5 and table.loc["p2", "pass@1"] == 0.25
    assert table.loc["p1", "pass@2"] == pytest.approx(5 / 6)
    assert table.loc["p2", "pass@2"] == pytest.approx(0.5)
    assert table.loc["p1", "majority@2"] == 0.0  # tie between 1 and 2: 1 came first
    assert table.loc["p1", "majority@4"] == 0.0  # 1 and 2 twice each: 1 came first
    assert table.loc["p2", "majority@4"] == 0.0  # 8 twice
    assert table.loc["p2", "majority@1"] == 1.0
    assert table.loc["p1", "selection@1"] == 1.0  # 0.9 tie: sample 1 (lower id) is right
    assert table.loc["p2", "selection@1"] == 1.0  # 0.5 tie: sample 0


def test_per_problem_rows_are_in_problem_order_and_skip_k_above_the_sample_count():
    samples = _samples(
        [
            ("p2", 1, "3", True),
            ("p2", 0, "4", False),
            ("p1", 0, "1", True),
            ("p1", 2, "1", True),
            ("p1", 1, "2", False),
        ]
    )
    table = per_problem(samples, [2, 3])
    assert table["problem_id"].tolist() == ["p1", "p2"]
    assert table["n"].tolist() == [3, 2]
    assert table["pass@1"].tolist() == pytest.approx([2 / 3, 0.5])
    assert table["pass@2"].tolist() == pytest.approx([1.0, 1.0])
    # majority@2 reads samples 0 and 1 in sample order: p1 answers 1, 2 (tie, 1 first, right);
    # p2 answers 4, 3 (tie, 4 first, wrong)
    assert table["majority@2"].tolist() == [1.0, 0.0]
    assert table["pass@3"].iloc[0] == pytest.approx(1.0) and np.isnan(table["pass@3"].iloc[1])
    assert table["majority@3"].iloc[0] == 1.0 and np.isnan(table["majority@3"].iloc[1])
    assert "selection@1" not in table  # no verifier scores given


def test_per_problem_keeps_samples_that_have_no_verifier_score():
    samples = _samples([("p1", 0, "1", True), ("p1", 1, "2", False), ("p1", 2, "1", True)])
    scores = pd.DataFrame({"problem_id": ["p1", "p1"], "sample_id": [0, 1], "score": [0.2, 0.9]})
    row = per_problem(samples, [3], scores).iloc[0]
    assert row["n"] == 3 and row["pass@1"] == pytest.approx(2 / 3) and row["pass@3"] == 1.0
    assert row["selection@1"] == 0.0  # the top-scored sample 1 is wrong; the unscored one is never picked


def _write_generator(tmp_path, name, correct_by_problem, n=2):
    rows, scores = [], []
    for p, correct in enumerate(correct_by_problem):
        for s in range(n):
            ok = s < correct
            rows.append(
                {
                    "problem_id": f"p{p}",
                    "split": "test",
                    "sample_id": s,
                    "answer": "1" if ok else "0",
                    "correct": ok,
                    "n_completion_tokens": 10,
                }
            )
            scores.append(
                {
                    "problem_id": f"p{p}",
                    "split": "test",
                    "sample_id": s,
                    "check:format": 1.0,
                    "score": 1.0 if ok else 0.0,
                }
            )
    pd.DataFrame(rows).to_parquet(tmp_path / f"{name}.samples.parquet")
    pd.DataFrame(scores).to_parquet(tmp_path / f"{name}.scores.parquet")
    return {"samples": str(tmp_path / f"{name}.samples.parquet"), "scores": str(tmp_path / f"{name}.scores.parquet")}


def test_reasoning_gap_recovered_by_hand(tmp_path):
    problems = pd.DataFrame(
        {"problem_id": [f"p{i}" for i in range(4)], "split": "test", "question": "q", "answer": "1", "solution": None}
    )
    problems.to_parquet(tmp_path / "problems.parquet")
    # pass@1 over 4 problems x 2 samples: weak 2/8, student 5/8, ceiling 6/8 -> RGR (0.625-0.25)/(0.75-0.25) = 0.75
    generators = {
        "weak": {"role": "weak", **_write_generator(tmp_path, "weak", [1, 1, 0, 0])},
        "ceiling": {"role": "ceiling", "uses_gold": True, **_write_generator(tmp_path, "ceiling", [2, 2, 1, 1])},
        "w2sr": {"role": "student", **_write_generator(tmp_path, "w2sr", [2, 1, 1, 1])},
    }
    evaluation = {"bootstrap_samples": 200, "confidence_level": 0.9, "bootstrap_seed": 0, "min_gap": 0.01}
    out = tmp_path / "metrics.json"
    report = evaluate_experiment(
        str(tmp_path / "problems.parquet"),
        generators,
        [1, 2],
        evaluation,
        str(out),
        str(tmp_path / "summary.csv"),
        str(tmp_path / "plot.png"),
        {"task": "t"},
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["generators"]["weak"]["pass@1"] == 0.25
    assert report["generators"]["w2sr"]["pass@2"] == pytest.approx(1.0)
    assert report["generators"]["ceiling"]["uses_gold"] is True
    gap = report["gap_recovered"]["w2sr"]["pass@1"]
    assert gap["value"] == pytest.approx(0.75) and gap["status"] == "ok"
    assert gap["ci_low"] <= 0.75 <= gap["ci_high"]
    # selection@1: weak picks right on p0, p1 only (0.5); student and ceiling on all four (1.0)
    assert report["gap_recovered"]["w2sr"]["selection@1"]["value"] == pytest.approx(1.0)
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("generator")
    assert summary.loc["w2sr", "rgr_pass@1"] == pytest.approx(0.75)
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_gap_recovered_is_undefined_without_a_gap(tmp_path):
    problems = pd.DataFrame(
        {"problem_id": ["p0", "p1"], "split": "test", "question": "q", "answer": "1", "solution": None}
    )
    problems.to_parquet(tmp_path / "problems.parquet")
    generators = {
        name: {"role": role, **_write_generator(tmp_path, name, [1, 0])}
        for name, role in [("weak", "weak"), ("ceiling", "ceiling"), ("s", "student")]
    }
    evaluation = {"bootstrap_samples": 50, "confidence_level": 0.9, "bootstrap_seed": 0, "min_gap": 0.01}
    report = evaluate_experiment(
        str(tmp_path / "problems.parquet"),
        generators,
        [1],
        evaluation,
        str(tmp_path / "m.json"),
        str(tmp_path / "s.csv"),
        str(tmp_path / "p.png"),
    )
    gap = report["gap_recovered"]["s"]["pass@1"]
    assert gap["value"] is None and gap["status"].startswith("undefined")
    assert gap["ci_low"] is None and gap["ci_high"] is None  # no interval around an undefined value
    assert gap["undefined_fraction"] == 1.0
    assert np.isfinite(report["generators"]["s"]["pass@1"])


def test_summary_over_seeds_by_hand(tmp_path):
    from w2s.reasoning.evaluate import summarize_runs

    paths = []
    # ceilings 0.7, 0.675, 0.4 make the per-seed gaps 0.3/0.5 = 0.6, 0.3/0.375 = 0.8, 0.3/0.3 = 1.0
    for seed, (weak, student, ceiling, rgr) in enumerate(
        [(0.2, 0.5, 0.7, 0.6), (0.3, 0.6, 0.675, 0.8), (0.1, 0.4, 0.4, 1.0)]
    ):
        report = {
            "task": "gsm",
            "seed": seed,
            "generators": {
                "weak": {"role": "weak", "pass@1": weak, "pass@1_se": 0.1, "selection@1": weak},
                "w2sr": {"role": "student", "pass@1": student, "pass@1_se": 0.1, "selection@1": student},
            },
            "gap_recovered": {
                "w2sr": {
                    "pass@1": {"value": rgr, "weak": weak, "student": student, "ceiling": ceiling},
                    "selection@1": {"value": None, "weak": weak, "student": weak, "ceiling": weak},
                }
            },
        }
        paths.append(tmp_path / f"m{seed}.json")
        paths[-1].write_text(json.dumps(report))
    pooled = summarize_runs([str(p) for p in paths], 0.95, str(tmp_path / "runs.csv"), str(tmp_path / "by_seed.csv"))
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 6 and set(runs["seed"]) == {0, 1, 2}
    row = pooled.set_index("generator").loc["w2sr"]
    assert row["n_seeds"] == 3 and row["pass@1_mean"] == pytest.approx(0.5)
    # t-interval: mean 0.8, sd 0.2, t_{0.975, 2} = 4.3027 -> half width 4.3027 * 0.2 / sqrt(3)
    half = 4.302652729911275 * 0.2 / np.sqrt(3)
    assert row["rgr_pass@1_mean"] == pytest.approx(0.8)
    assert row["rgr_pass@1_ci_low"] == pytest.approx(0.8 - half) and row["rgr_pass@1_ci_high"] == pytest.approx(
        0.8 + half
    )
    assert pd.isna(row["rgr_selection@1_mean"])  # undefined in every seed
    assert row["rgr_pass@1_n_seeds_defined"] == 3 and row["rgr_selection@1_n_seeds_defined"] == 0
    # the gap of the seed means: (0.5 - 0.2) / ((0.7 + 0.675 + 0.4) / 3 - 0.2) = 0.3 / 0.391667
    assert row["rgr_pass@1_of_means"] == pytest.approx(0.3 / (1.775 / 3 - 0.2))
    assert row["rgr_pass@1_of_means_ci_kind"] in ("bounded", "two_rays", "everything")
    assert pd.isna(row["rgr_selection@1_of_means"])
    assert "pass@1_se_mean" not in pooled.columns
