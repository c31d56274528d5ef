"""Verifier scoring: combine several weak verifiers into one score per item, without gold labels.

A *verifier* scores the claim "this item is positive" (binary classification) or "this candidate
is correct": a weak teacher's positive-class probability, a labeling function, a reasoning check.
Scores travel in a long table, one row per (item, candidate, verifier) (:mod:`.scores`); the unit
that gets one aggregated score is the (item_id, candidate_id) pair.

Pipeline (every step a setting, :data:`DEFAULT_SETTINGS`), fitted on the ``fit`` items and applied
unchanged to every item (:mod:`.model`):

1. normalize (``none``, ``minmax``, ``quantile``) each verifier's raw scores to [0, 1];
2. binarize them into votes (``threshold`` or ``class_balance``) (:mod:`.normalize`);
3. drop degenerate verifiers (constant votes, positive-vote rate outside a band), reason recorded;
4. label model (:mod:`.label_model`): merge verifiers that agree more than conditional independence
   allows, then Dawid-Skene EM on the merged columns;
5. aggregate (:mod:`.aggregators`): ``first``, ``majority``, ``mean``, ``label_model`` and the
   label-using references ``best_single`` and ``logistic`` (``uses_labels=True`` in the model).

This package reads no files and imports nothing heavy; the weak-source stage (:mod:`w2s.weak_sources`)
does the file handling and the gold-reading report.
"""

from .aggregators import accuracy_over_all, first_available, majority_vote, mean_score, vote_accuracy
from .label_model import dependent_pairs, fit_label_model, label_model_posterior, merge_dependent
from .model import apply, fit
from .normalize import apply_normalizer, binarize, class_balance_threshold, estimate_positive_rate, fit_normalizer
from .scores import ITEM_CANDIDATE, SCORE_COLUMNS, check_scores, scores_from_labeling_functions, scores_from_soft_labels
from .settings import AGGREGATORS, BINARIZERS, DEFAULT_SETTINGS, LABEL_USING_AGGREGATORS, NORMALIZERS, resolve_settings
from .table import aggregate_weak_labels, label_model_summary, verifier_table

__all__ = [
    "AGGREGATORS",
    "BINARIZERS",
    "DEFAULT_SETTINGS",
    "ITEM_CANDIDATE",
    "LABEL_USING_AGGREGATORS",
    "NORMALIZERS",
    "SCORE_COLUMNS",
    "accuracy_over_all",
    "aggregate_weak_labels",
    "apply",
    "apply_normalizer",
    "binarize",
    "check_scores",
    "class_balance_threshold",
    "dependent_pairs",
    "estimate_positive_rate",
    "first_available",
    "fit",
    "fit_label_model",
    "fit_normalizer",
    "label_model_posterior",
    "label_model_summary",
    "majority_vote",
    "mean_score",
    "merge_dependent",
    "resolve_settings",
    "scores_from_labeling_functions",
    "scores_from_soft_labels",
    "verifier_table",
    "vote_accuracy",
]
