"""A weak-to-strong method: which loss the student minimizes and which weak labels it sees.

Each entry of ``strong.methods`` in the config becomes one :class:`Method`, and each method is
one axis value of the experiment grid. The loss is a name in :data:`w2s.registry.LOSS_REGISTRY`
with its options (``loss_options``); the weak labels are those whose confidence lies in the band
``[min_confidence, max_confidence]``, then a selection rule of
:data:`w2s.registry.SELECTION_REGISTRY` (``weighting``, with ``weighting_options``) may drop more
and weight the rest.

A selection rule is built from its options (the dataclass's fields as keywords) and called as ``rule(weak_targets) -> (positions,
weights)``: the positions (into the rows it was given) to train on and their weights, or None for
equal weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .generalization import band_coverage
from .losses import Loss, build_loss
from .plugins import provenance
from .registry import LOSS_REGISTRY, SELECTION_REGISTRY
from .schema import defaults_from_schema
from .settings import from_config


@SELECTION_REGISTRY.register("none")
class AllEqual:
    """Every example of the band, equally weighted."""

    def __call__(self, weak_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return np.arange(len(weak_targets)), None


@SELECTION_REGISTRY.register("confidence")
class ConfidenceWeighting:
    """Every example, weighted by (confidence - 1/k) / (1 - 1/k): 0 at chance, 1 when certain."""

    def __call__(self, weak_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        chance = 1.0 / weak_targets.shape[1]
        weights = ((weak_targets.max(axis=1) - chance) / (1.0 - chance)).astype(np.float32)
        if not weights.sum() > 0:
            raise ValueError("weighting 'confidence': every selected weak label is at chance confidence")
        return np.arange(len(weak_targets)), weights  # train_loop scales them to mean 1 over the training set


@dataclass(frozen=True)
class ConfidentAgreementOptions:
    min_student_confidence: float = 0.8  # the first student's confidence at or above which an item is kept

    def __post_init__(self):
        if not 0.0 <= self.min_student_confidence <= 1.0:
            raise ValueError(f"min_student_confidence={self.min_student_confidence} must be in [0, 1]")


@SELECTION_REGISTRY.register("confident_agreement", options=ConfidentAgreementOptions, needs_student=True)
class ConfidentAgreement:
    """Confident self-retraining: a first student trains on every weak label of the band; the final
    student then trains only on the items where that first student is confident (its top probability
    at least ``min_student_confidence``) and agrees with the teacher's argmax. Label-free: items where
    the teacher's label is probably wrong, or that the student cannot yet fit, are left out, so a
    spurious shortcut in the teacher's errors is not learned a second time."""

    def __init__(self, min_student_confidence: float = 0.8):
        self.min_student_confidence = min_student_confidence

    def __call__(self, weak_targets: np.ndarray, student: np.ndarray | None = None) -> tuple[np.ndarray, None]:
        if student is None:
            raise ValueError("selection rule 'confident_agreement' needs the first student's predictions")
        agree = student.argmax(axis=1) == weak_targets.argmax(axis=1)
        return np.flatnonzero(agree & (student.max(axis=1) >= self.min_student_confidence)), None


@dataclass(frozen=True)
@defaults_from_schema("$defs.method")
class Method:
    """One entry of ``strong.methods``; defaults are the schema's (``$defs.method``). Building it checks
    the loss and selection names and their options against the registries (load plugins first)."""

    loss: str
    loss_options: dict = field(default_factory=dict)
    min_confidence: float
    max_confidence: float
    weighting: str
    weighting_options: dict = field(default_factory=dict)
    relabel_rounds: int

    def __post_init__(self):
        LOSS_REGISTRY.options(self.loss, self.loss_options)
        SELECTION_REGISTRY.options(self.weighting, self.weighting_options)

    @classmethod
    def from_config(cls, config: dict | None) -> Method:
        return from_config(cls, config, "method")

    def extensions(self) -> list[dict]:
        """Provenance of the loss and the selection rule: names, sources, plugin identities."""
        return [provenance(LOSS_REGISTRY.entry(self.loss)), provenance(SELECTION_REGISTRY.entry(self.weighting))]

    def build_loss(self, weak_targets: np.ndarray) -> Loss:
        """The loss object; a loss that takes ``prior`` gets the class prior of its (selected) weak labels."""
        return build_loss(self.loss, self.loss_options, weak_targets=weak_targets)

    def resolved(self) -> dict:
        """The method as a config entry with every option its loss and selection rule take, defaults
        filled: two spellings of one method (options omitted or given at their defaults) are equal."""
        loss = LOSS_REGISTRY.options(self.loss, self.loss_options)
        rule = SELECTION_REGISTRY.options(self.weighting, self.weighting_options)
        return {
            **asdict(self),
            "loss_options": asdict(loss) if loss is not None else {},
            "weighting_options": asdict(rule) if rule is not None else {},
        }

    def needs_student(self) -> bool:
        """Whether the selection rule chooses from a first student's predictions (a first student
        then trains on the band, and :meth:`select` gets its transfer predictions)."""
        return bool(SELECTION_REGISTRY.entry(self.weighting).meta.get("needs_student", False))

    def select(
        self, weak_targets: np.ndarray, student: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Indices of the examples to train on (weak confidence inside the band, then the selection
        rule, given ``student``, a first student's probabilities on the same rows, when it needs
        them) and their weights (None: equal)."""
        # the evaluation's coverage (band_coverage) decides the same rows, at the same precision
        keep = np.flatnonzero(band_coverage(weak_targets.max(axis=1), (self.min_confidence, self.max_confidence)))
        if len(keep) == 0:
            raise ValueError(f"no weak label has confidence in [{self.min_confidence}, {self.max_confidence}]")
        options = SELECTION_REGISTRY.options(self.weighting, self.weighting_options)
        rule = SELECTION_REGISTRY.get(self.weighting)(**(asdict(options) if options is not None else {}))
        if self.needs_student():
            positions, weights = rule(weak_targets[keep], student=None if student is None else student[keep])
        else:
            positions, weights = rule(weak_targets[keep])
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) == 0:
            raise ValueError(f"selection rule {self.weighting!r} kept no weak label")
        if weights is not None and len(weights) != len(positions):
            raise ValueError(
                f"selection rule {self.weighting!r} gave {len(weights)} weights for {len(positions)} examples"
            )
        return keep[positions], None if weights is None else np.asarray(weights, dtype=np.float32)
