"""Frozen result types returned by :class:`model.Model` — plain data, no model logic."""

from __future__ import annotations

from dataclasses import dataclass, field

Posterior = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Triage:
    """Outcome of the fixed red-flag rules, applied before (and regardless of) the network.

    ``level`` is ``"none"``, ``"amber"`` or ``"red"``; ``reasons`` are plain-language lines,
    one per rule that fired; ``message`` says what to do (empty when level is none).
    """

    level: str
    reasons: tuple[str, ...] = ()
    fired: tuple[str, ...] = ()
    message: str = ""

    @property
    def blocks_results(self) -> bool:
        """True when cause percentages must not be shown (a red flag fired)."""
        return self.level == "red"


@dataclass(frozen=True)
class Fix:
    """A change the lifter can make, with its modelled effect on next-session soreness."""

    target: str
    good_state: str
    title: str
    effect: float
    outcome_before: float
    outcome_after: float
    cues: tuple[str, ...] = ()
    drills: tuple[str, ...] = ()
    advice: str = ""
    source: str = ""


@dataclass(frozen=True)
class Question:
    """An unanswered observable node and how much answering it is expected to tell."""

    node: str
    gain: float
    likely_answer: str
    answer_probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Contribution:
    """How one finding moved one cause: the change in log-odds when the finding is withheld.

    Positive ``log_odds`` means the finding pushed the cause up. ``path`` lists the nodes the
    influence travels along, from the finding to the cause.
    """

    node: str
    state: str
    log_odds: float
    without: float
    path: tuple[str, ...] = ()
    shapley: float | None = None


@dataclass(frozen=True)
class Interval:
    """A central credible interval of a probability under parameter uncertainty."""

    low: float
    high: float
    level: float = 0.9


@dataclass(frozen=True)
class Diagnosis:
    """Everything ``Model.diagnose`` works out for one evidence set.

    When ``triage.level == "red"`` the analyses are still computed for auditing, but a user
    interface must not show cause percentages (see ``Triage.blocks_results``).
    """

    evidence: dict[str, str]
    triage: Triage
    causes: dict[str, float]
    prior_causes: dict[str, float]
    cause_intervals: dict[str, Interval]
    posterior: Posterior
    fixes: tuple[Fix, ...]
    next_questions: tuple[Question, ...]
    explanation: dict[str, tuple[Contribution, ...]]
    most_probable_explanation: dict[str, str]
    mpe_probability: float
    best_guess: str


@dataclass(frozen=True)
class SensitivityItem:
    """One calibration parameter and how far a ± shift of it moves a chosen posterior."""

    node: str
    column: str
    state: str
    value: float
    low: float
    high: float

    @property
    def swing(self) -> float:
        return abs(self.high - self.low)
