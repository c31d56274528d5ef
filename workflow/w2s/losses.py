"""Student losses for weak-to-strong training.

Every loss has the same call signature,
``loss(logits, weak, progress, weights=None) -> scalar``, where ``weak`` holds the weak
teacher's class probabilities (n, k), ``progress`` is the fraction of training done (0..1,
used by losses that ramp an auxiliary term in) and ``weights`` optionally weights examples.

Each loss registers in :data:`w2s.registry.LOSS_REGISTRY` with its options dataclass (the
config's ``loss_options``); a plugin loss registers the same way. A loss whose constructor takes
``prior`` gets the class prior of the weak labels it trains on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Protocol

import numpy as np

from .lazy import LazyModule
from .registry import LOSS_REGISTRY, accepts

# Imported at the first loss computation: the config check registers the losses without torch.
torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")


class Loss(Protocol):
    def __call__(
        self, logits: torch.Tensor, weak: torch.Tensor, progress: float, weights: torch.Tensor | None = None
    ) -> torch.Tensor: ...


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """mean(weights * values). The weights are not renormalized per batch (at batch size 1 that would
    undo them): ``train_loop`` scales them to mean 1 over the whole training set."""
    if weights is None:
        return values.mean()
    return (values * weights).mean()


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example -sum_k target_k log softmax(logits)_k."""
    return -(target * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1)


def ramp(progress: float, weight: float, warmup_frac: float) -> float:
    """Auxiliary weight: linear from 0 to ``weight`` over the first ``warmup_frac`` of training, then flat."""
    if warmup_frac <= 0:
        return weight
    return weight * min(1.0, progress / warmup_frac)


def check_fraction(**values: float) -> None:
    """ValueError naming the first value outside [0, 1]."""
    for key, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{key}={value} must be in [0, 1]")


@dataclass(frozen=True)
class ProductOptions:
    alpha: float = 1.0  # exponent on the weak labels in weak^alpha * student

    def __post_init__(self):
        if self.alpha < 0:
            raise ValueError(f"alpha={self.alpha} must be >= 0")


@dataclass(frozen=True)
class AuxOptions:
    aux_weight: float = 0.5  # final weight a of the auxiliary term
    warmup_frac: float = 0.2  # fraction of training over which a ramps linearly from 0

    def __post_init__(self):
        check_fraction(aux_weight=self.aux_weight, warmup_frac=self.warmup_frac)


@dataclass(frozen=True)
class LogConfidenceOptions(AuxOptions):
    window: int = 32  # least number of recent predictions the hardening threshold is estimated from

    def __post_init__(self):
        super().__post_init__()
        if self.window < 1:
            raise ValueError(f"window={self.window} must be >= 1")


@LOSS_REGISTRY.register("xent")
class SoftCrossEntropy:
    """``xent``: cross-entropy against the weak soft labels (Burns et al. 2023 baseline)."""

    def __call__(self, logits, weak, progress=0.0, weights=None):
        return weighted_mean(cross_entropy(logits, weak), weights)


@LOSS_REGISTRY.register("xent_hard")
class HardCrossEntropy:
    """``xent_hard``: cross-entropy against the argmax of the weak labels."""

    def __call__(self, logits, weak, progress=0.0, weights=None):
        hard = F.one_hot(weak.argmax(dim=-1), weak.shape[-1]).float()
        return weighted_mean(cross_entropy(logits, hard), weights)


@LOSS_REGISTRY.register("kl")
class KLDivergence:
    """``kl``: KL(weak || student) = xent - H(weak); same gradient as xent, zero at a perfect fit."""

    def __call__(self, logits, weak, progress=0.0, weights=None):
        weak = weak.float()
        entropy = -(weak * torch.log(weak.clamp_min(1e-12))).sum(dim=-1)
        return weighted_mean(cross_entropy(logits, weak) - entropy, weights)


@LOSS_REGISTRY.register("product", options=ProductOptions)
class Product:
    """``product``: cross-entropy against weak^alpha * student (normalized, detached): a product of experts."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def __call__(self, logits, weak, progress=0.0, weights=None):
        log_target = self.alpha * torch.log(weak.float().clamp_min(1e-12)) + F.log_softmax(logits.float(), -1)
        target = torch.softmax(log_target, dim=-1).detach()
        return weighted_mean(cross_entropy(logits, target), weights)


@LOSS_REGISTRY.register("entropy", options=AuxOptions)
class Entropy:
    """``entropy``: (1 - a) * xent(weak) + a * H(student), a ramped in; minimizing entropy sharpens predictions."""

    def __init__(self, aux_weight: float = 0.5, warmup_frac: float = 0.2):
        self.aux_weight, self.warmup_frac = aux_weight, warmup_frac

    def __call__(self, logits, weak, progress=0.0, weights=None):
        a = ramp(progress, self.aux_weight, self.warmup_frac)
        log_p = F.log_softmax(logits.float(), dim=-1)
        student_entropy = -(log_p.exp() * log_p).sum(dim=-1)
        return weighted_mean((1 - a) * cross_entropy(logits, weak) + a * student_entropy, weights)


@LOSS_REGISTRY.register("logconf", options=LogConfidenceOptions)
class LogConfidence:
    """``logconf``: the auxiliary confidence loss of Burns et al. (2023).

    target = (1 - a) * weak + a * hardened(student), with a ramped linearly from 0 to
    ``aux_weight`` over ``warmup_frac`` of training. For two classes the student is hardened by a
    threshold at the quantile that makes the hardened labels match the weak labels' class prior
    ``prior`` (the whole transfer set's, when given); the threshold is estimated from at least
    ``window`` recent predictions, so batches of one example still get a meaningful threshold.
    With more than two classes the student is hardened by its argmax.
    """

    def __init__(
        self, aux_weight: float = 0.5, warmup_frac: float = 0.2, window: int = 32, prior: torch.Tensor | None = None
    ):
        self.aux_weight, self.warmup_frac, self.window = aux_weight, warmup_frac, window
        self.prior = prior
        self.recent = torch.empty(0)

    def threshold(self, positive_probs: torch.Tensor, positive_prior: float) -> torch.Tensor:
        """The (1 - prior) quantile of the positive-class probabilities of this batch and, when the
        batch is smaller than ``window``, of the most recent earlier ones."""
        pool = torch.cat([self.recent, positive_probs])[-max(self.window, len(positive_probs)) :]
        self.recent = pool[-self.window :]
        return torch.quantile(pool, 1.0 - positive_prior)

    def harden(self, logits: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.detach().float(), dim=-1)
        if probs.shape[-1] != 2:
            return F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).float()
        prior = self.prior if self.prior is not None else weak.float().mean(dim=0)
        positive = (probs[:, 1] > self.threshold(probs[:, 1].cpu(), float(prior[1])).to(probs.device)).long()
        return F.one_hot(positive, 2).float()

    def __call__(self, logits, weak, progress=0.0, weights=None):
        a = ramp(progress, self.aux_weight, self.warmup_frac)
        target = (1 - a) * weak.float() + a * self.harden(logits, weak)
        return weighted_mean(cross_entropy(logits, target), weights)


LOSSES: Mapping[str, type] = LOSS_REGISTRY.view()  # read-only name -> loss class, plugins included


def build_loss(name: str, options: Mapping | None = None, weak_targets: np.ndarray | None = None, **overrides) -> Loss:
    """A loss by name. ``options`` (a config mapping or the loss's options dataclass) and the keyword
    ``overrides`` are checked against the loss's options dataclass, except a non-option keyword the
    constructor takes (e.g. ``prior``), which goes to it as it is. A loss whose constructor takes
    ``prior`` gets the class prior of ``weak_targets`` when given."""
    entry = LOSS_REGISTRY.entry(name)
    given = asdict(options) if options is not None and not isinstance(options, Mapping) else dict(options or {})
    option_names = set(given) | ({f.name for f in fields(entry.options)} if entry.options else set())
    extra = {k: v for k, v in overrides.items() if k not in option_names and accepts(entry.obj, k)}
    given.update({k: v for k, v in overrides.items() if k not in extra})
    checked = LOSS_REGISTRY.options(name, given)
    kwargs = {**(asdict(checked) if checked is not None else {}), **extra}
    if weak_targets is not None and "prior" not in kwargs and accepts(entry.obj, "prior"):
        kwargs["prior"] = torch.as_tensor(weak_targets.mean(axis=0), dtype=torch.float32)
    return CheckedLoss(name, entry.obj(**kwargs))


class LossError(ValueError):
    """A loss returned something other than a finite scalar."""


class CheckedLoss:
    """A loss whose every value is checked: a finite scalar tensor, else a LossError naming the loss
    (a plugin loss returning per-example values or NaN fails the job before anything is written).
    The value itself is passed through unchanged; other attributes are the wrapped loss's."""

    def __init__(self, name: str, loss: Loss):
        self.name, self.loss = name, loss

    def __getattr__(self, attribute: str):
        return getattr(self.__dict__["loss"], attribute)

    def __call__(self, logits, weak, progress=0.0, weights=None):
        value = self.loss(logits, weak, progress, weights)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise LossError(
                f"loss {self.name!r} returned {shape}; it must return a scalar tensor "
                f"(the mean over the batch) for logits of shape {tuple(logits.shape)}"
            )
        if not torch.isfinite(value.detach()).item():
            raise LossError(f"loss {self.name!r} returned {value.item()} (not finite)")
        return value
