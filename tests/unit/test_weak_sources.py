"""The weak-source stage: ensembles and degraded labels against hand values, aggregated verifier files,
and the gold-reading verifier report (its tie rule is the training labels' one)."""

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from w2s import io
from w2s.io import read_provenance, write_parquet
from w2s.tables import LABEL_SCHEMA, label_table
from w2s.verifiers import ITEM_CANDIDATE
from w2s.weak_sources import (
    aggregate_label_files,
    combine,
    combine_weak_labels,
    degrade,
    degrade_weak_labels,
    evaluate_verifiers,
    read_weak_labels,
    weak_label_table,
)

A = np.array([[0.9, 0.1], [0.4, 0.6]], dtype=np.float32)
B = np.array([[0.5, 0.5], [0.2, 0.8]], dtype=np.float32)
C = np.array([[0.3, 0.7], [0.1, 0.9]], dtype=np.float32)


def test_mean_geometric_and_vote_by_hand():
    np.testing.assert_allclose(combine([A, B], "mean"), [[0.7, 0.3], [0.3, 0.7]], rtol=1e-6)
    # geometric: sqrt(.9*.5) = .6708, sqrt(.1*.5) = .2236 -> normalized .75, .25
    np.testing.assert_allclose(combine([A, B], "geometric")[0], [0.75, 0.25], rtol=1e-5)
    # votes on row 0: A says 0, B ties (argmax -> 0), C says 1 -> [2/3, 1/3]
    np.testing.assert_allclose(combine([A, B, C], "vote"), [[2 / 3, 1 / 3], [0.0, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown combine rule"):
        combine([A, B], "median")


def test_degrade_hits_the_target_exactly_and_keeps_confidences():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 200)
    probs = np.stack([p, 1 - p], axis=1).astype(np.float32)
    gold = np.where(rng.uniform(size=200) < 0.85, 0, 1)  # teacher says 0 everywhere: 85%-ish right
    for target in (0.6, 0.7, 0.95):
        degraded = degrade(probs, gold, target, seed=0)
        assert (degraded.argmax(1) == gold).mean() == pytest.approx(round(target * 200) / 200)
        np.testing.assert_allclose(np.sort(degraded.max(1)), np.sort(probs.max(1)))
    np.testing.assert_array_equal(degrade(probs, gold, 0.7, seed=3), degrade(probs, gold, 0.7, seed=3))


def _labels(path, probs, ids=("a", "b")):
    write_parquet(label_table(pa.table({"id": list(ids), "text": ["x", "y"]}), probs), path)


def test_combine_files_keeps_schema_and_records_members(tmp_path):
    _labels(tmp_path / "a.parquet", A)
    _labels(tmp_path / "b.parquet", B)
    combine_weak_labels(
        {"a": str(tmp_path / "a.parquet"), "b": str(tmp_path / "b.parquet")},
        "mean",
        tmp_path / "out.parquet",
        {"task": "t"},
    )
    table, probs = read_weak_labels(tmp_path / "out.parquet")
    np.testing.assert_allclose(probs, [[0.7, 0.3], [0.3, 0.7]], rtol=1e-6)
    provenance = read_provenance(tmp_path / "out.parquet")
    assert provenance["source"] == "ensemble" and set(provenance["members"]) == {"a", "b"}
    _labels(tmp_path / "c.parquet", C, ids=("b", "a"))
    with pytest.raises(ValueError, match="labels other examples"):
        combine_weak_labels(
            {"a": str(tmp_path / "a.parquet"), "c": str(tmp_path / "c.parquet")}, "mean", tmp_path / "bad.parquet", {}
        )
    assert not (tmp_path / "bad.parquet").exists()


def test_degrade_file_flags_gold_use(tmp_path):
    _labels(tmp_path / "weak.parquet", A)  # predicts [0, 1]
    write_parquet(
        pa.table({"id": ["b", "a"], "text": ["y", "x"], "label": pa.array([1, 0], pa.int64())}),
        tmp_path / "gold.parquet",
    )
    achieved = degrade_weak_labels(
        str(tmp_path / "weak.parquet"), str(tmp_path / "gold.parquet"), 0.5, 0, tmp_path / "out.parquet", {}
    )
    assert achieved == 0.5
    provenance = read_provenance(tmp_path / "out.parquet")
    assert provenance["uses_gold"] is True and provenance["achieved_accuracy"] == 0.5


# --------------------------------------------------------------------------- aggregated verifier files


def test_weak_label_table_matches_the_label_schema():
    aggregated = pd.DataFrame(
        {"item_id": ["b", "a"], "candidate_id": ITEM_CANDIDATE, "score": [0.25, 0.9], "n_votes": [2, 2]}
    )
    texts = pd.DataFrame({"id": ["a", "b"], "text": ["good", "bad"]})
    table = weak_label_table(aggregated, texts)
    assert table.schema.equals(LABEL_SCHEMA)
    assert table.column("id").to_pylist() == ["a", "b"]
    np.testing.assert_allclose(table.column("soft_label").to_pylist(), [[0.1, 0.9], [0.75, 0.25]], rtol=1e-6)
    assert table.column("hard_label").to_pylist() == [1, 0]
    np.testing.assert_allclose(table.column("confidence").to_pylist(), [0.9, 0.75], rtol=1e-6)
    with pytest.raises(ValueError, match="no aggregated score"):
        weak_label_table(aggregated, pd.DataFrame({"id": ["c"], "text": ["?"]}))


def _write_weak_labels(path, ids, texts, p_positive):
    aggregated = pd.DataFrame({"item_id": ids, "candidate_id": ITEM_CANDIDATE, "score": p_positive, "n_votes": 1})
    io.write_parquet(weak_label_table(aggregated, pd.DataFrame({"id": ids, "text": texts})), path)


def test_aggregate_label_files_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    words = ["A wonderful film.", "Dull and boring.", "It exists.", "Not funny, but charming."]
    files: dict[str, dict[str, str]] = {}
    splits = {"transfer": 300, "test": 100}
    gold = {}
    for teacher, noise in (("t0", 0.2), ("t1", 0.3), ("t2", 0.4)):
        for split, n in splits.items():
            ids = [f"{split}{k}" for k in range(n)]
            labels = np.arange(n) % 2
            gold.update(zip(ids, labels))
            p = np.clip(labels * 0.6 + 0.2 + rng.normal(0, noise, n), 0, 1)
            path = tmp_path / f"{teacher}_{split}.parquet"
            _write_weak_labels(path, ids, [words[k % 4] for k in range(n)], p)
            files.setdefault(teacher, {})[split] = str(path)
    outputs = {split: tmp_path / f"agg_{split}.parquet" for split in splits}
    metadata = aggregate_label_files(
        files,
        outputs,
        {"normalize": "minmax"},
        fit_split="transfer",
        labeling_functions=["lexicon"],
        table_out=tmp_path / "verifiers.parquet",
        metadata_out=tmp_path / "meta.json",
        provenance={"experiment": "x"},
    )
    assert metadata["uses_labels"] is False and metadata["n_fit_units"] == 300
    for split, n in splits.items():
        table = pq.read_table(outputs[split])
        assert table.schema.remove_metadata().equals(LABEL_SCHEMA) and table.num_rows == n
        provenance = io.read_provenance(outputs[split])
        assert provenance["split"] == split and provenance["experiment"] == "x"
        hard = np.array(table.column("hard_label").to_pylist())
        truth = np.array([gold[i] for i in table.column("id").to_pylist()])
        assert np.mean(hard == truth) > 0.9
    verifier_table = pq.read_table(tmp_path / "verifiers.parquet").to_pandas()
    assert verifier_table["verifier_id"].tolist() == ["t0", "t1", "t2", "lexicon"]
    assert io.read_json(tmp_path / "meta.json")["labeling_functions"] == ["lexicon"]

    for aggregator in ("logistic", "best_single"):  # gold never reaches weak labels
        with pytest.raises(ValueError, match="needs gold labels: it is for the verifier report only"):
            aggregate_label_files(files, outputs, {"aggregator": aggregator}, fit_split="transfer")


def _teacher_files(tmp_path, split_probs: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, str]]:
    files: dict[str, dict[str, str]] = {}
    for teacher, by_split in split_probs.items():
        for split, p in by_split.items():
            ids = [f"{split}{k}" for k in range(len(p))]
            path = tmp_path / f"{teacher}_{split}.parquet"
            _write_weak_labels(path, ids, ["x"] * len(p), p)
            files.setdefault(teacher, {})[split] = str(path)
    return files


def _gold_files(tmp_path, gold: dict[str, np.ndarray]) -> dict[str, str]:
    paths = {}
    for split, labels in gold.items():
        paths[split] = str(tmp_path / f"gold_{split}.parquet")
        pq.write_table(pa.table({"id": [f"{split}{k}" for k in range(len(labels))], "label": labels}), paths[split])
    return paths


def test_report_and_training_labels_break_a_tie_the_same_way(tmp_path):
    # Two voters (an even number) that disagree on every item: majority = exactly 0.5 everywhere.
    # The labels make that class 0, so the report must too: test gold all 0 -> accuracy 1 (it was 0
    # when the report counted a score of 0.5 as positive).
    n = 8
    t0 = {"transfer": np.tile([0.9, 0.1], n // 2), "test": np.full(n, 0.9)}
    t1 = {"transfer": np.tile([0.1, 0.9], n // 2), "test": np.full(n, 0.1)}
    files = _teacher_files(tmp_path, {"t0": t0, "t1": t1})
    outputs = {split: tmp_path / f"agg_{split}.parquet" for split in ("transfer", "test")}
    aggregate_label_files(files, outputs, {"aggregator": "majority"}, fit_split="transfer")
    labels = pq.read_table(outputs["test"])
    assert labels.column("hard_label").to_pylist() == [0] * n
    np.testing.assert_allclose(labels.column("soft_label").to_pylist(), [[0.5, 0.5]] * n)
    gold = _gold_files(tmp_path, {"transfer": np.tile([1, 0], n // 2), "test": np.zeros(n, np.int64)})
    report, _ = evaluate_verifiers(files, [], {}, gold)
    assert report["aggregators"]["majority"]["test_accuracy"] == 1.0


def test_best_single_ranks_over_all_items_abstentions_as_the_prior_class(tmp_path):
    # "sharp" is right on every item it votes on but votes on 10% of them (it abstains with 0.5 as
    # "no score": a labeling function); the teachers are right on 80% and vote everywhere. Ranked
    # on voted items only, sharp won (accuracy 1.0) and its abstentions became class 0.
    rng = np.random.default_rng(0)
    n = 400
    gold = {split: rng.integers(0, 2, n) for split in ("transfer", "test")}
    probs = {}
    for teacher in ("t0", "t1", "t2"):
        probs[teacher] = {split: np.where((rng.random(n) < 0.8) == (y == 1), 0.8, 0.2) for split, y in gold.items()}
    files = _teacher_files(tmp_path, probs)
    sharp = {split: pd.DataFrame({"id": [f"{split}{k}" for k in range(n)], "y": y}) for split, y in gold.items()}
    from w2s import labeling_functions

    votes = {
        f"{split}{k}": float(y) for split, frame in sharp.items() for k, y in zip(range(n), frame["y"]) if k % 10 == 0
    }
    texts = {split: [f"{split}{k}" for k in range(n)] for split in gold}
    for teacher, by_split in probs.items():  # texts carry the item id so the function can look it up
        for split, p in by_split.items():
            _write_weak_labels(files[teacher][split], texts[split], texts[split], p)
    labeling_functions.LABELING_FUNCTION_REGISTRY.register("sharp")(lambda text: votes.get(text))
    try:
        report, table = evaluate_verifiers(files, ["sharp"], {}, _gold_files(tmp_path, gold))
    finally:
        labeling_functions.LABELING_FUNCTION_REGISTRY.unregister("sharp")
    assert report["aggregators"]["best_single"]["verifier"] in {"t0", "t1", "t2"}
    assert report["aggregators"]["best_single"]["test_accuracy"] > 0.7
    sharp_row = table.set_index("verifier_id").loc["sharp"]
    assert sharp_row["true_accuracy"] == 1.0 and sharp_row["true_coverage"] == pytest.approx(0.1)
    assert set(report["label_model"]) >= {"n_iter", "converged", "merged"}


# ---------------------------------------------------------------- label model: EM by hand and its convergence
HAND_VOTES = np.array([[1, 1], [1, 0], [0, 0], [1, np.nan]])


def test_label_model_first_step_by_hand():
    # Majority posterior q = [1, 1/2, 0, 1]; smoothing 1 adds one pseudo-count to each outcome.
    # tpr0 = (2.5 + 1) / (2.5 + 2) = 7/9, fpr0 = (0.5 + 1) / (1.5 + 2) = 3/7 (column 0 votes on all four);
    # tpr1 = (1 + 1) / (1.5 + 2) = 4/7, fpr1 = (0 + 1) / (1.5 + 2) = 2/7 (column 1 abstains on the last);
    # prior = (2.5 + 1) / (4 + 2) = 7/12. The only step moves tpr0 furthest from 0.5: 7/9 - 1/2 = 5/18.
    from w2s.verifiers.label_model import fit_label_model

    fitted = fit_label_model(HAND_VOTES, max_iter=1, smoothing=1.0)
    np.testing.assert_allclose(fitted["tpr"], [7 / 9, 4 / 7])
    np.testing.assert_allclose(fitted["fpr"], [3 / 7, 2 / 7])
    assert fitted["prior"] == pytest.approx(7 / 12)
    assert fitted["n_iter"] == 1 and fitted["converged"] is False and fitted["final_change"] == pytest.approx(5 / 18)


def test_label_model_posterior_and_second_step_by_hand():
    # Odds of the positive class at the first step's rates: prior odds 7/5 times tpr/fpr per positive
    # vote ((7/9)/(3/7) = 49/27 and 2) and (1-tpr)/(1-fpr) per negative one ((2/9)/(4/7) = 7/18 and 3/5):
    # [1,1] 686/135, [1,0] 343/225, [0,0] 49/150, [1,abstain] 343/135.
    from w2s.verifiers.label_model import fit_label_model, label_model_posterior

    odds = np.array([686 / 135, 343 / 225, 49 / 150, 343 / 135])
    q = odds / (1 + odds)
    np.testing.assert_allclose(label_model_posterior(HAND_VOTES, [7 / 9, 4 / 7], [3 / 7, 2 / 7], 7 / 12), q)
    # The second EM step is the smoothed M-step on that posterior (plain EM: no extrapolation in two steps).
    fitted = fit_label_model(HAND_VOTES, max_iter=2, smoothing=1.0)
    tpr0 = (q[0] + q[1] + q[3] + 1) / (q.sum() + 2)
    fpr1 = ((1 - q[0]) + 1) / ((1 - q[:3]).sum() + 2)  # column 1's only positive vote is on unit 0
    np.testing.assert_allclose([fitted["tpr"][0], fitted["fpr"][1], fitted["prior"]], [tpr0, fpr1, (q.sum() + 1) / 6])
    assert fitted["n_iter"] == 2
    assert fitted["final_change"] == pytest.approx(
        max(
            abs(tpr0 - 7 / 9),
            abs(fpr1 - 2 / 7),
            abs(fitted["tpr"][1] - 4 / 7),
            abs(fitted["fpr"][0] - 3 / 7),
            abs(fitted["prior"] - 7 / 12),
        )
    )


def test_label_model_objective_by_hand():
    # One unit voting [1, abstain] at tpr 0.8, fpr 0.3, prior 0.6, no smoothing: log(0.6*0.8 + 0.4*0.3);
    # smoothing 1 adds log of every rate, complement, prior and complement.
    from w2s.verifiers.label_model import log_objective

    votes = np.array([[1.0, np.nan]])
    assert log_objective(votes, [0.8, 0.5], [0.3, 0.5], 0.6, 0.0) == pytest.approx(np.log(0.6))
    penalty = np.log(0.8 * 0.2) + np.log(0.25) + np.log(0.3 * 0.7) + np.log(0.25) + np.log(0.6 * 0.4)
    assert log_objective(votes, [0.8, 0.5], [0.3, 0.5], 0.6, 1.0) == pytest.approx(np.log(0.6) + penalty)


def _slow_votes(seed: int, n: int = 1000) -> np.ndarray:
    """What merging leaves: one column that always votes and two labeling functions that mostly abstain.
    The likelihood is flat there, and plain EM needs some 800-1300 steps to settle."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.6

    def column(tpr: float, fpr: float, coverage: float) -> np.ndarray:
        v = np.where(y, rng.random(n) < tpr, rng.random(n) < fpr).astype(np.float64)
        v[rng.random(n) >= coverage] = np.nan
        return v

    return np.column_stack([column(0.8, 0.2, 1.0), column(0.9, 0.45, 0.5), column(0.6, 0.08, 0.07)])


@pytest.mark.parametrize("seed", [0, 2])
def test_label_model_converges_within_its_default_budget_to_the_plain_em_fixed_point(seed):
    from w2s.verifiers.label_model import fit_label_model

    votes = _slow_votes(seed)
    plain = fit_label_model(votes, max_iter=200, accelerate=False)
    assert not plain["converged"]  # the votes are as hard as the ones that exhausted 200 plain steps
    settled = fit_label_model(votes, max_iter=100_000, tol=1e-10, accelerate=False)
    fitted = fit_label_model(votes)  # defaults: 200 steps, tol 1e-6
    assert fitted["converged"] and fitted["n_iter"] < 100 and fitted["final_change"] < 1e-6
    for key in ("tpr", "fpr"):
        np.testing.assert_allclose(fitted[key], settled[key], atol=2e-4)
    assert fitted["prior"] == pytest.approx(settled["prior"], abs=2e-4)
    assert fitted["log_objective"] == pytest.approx(settled["log_objective"], abs=1e-5)


def test_label_model_acceleration_never_lowers_the_objective():
    # Each accelerated cycle is kept only if it scores at least the two plain EM steps it replaces; so at
    # any step budget the accelerated fit scores at least plain EM's.
    from w2s.verifiers.label_model import fit_label_model

    votes = _slow_votes(1)
    for budget in (5, 11, 23, 47):
        fast = fit_label_model(votes, max_iter=budget)
        plain = fit_label_model(votes, max_iter=budget, accelerate=False)
        assert fast["n_iter"] <= budget
        assert fast["log_objective"] >= plain["log_objective"] - 1e-9


def test_verifier_report_carries_the_label_model_convergence(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    gold = {split: rng.integers(0, 2, n) for split in ("transfer", "test")}
    probs = {
        t: {split: np.where((rng.random(n) < 0.8) == (y == 1), 0.8, 0.2) for split, y in gold.items()}
        for t in ("t0", "t1", "t2")
    }
    report, _ = evaluate_verifiers(_teacher_files(tmp_path, probs), [], {}, _gold_files(tmp_path, gold))
    for section in (report["label_model"], report["aggregators"]["label_model"]):
        assert section["converged"] is True and 1 < section["n_iter"] <= section["max_iter"] == 200
        assert 0 <= section["final_change"] < section["tol"] == 1e-6


def test_an_accelerated_cycle_falls_back_to_two_plain_steps_when_it_overshoots():
    # On these 200 units (four verifiers, each abstaining on a random share) the extrapolation of the
    # second cycle overshoots: the objective after it is 0.15 below that after two plain EM steps.
    from w2s.verifiers import label_model as lm

    rng = np.random.default_rng(92)
    y = rng.random(200) < 0.5
    columns = []
    for _ in range(4):
        tpr, fpr = rng.uniform(0.5, 0.95), rng.uniform(0.05, 0.5)
        v = np.where(y, rng.random(200) < tpr, rng.random(200) < fpr).astype(np.float64)
        v[rng.random(200) < rng.uniform(0, 0.9)] = np.nan
        columns.append(v)
    votes = np.column_stack(columns)

    def objective(t):
        return lm.log_objective(votes, t[:4], t[4:8], t[-1], 1.0)

    tpr, fpr, prior = lm.m_step(votes, lm.majority_vote(votes), 1.0)
    theta = np.concatenate([tpr, fpr, [prior]])
    for _ in range(4):
        first = lm._em_map(votes, theta, 1.0)
        two_plain = lm._em_map(votes, first, 1.0)
        theta, _ = lm._squarem_step(votes, theta, first, 1.0)
        assert objective(theta) >= objective(two_plain) - 1e-12


def test_the_report_gives_the_configured_aggregators_options_to_it_alone(tmp_path):
    from w2s.registry import AGGREGATOR_REGISTRY

    @AGGREGATOR_REGISTRY.register("scaled_mean", options=_ScaleOptions, uses_labels=False, averaging=True)
    class ScaledMean(AGGREGATOR_REGISTRY.get("mean")):
        def __init__(self, scale: float = 1.0):
            super().__init__()

    try:
        n = 8
        files = _teacher_files(tmp_path, {"t0": {"transfer": np.tile([0.9, 0.1], n // 2), "test": np.full(n, 0.9)}})
        gold = _gold_files(tmp_path, {"transfer": np.tile([1, 0], n // 2), "test": np.ones(n, np.int64)})
        report, _ = evaluate_verifiers(
            files, [], {"aggregator": "scaled_mean", "aggregator_options": {"scale": 2.0}}, gold
        )
        assert report["aggregators"]["first"]["test_accuracy"] == 1.0  # "first" ran without the scale option
        assert report["aggregators"]["scaled_mean"]["test_accuracy"] == 1.0
    finally:
        AGGREGATOR_REGISTRY.unregister("scaled_mean")


@dataclasses.dataclass(frozen=True)
class _ScaleOptions:
    scale: float = 1.0
