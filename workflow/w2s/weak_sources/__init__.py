"""The weak-source stage: weak labels besides a single teacher's.

- :mod:`.ensembles`: ensembles of teachers, and labels degraded to a target accuracy;
- :mod:`.aggregate`: aggregated weak verifiers (teachers + labeling functions, :mod:`w2s.verifiers`);
- :mod:`.report`: the verifier report, which reads gold (evaluation only).

All write the weak-label schema of the labeling stage (:data:`w2s.tables.LABEL_SCHEMA`) with
provenance, so students and evaluation use them like any teacher's labels.
"""

from .aggregate import aggregate_label_files, scores_for_splits, weak_label_table
from .ensembles import COMBINE_RULES, combine, combine_weak_labels, degrade, degrade_weak_labels, read_weak_labels
from .report import evaluate_verifiers

__all__ = [
    "COMBINE_RULES",
    "aggregate_label_files",
    "combine",
    "combine_weak_labels",
    "degrade",
    "degrade_weak_labels",
    "evaluate_verifiers",
    "read_weak_labels",
    "scores_for_splits",
    "weak_label_table",
]
