"""Why a student generalizes: label-free misfit, the gain beside it, correction versus expansion.

Misfit (Charikar, Pabbaraju and Shiragur 2024; Mulgund and Pabbaraju 2025) is how far the student's
predictions sit from its teacher's, measured without gold: hard disagreement, KL divergence in
both directions and the squared distance between probability vectors. Under their assumptions
(convex, well-specified, squared loss) the student's reduction in squared error over the teacher
is at least the squared-distance misfit; :func:`gain` gives that reduction (in Brier score) and the
accuracy gain, so the two can be set side by side.

Correction versus expansion (Lang, Sontag and Vijayaraghavan 2024) splits the student's accuracy by
where the teacher's supervision reached: covered items the teacher got right, covered items it got
wrong (correction) and items it did not cover (expansion). Coverage is given per item: a weak
source that abstains marks it; for a teacher that never abstains it is the confidence band the
method trains on.

Conventions as in :mod:`w2s.metrics`: ``probs`` are (n, k) class probabilities, ``labels`` gold
class indices; an undefined value (an empty subset) is ``None`` with its reason beside it.
"""

from __future__ import annotations

import numpy as np

from .metrics import brier_score

# Probabilities are floored here before a log: weak labels of exactly 0 (majority votes, hard
# aggregates) would make a KL divergence infinite. Float32 labels resolve about 1e-7.
PROB_FLOOR = 1e-7


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over items of KL(p_i || q_i) = sum_k p_ik log(p_ik / q_ik), both floored at PROB_FLOOR."""
    p = np.clip(np.asarray(p, dtype=np.float64), PROB_FLOOR, 1.0)
    q = np.clip(np.asarray(q, dtype=np.float64), PROB_FLOOR, 1.0)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def misfit(student: np.ndarray, weak: np.ndarray) -> dict[str, float]:
    """How far the student's probabilities are from the teacher's, without gold.

    ``disagreement``: share of items whose argmax differs (the student's error against the weak
    labels); ``kl_student_weak`` and ``kl_weak_student``: mean KL(student || weak) and
    KL(weak || student); ``sq_distance``: mean over items of sum_k (student_k - weak_k)^2.
    """
    student, weak = np.asarray(student, dtype=np.float64), np.asarray(weak, dtype=np.float64)
    if student.shape != weak.shape or student.ndim != 2 or len(student) == 0:
        raise ValueError(f"need two non-empty (n, k) arrays of one shape; got {student.shape} and {weak.shape}")
    return {
        "disagreement": float(np.mean(student.argmax(axis=1) != weak.argmax(axis=1))),
        "kl_student_weak": _kl(student, weak),
        "kl_weak_student": _kl(weak, student),
        "sq_distance": float(np.mean(np.sum((student - weak) ** 2, axis=1))),
    }


def gain(student: np.ndarray, weak: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The student's gain over its teacher on gold: accuracy difference, and the reduction in Brier
    score (teacher's minus student's: the squared loss the misfit bound is about)."""
    labels = np.asarray(labels)
    student_acc = float(np.mean(np.asarray(student).argmax(axis=1) == labels))
    weak_acc = float(np.mean(np.asarray(weak).argmax(axis=1) == labels))
    return {
        "acc_gain": student_acc - weak_acc,
        "brier_reduction": brier_score(weak, labels) - brier_score(student, labels),
    }


def _subset(correct: np.ndarray, mask: np.ndarray, empty_reason: str) -> dict:
    n = int(mask.sum())
    if n == 0:
        return {"acc": None, "n": 0, "note": empty_reason}
    return {"acc": float(correct[mask].mean()), "n": n, "note": "ok"}


def correction_expansion(
    student_hard: np.ndarray, weak_hard: np.ndarray, labels: np.ndarray, covered: np.ndarray
) -> dict[str, dict]:
    """The student's accuracy on three disjoint subsets, each with its count.

    ``covered_weak_right``: items the teacher covers and labels correctly; ``correction``: items it
    covers and labels wrongly (how often the student fixes its teacher); ``expansion``: items it
    does not cover. An empty subset has ``acc`` None and a note saying why.
    """
    student_hard, weak_hard, labels = (np.asarray(x) for x in (student_hard, weak_hard, labels))
    covered = np.asarray(covered, dtype=bool)
    if not (len(student_hard) == len(weak_hard) == len(labels) == len(covered)):
        raise ValueError("student, weak, labels and coverage must have one length")
    correct, weak_right = student_hard == labels, weak_hard == labels
    return {
        "covered_weak_right": _subset(correct, covered & weak_right, "no covered item the teacher got right"),
        "correction": _subset(correct, covered & ~weak_right, "no covered item the teacher got wrong"),
        "expansion": _subset(correct, ~covered, "the teacher covers every item"),
    }


def blind_spot_rate(
    student: np.ndarray,
    labels: np.ndarray,
    weak_confidence: np.ndarray,
    student_threshold: float,
    weak_threshold: float,
) -> float:
    """Share of items where the student is confidently wrong (its confidence > ``student_threshold``)
    while the teacher was unsure (its confidence <= ``weak_threshold``)."""
    student = np.asarray(student, dtype=np.float64)
    if len(student) == 0:
        raise ValueError("blind-spot rate of zero items")
    confident_wrong = (student.max(axis=1) > student_threshold) & (student.argmax(axis=1) != np.asarray(labels))
    teacher_unsure = np.asarray(weak_confidence, dtype=np.float64) <= weak_threshold
    return float(np.mean(confident_wrong & teacher_unsure))


def band_coverage(weak_confidence: np.ndarray, band: tuple[float, float] | None) -> np.ndarray:
    """Coverage of a teacher that never abstains: the items in the confidence band [low, high] a
    method trains on; every item without a band. :meth:`Method.select` picks its training rows with
    it too. Compared in float32, the precision weak labels are stored in, so a vote fraction such as
    0.7 at an edge is in the band whatever precision the caller passes."""
    confidence = np.asarray(weak_confidence, dtype=np.float32)
    if band is None:
        return np.ones(len(confidence), dtype=bool)
    low, high = np.float32(band[0]), np.float32(band[1])
    return (confidence >= low) & (confidence <= high)


def generalization_metrics(
    student: np.ndarray,
    weak: np.ndarray,
    labels: np.ndarray,
    split: str,
    covered: np.ndarray | None,
    coverage_source: str,
    weak_threshold: float,
    student_threshold: float,
) -> dict:
    """Flat metric columns of one student on one split: ``misfit_*_<split>``, ``acc_gain_<split>``,
    ``brier_reduction_<split>``, and on test (where ``covered`` is given) the correction/expansion
    subsets, where the coverage came from, and the blind-spot rate."""
    out = {f"misfit_{name}_{split}": value for name, value in misfit(student, weak).items()}
    out |= {f"{name}_{split}": value for name, value in gain(student, weak, labels).items()}
    if covered is None:
        return out
    subsets = correction_expansion(np.asarray(student).argmax(axis=1), np.asarray(weak).argmax(axis=1), labels, covered)
    for name, subset in subsets.items():
        out |= {f"student_acc_{name}": subset["acc"], f"n_{name}": subset["n"], f"{name}_note": subset["note"]}
    out["coverage_source"] = coverage_source
    out["blind_spot_rate"] = blind_spot_rate(
        student, labels, np.asarray(weak).max(axis=1), student_threshold, weak_threshold
    )
    out["blind_spot_student_threshold"] = student_threshold
    return out


def confidence_bands(methods: dict[str, dict]) -> dict[str, list[float] | None]:
    """Per method of ``strong.methods`` (defaults filled): the weak-confidence band it trains on,
    None where it keeps every label (the band [0, 1])."""
    bands = {}
    for name, spec in methods.items():
        low, high = float(spec.get("min_confidence", 0.0)), float(spec.get("max_confidence", 1.0))
        bands[name] = None if (low, high) == (0.0, 1.0) else [low, high]
    return bands
