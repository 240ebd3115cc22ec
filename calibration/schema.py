"""The in-memory form of a calibration: frozen dataclasses, generic over any discrete network."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from calibration.canonical import noisy_max_table, noisy_or_table

ROLES = ("context", "technique", "latent", "cause", "symptom")
OBSERVABLE_ROLES = ("context", "technique", "symptom")
PARAMETERIZATIONS = ("table", "noisy_or", "noisy_max")


def column_key(states: tuple[str, ...]) -> str:
    """The TOML key of one table column: the parents' states joined by commas."""
    return ",".join(states)


@dataclass(frozen=True)
class NodeSpec:
    """One node: its vocabulary, wording and parameters.

    ``params`` holds the parameterisation-specific numbers exactly as written in the file:
    for ``table`` a mapping column key -> distribution (roots: key ``""``); for
    ``noisy_or`` parent -> {state: p}; for ``noisy_max`` parent -> {state: distribution}.

    ``confidence`` is the equivalent sample size of every column; ``column_confidence``
    overrides it for single columns (see :meth:`confidence_of`), e.g. after a refit, where
    each column is worth the prior's confidence plus the cases behind it.
    """

    name: str
    states: tuple[str, ...]
    parents: tuple[str, ...] = ()
    role: str = "latent"
    label: str = ""
    question: str = ""
    help: str = ""
    state_labels: Mapping[str, str] = field(default_factory=dict)
    ordinal: bool = False
    cpt: str = "table"
    params: Mapping[str, Any] = field(default_factory=dict)
    leak: Any = None
    confidence: float = 10.0
    rationale: str = ""
    source: str = ""
    notes: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    column_confidence: Mapping[str, float] = field(default_factory=dict)

    @property
    def card(self) -> int:
        return len(self.states)

    @property
    def observable(self) -> bool:
        return self.role in OBSERVABLE_ROLES

    def state_label(self, state: str) -> str:
        return self.state_labels.get(state, state.replace("_", " "))

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    def confidence_of(self, key: str) -> float:
        """Equivalent sample size of one column: a table column key (``""`` for a root), or
        for a canonical model ``"leak"`` / ``"<parent>=<state>"``."""
        return float(self.column_confidence.get(key, self.confidence))


#: Levels of a warning sign, weakest first: ``context`` never fires alone (it is asked for
#: rules that combine answers), ``amber`` routes to an assessment, ``red`` to a clinician now.
FLAG_LEVELS = ("context", "amber", "red")
#: Levels a rule can fire at.
RULE_LEVELS = ("amber", "red")


@dataclass(frozen=True)
class RedFlag:
    """One warning-sign question of the screen, answered yes or no outside the network."""

    id: str
    level: str
    question: str
    help: str = ""
    message: str = ""
    source: str = ""


@dataclass(frozen=True)
class EvidenceRule:
    """A red or amber rule: it fires when every warning sign in ``flags`` is answered yes and
    every ``when`` item holds (a node answered with one of the listed states)."""

    id: str
    level: str
    when: Mapping[str, tuple[str, ...]]
    reason: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FixSpec:
    target: str
    good_state: str
    title: str
    cues: tuple[str, ...] = ()
    drills: tuple[str, ...] = ()
    advice: str = ""
    source: str = ""


@dataclass(frozen=True)
class FixPolicy:
    """When fixes are shown: an effect below ``min_effect`` (a drop in the chance of soreness
    at the next session) is labelled minor."""

    min_effect: float = 0.05
    rationale: str = ""


@dataclass(frozen=True)
class AdviceSpec:
    """Advice shown with (or instead of) fixes when its conditions hold.

    ``triage`` is the triage level it belongs to; ``outcome`` is ``present``, ``absent``,
    ``unanswered`` or ``any`` (the outcome node as answered). With ``cause`` set, the cause's
    posterior must be at least ``min_probability`` (and the most likely cause when ``top``),
    and every cause in ``max_other`` at most its number.
    """

    id: str
    title: str
    text: str
    source: str = ""
    triage: str = "none"
    outcome: str = "present"
    cause: str | None = None
    min_probability: float = 0.0
    top: bool = False
    max_other: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Carryover:
    """How one node carries over into the next session (the forecast behind every fix).

    For a root, ``table[state_now]`` is the distribution of its next-session state (a node
    without an entry carries over unchanged). For a two-state node, ``protection`` scales
    down the chance it is present next time when it is present now (the repeated-bout
    effect) and ``persistence`` is the chance a present state simply carries on.
    """

    node: str
    table: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    protection: float = 0.0
    persistence: float = 0.0
    rationale: str = ""
    source: str = ""


@dataclass(frozen=True)
class DecisionCheck:
    """A property of the advice every calibration must keep, for one evidence set.

    ``max_forecast``: the next-session chance of soreness without any change stays below it;
    ``below_now``: and below this session's chance for the same answers without the
    soreness answer; ``not_top_fix`` / ``top_fix``: the best fix's target; ``no_fixes``.
    """

    id: str
    description: str
    evidence: Mapping[str, str]
    max_forecast: float | None = None
    below_now: bool = False
    not_top_fix: str | None = None
    top_fix: str | None = None
    no_fixes: bool = False


@dataclass(frozen=True)
class CheckItem:
    target: tuple[str, str]
    evidence: Mapping[str, str]


@dataclass(frozen=True)
class BehaviourCheck:
    """An ordering of posteriors that every calibration of this domain must respect."""

    id: str
    description: str
    items: tuple[CheckItem, ...]
    margin: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A named reference lifter used to preview what a recalibration changes."""

    id: str
    label: str
    evidence: Mapping[str, str]


@dataclass(frozen=True)
class Messages:
    red: str = "A warning sign you reported needs a clinician's assessment before anything else."
    amber: str = "Get assessed before your next heavy session."
    disclaimer: str = (
        "Decision support, not a diagnosis. It does not replace an assessment by a clinician."
    )
    unanswered: str = (
        "The warning-sign questions have not all been answered, so no estimates are shown yet."
    )


@dataclass(frozen=True)
class Calibration:
    """A whole calibrated network plus its domain companions (red flags, fixes, checks)."""

    nodes: Mapping[str, NodeSpec]
    name: str = ""
    version: str = ""
    description: str = ""
    outcome: str | None = None
    outcome_absent: str | None = None
    companions: tuple[str, ...] = ()
    red_flags: tuple[RedFlag, ...] = ()
    evidence_rules: tuple[EvidenceRule, ...] = ()
    fixes: Mapping[str, FixSpec] = field(default_factory=dict)
    checks: tuple[BehaviourCheck, ...] = ()
    scenarios: tuple[Scenario, ...] = ()
    messages: Messages = field(default_factory=Messages)
    next_session: Mapping[str, Carryover] = field(default_factory=dict)
    fix_policy: FixPolicy = field(default_factory=FixPolicy)
    advice: tuple[AdviceSpec, ...] = ()
    decision_checks: tuple[DecisionCheck, ...] = ()
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def variables(self) -> dict[str, list[str]]:
        return {name: list(n.states) for name, n in self.nodes.items()}

    @property
    def causes(self) -> list[str]:
        return [name for name, n in self.nodes.items() if n.role == "cause"]

    def cpt(self, name: str) -> np.ndarray:
        """The full table of ``name`` in columns layout: shape ``(*parent_cards, card)``."""
        node = self.nodes[name]
        parent_states = [self.nodes[p].states for p in node.parents]
        if node.cpt == "table":
            shape = (*(len(s) for s in parent_states), node.card)
            table = np.empty(shape)
            for combo in itertools.product(*parent_states):
                idx = tuple(s.index(v) for s, v in zip(parent_states, combo, strict=True))
                table[idx] = node.params[column_key(combo)]
            return table
        by_index = {node.parents.index(p): v for p, v in node.params.items()}
        if node.cpt == "noisy_or":
            return noisy_or_table(parent_states, by_index, float(node.leak))
        return noisy_max_table(parent_states, node.card, by_index, node.leak)

    def cpts(self) -> dict[str, np.ndarray]:
        return {name: self.cpt(name) for name in self.nodes}

    def columns(self, name: str) -> list[tuple[str, ...]]:
        """Parent configurations of ``name`` in table order (last parent fastest)."""
        node = self.nodes[name]
        return list(itertools.product(*(self.nodes[p].states for p in node.parents)))

    def column_confidences(self, name: str) -> np.ndarray:
        """Each column's confidence (equivalent sample size), shape = the parents' state
        counts, in table order.

        A table's columns have their own (:meth:`NodeSpec.confidence_of`). A canonical
        model's column is a function of the leak and of one parameter per parent not in its
        first state, so it is taken to be as well known as the least known of those.
        """
        node = self.nodes[name]
        shape = tuple(len(self.nodes[p].states) for p in node.parents)
        if not node.column_confidence:
            return np.full(shape, float(node.confidence))
        if node.cpt == "table":
            values = [node.confidence_of(column_key(c)) for c in self.columns(name)]
        else:
            values = [
                min(node.confidence_of(k) for k in ("leak", *(
                    f"{p}={s}" for p, s in zip(node.parents, combo, strict=True)
                    if s in node.params.get(p, {}))))
                for combo in self.columns(name)
            ]
        return np.asarray(values, dtype=float).reshape(shape)

    def with_table(self, name: str, table: np.ndarray, **changes: Any) -> Calibration:
        """A copy in which ``name`` is given as a full table (columns layout).

        Per-column confidences survive only when the node already was a table (a canonical
        model's keys name its parameters, not columns).
        """
        node = self.nodes[name]
        arr = np.asarray(table, dtype=float).reshape(-1, node.card)
        params = {
            column_key(combo): [float(x) for x in arr[i]]
            for i, combo in enumerate(self.columns(name))
        }
        if node.cpt != "table":
            changes.setdefault("column_confidence", {})
        new_node = replace(node, cpt="table", params=params, leak=None, **changes)
        return self.with_node(new_node)

    def with_node(self, node: NodeSpec) -> Calibration:
        nodes = dict(self.nodes)
        nodes[node.name] = node
        return replace(self, nodes=nodes)
