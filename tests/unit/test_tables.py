"""Stage tables and the summary page: probability columns built from float32 probabilities with the
one tie rule, the label and prediction tables' rows and schemas, and the headline tables' cells."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from w2s.tables import (
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    binary_hard_labels,
    binary_probs,
    hard_labels,
    headline_table,
    label_table,
    pgr_with_interval,
    prediction_table,
    probability_columns,
    soft_labels,
    summary_page,
)

NAN = float("nan")


def test_hard_labels_are_int64_argmax_with_ties_to_the_lowest_class():
    labels = hard_labels([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.4, 0.3, 0.3]])
    assert labels.tolist() == [0, 2, 1, 0] and labels.dtype == np.int64


def test_binary_probs_are_float32_complements():
    probs = binary_probs([0.25, 1.0, 0.0])
    assert probs.dtype == np.float32
    assert probs.tolist() == [[0.75, 0.25], [0.0, 1.0], [1.0, 0.0]]


def test_binary_hard_labels_break_ties_on_the_float32_scores():
    # 0.50000002 is 0.5 in float32, so it is a tie (class 0); 0.50000006 is the next float32 (class 1)
    assert binary_hard_labels(np.array([0.50000002, 0.50000006, 0.2, 0.9])).tolist() == [0, 1, 0, 1]


def test_probability_columns_hold_float32_probabilities_their_argmax_and_maximum():
    columns = probability_columns(np.array([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]]))
    assert columns["soft_label"].type == pa.list_(pa.float32())
    assert columns["hard_label"].type == pa.int64() and columns["confidence"].type == pa.float32()
    np.testing.assert_array_equal(
        np.array(columns["soft_label"].to_pylist()), np.float32([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]])
    )
    assert columns["hard_label"].to_pylist() == [2, 0]
    np.testing.assert_array_equal(columns["confidence"].to_numpy(), np.float32([0.5, 0.7]))


def test_probability_columns_label_what_the_stored_float32_row_says():
    # in float64 class 1 is larger; stored as float32 both are 0.5, a tie, so the label is class 0
    columns = probability_columns(np.array([[0.49999999, 0.50000001]]))
    assert columns["soft_label"].to_pylist() == [[0.5, 0.5]] and columns["hard_label"].to_pylist() == [0]


def test_prediction_table_rows_and_schema():
    table = prediction_table(("a", "b"), "test", np.array([[0.9, 0.1], [0.25, 0.75]]))
    assert table.schema == PREDICTION_SCHEMA
    assert table.to_pylist() == [
        {"id": "a", "split": "test", "soft_label": [pytest.approx(0.9), pytest.approx(0.1)], "hard_label": 0,
         "confidence": pytest.approx(0.9)},
        {"id": "b", "split": "test", "soft_label": [0.25, 0.75], "hard_label": 1, "confidence": 0.75},
    ]  # fmt: skip


def test_an_empty_prediction_table_keeps_its_schema():
    table = prediction_table([], "val", np.zeros((0, 3)))
    assert table.num_rows == 0 and table.schema == PREDICTION_SCHEMA


def test_label_table_keeps_the_rows_of_a_chunked_split_in_order():
    split = pa.Table.from_batches(
        [
            pa.record_batch({"id": pa.array(["x", "y"], pa.large_string()), "text": ["first", "second"]}),
            pa.record_batch({"id": pa.array(["z"], pa.large_string()), "text": ["third"]}),
        ]
    )
    table = label_table(split, np.array([[0.6, 0.4], [0.5, 0.5], [0.0, 1.0]]))
    assert table.schema == LABEL_SCHEMA
    rows = table.to_pylist()
    assert [(r["id"], r["text"], r["hard_label"]) for r in rows] == [
        ("x", "first", 0),
        ("y", "second", 0),
        ("z", "third", 1),
    ]
    assert [r["confidence"] for r in rows] == [pytest.approx(0.6), 0.5, 1.0]


def test_soft_labels_read_back_an_n_by_k_float32_array():
    probs = np.array([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]], dtype=np.float32)
    table = pa.concat_tables([prediction_table(["a"], "t", probs[:1]), prediction_table(["b"], "t", probs[1:])])
    got = soft_labels(table)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, probs)
    empty = soft_labels(prediction_table([], "t", np.zeros((0, 2))))
    assert empty.shape == (0, 0) and empty.dtype == np.float32


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0.5, 0.181, 0.754), "0.500 [0.181, 0.754]"),
        ((0.51234, 0.30149, 0.69951, False), "0.512 [0.301, 0.700]"),
        ((0.5, None, None), "0.500"),  # one seed: no interval
        ((0.5, NAN, NAN, False), "0.500"),
        ((0.5, NAN, NAN, NAN), "0.500"),  # an unknown unbounded flag is not an open interval
        ((0.5, None, None, True), "0.500 [-inf, inf]"),
        ((0.5, NAN, 0.8, True), "0.500 [-inf, 0.800]"),
        ((0.5, 0.2, None, True), "0.500 [0.200, inf]"),
        ((0.5, 0.2, NAN), "0.500 [0.200, inf]"),
        ((0.5, None, 0.8), "0.500 [-inf, 0.800]"),
        ((None, 0.2, 0.8), "undefined"),
        ((NAN, 0.2, 0.8, True), "undefined"),
        ((0.0, 0.0, 0.0), "0.000 [0.000, 0.000]"),
    ],
)
def test_pgr_with_interval(args, expected):
    assert pgr_with_interval(*args) == expected


def headers(html: str) -> list[str]:
    return [h.split("</th>")[0] for h in html.split("<th>")[1:]]


def cells(html: str) -> list[str]:
    return [c.split("</td>")[0] for c in html.split("<td>")[1:]]


GROUPS = (("acc", "pgr", "low", "high", "open", "PGR [interval]"), ("task", "seed"), ("ece", "note"))


def test_headline_table_puts_method_accuracy_and_pgr_first_and_formats_cells():
    frame = pd.DataFrame(
        {
            "note": ["n1", None],
            "ece": [0.12345, NAN],
            "seed": [1, 2],
            "high": [0.8, NAN],
            "low": [0.2, NAN],
            "pgr": [0.5, 0.25],
            "open": [False, True],
            "acc": [0.71234, 0.6],
            "task": ["t", "t"],
            "method": ["xent", "kl"],
            "ignored": [1.0, 2.0],
        }
    )
    html = headline_table(frame, GROUPS)
    assert html.startswith('<table class="dataframe">')  # no border attribute
    assert headers(html) == ["method", "acc", "PGR [interval]", "task", "seed", "ece", "note"]
    assert cells(html) == [
        "xent", "0.712", "0.500 [0.200, 0.800]", "t", "1", "0.123", "n1",
        "kl", "0.600", "0.250 [-inf, inf]", "t", "2", "undefined", "undefined",
    ]  # fmt: skip


def test_headline_table_of_a_filtered_frame_without_method_or_accuracy_keeps_rows_together():
    frame = pd.DataFrame({"pgr": [0.1, 0.9], "task": ["a", "b"], "ece": [0.3, 0.4]}, index=[3, 5])
    html = headline_table(frame, GROUPS)
    assert headers(html) == ["PGR [interval]", "task", "ece"]
    assert cells(html) == ["0.100", "a", "0.300", "0.900", "b", "0.400"]
    only_context = headline_table(pd.DataFrame({"task": ["a"], "seed": [0]}), GROUPS)
    assert headers(only_context) == ["task", "seed"] and cells(only_context) == ["a", "0"]


def test_summary_page_shows_the_over_seeds_table_then_the_per_experiment_table():
    summary = pd.DataFrame(
        {"method": ["xent"], "student_acc": [0.7], "pgr": [0.5], "pgr_ci_low": [0.2], "pgr_ci_high": [0.8]}
    )
    by_seed = pd.DataFrame({"method": ["kl"], "student_acc_mean": [0.65], "pgr_of_means": [math.pi / 10]})
    page = summary_page(summary, by_seed)
    assert page.startswith("<html><head><meta charset='utf-8'><style>body{font-family:sans-serif")
    assert page.endswith("</table></body></html>\n")
    head, rest = page.split("<h3>Over seeds</h3>")
    over_seeds, per_experiment = rest.split("<h3>Per experiment</h3>")
    assert "</style></head><body>" in head and "<table" not in head
    assert headers(over_seeds) == ["method", "student_acc_mean", "PGR of seed means [interval]"]
    assert cells(over_seeds) == ["kl", "0.650", "0.314"]
    assert headers(per_experiment) == ["method", "student_acc", "PGR [interval]"]
    assert cells(per_experiment) == ["xent", "0.700", "0.500 [0.200, 0.800]"]
