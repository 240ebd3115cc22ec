"""Frozen result types returned by :class:`model.Model` — plain data, no model logic."""

from __future__ import annotations

from dataclasses import dataclass, field

Posterior = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Triage:
    """Outcome of the fixed red-flag rules, applied before (and regardless of) the network.

    ``level`` is ``"none"``, ``"amber"`` or ``"red"``; ``reasons`` are plain-language lines,
    one per rule that fired; ``message`` says what to do: at level none it is empty, unless
    warning signs are ``unanswered`` — then it says that estimates are withheld until every
    sign is answered (``Model.diagnose(..., flags={sign: True or False})``).
    """

    level: str
    reasons: tuple[str, ...] = ()
    fired: tuple[str, ...] = ()
    message: str = ""
    unanswered: tuple[str, ...] = ()

    @property
    def blocks_results(self) -> bool:
        """True when cause percentages must not be shown (a red flag fired)."""
        return self.level == "red"

    @property
    def screened(self) -> bool:
        """True when every warning-sign question was answered (yes or no)."""
        return not self.unanswered

    @property
    def withhold_estimates(self) -> bool:
        """True when a user interface must not show cause estimates: a red flag fired, or
        the warning signs were not all answered and nothing has fired yet."""
        return self.blocks_results or (not self.screened and self.level == "none")


@dataclass(frozen=True)
class Interval:
    """A central credible interval of a probability under parameter uncertainty."""

    low: float
    high: float
    level: float = 0.9


@dataclass(frozen=True)
class Forecast:
    """The chance of soreness at the next session if nothing changes, with its interval.

    ``now`` is this session's chance given the answers (1.0 when soreness was reported).
    """

    now: float
    next: float
    interval: Interval | None = None


@dataclass(frozen=True)
class Fix:
    """A change the lifter can make, with its modelled effect on next-session soreness.

    ``effect`` is the drop in the chance of soreness at the next session; ``minor`` is true
    when it is below the calibration's threshold (shown, but labelled minor).
    """

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
    minor: bool = False
    after_interval: Interval | None = None
    effect_interval: Interval | None = None


@dataclass(frozen=True)
class Advice:
    """Advice that goes with the picture (expected soreness, get assessed, …)."""

    id: str
    title: str
    text: str
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
class Diagnosis:
    """Everything ``Model.diagnose`` works out for one evidence set.

    When ``triage.level == "red"`` — or the warning signs were not all answered — the
    analyses are still computed for auditing, but a user interface must not show cause
    percentages (see ``Triage.withhold_estimates``). Fixes are given only when soreness was
    reported and no warning sign fired; ``advice`` says what goes with the picture.
    """

    evidence: dict[str, str]
    triage: Triage
    causes: dict[str, float]
    prior_causes: dict[str, float]
    cause_intervals: dict[str, Interval]
    posterior: Posterior
    fixes: tuple[Fix, ...]
    forecast: Forecast | None
    advice: tuple[Advice, ...]
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
