"""Small generic computations behind the therapist pages (Calibrate, Cases, case capture).

The pages only draw widgets and call these functions; nothing here imports Streamlit, and
nothing here changes a :class:`~calibration.schema.Calibration` or a :class:`Model` in place
(both are read-only: every edit builds a new calibration).

Editing numbers
---------------
:func:`number_groups` lists the numbers a therapist sets for one node, grouped by the
distribution they belong to:

* ``noisy_or`` — one group per parent state listed in the file (the probability that the node
  is present when only that parent is in that state, leak included) plus the ``leak`` group;
  each group holds ONE number, the probability of the node's last state.
* ``noisy_max`` — the same groups, each a distribution over the node's states.
* ``table`` — one group per column (parent configuration; ``""`` for a root), a distribution.

In a distribution every state but the first gets its own number; the first state takes the
rest (``1 - sum``), so the numbers a therapist sets are exactly the numbers saved. A rest
below zero is not hidden: :func:`validate` then reports it like any other problem.
:func:`edit_node` writes numbers (keyed by :attr:`Slot.key`), a confidence and a rationale
into a new calibration.

The rest
--------
* :func:`validate` — write a calibration out and read it back with the file validator, exactly
  as the store will read it (every problem at once, nothing raised);
* :func:`scenario_preview` / :func:`scenario_sensitivity` — the reference lifters' cause
  posteriors before → after, and the table entries they depend on most;
* :func:`number_changes` / :func:`diff_rows` — two versions compared number by number;
* :func:`case_table`, :func:`refit_preview`, :func:`metrics_table`, :func:`reliability_table`
  — stored cases, and a refit from them previewed with held-out metrics before saving.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from calibration.diff import diff_calibrations
from calibration.loader import DEFAULT_PATH, CalibrationError, parse_calibration
from calibration.schema import Calibration, NodeSpec
from calibration.store import Case, NewCase
from calibration.writer import to_toml
from model.evaluate import Comparison, cross_validate
from model.evidence import EvidenceError
from model.inference.engine import ImpossibleEvidenceError
from model.learn import DirichletRefit, EMRefit, MovedParameter, case_frame, moved_parameters
from model.network_model import Model

__all__ = [
    "METRICS",
    "NumberChange",
    "NumberGroup",
    "RefitPreview",
    "ScenarioChange",
    "SensitiveParameter",
    "Slot",
    "Validation",
    "case_table",
    "changed_nodes",
    "diff_rows",
    "edit_node",
    "has_missing",
    "metrics_table",
    "number_changes",
    "number_groups",
    "refit_preview",
    "reliability_table",
    "scenario_preview",
    "scenario_sensitivity",
    "shipped_default_text",
    "validate",
]

LEAK = "leak"
_DECIMALS = 12
_SAME = 1e-9


# ---------------------------------------------------------------------------------------------
# the numbers of one node
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One number a therapist sets: P(node = ``state``) within group ``group``."""

    group: str
    state: str
    value: float

    @property
    def key(self) -> str:
        """Unique within the node: ``"<group>|<state>"``."""
        return f"{self.group}|{self.state}"


@dataclass(frozen=True)
class NumberGroup:
    """One distribution of a node (or, for noisy-OR, its one free number).

    ``group`` is ``"leak"``, ``"<parent>=<state>"`` (canonical models) or a table column key.
    ``rest_state`` is the state that takes ``1 - sum(slots)``; ``rest`` is that value.
    ``note`` is the per-number note from the file (``notes`` keyed like ``group``).
    """

    group: str
    parent: str | None
    parent_state: str | None
    column: tuple[str, ...] | None
    slots: tuple[Slot, ...]
    rest_state: str
    note: str = ""

    @property
    def rest(self) -> float:
        return round(1.0 - sum(s.value for s in self.slots), _DECIMALS)


def _distribution_group(
    node: NodeSpec, group: str, dist: Sequence[float], **where: Any
) -> NumberGroup:
    slots = tuple(
        Slot(group, state, float(p)) for state, p in zip(node.states[1:], dist[1:], strict=False)
    )
    return NumberGroup(group=group, slots=slots, rest_state=node.states[0],
                       note=str(node.notes.get(group, "")), **where)


def number_groups(cal: Calibration, name: str, column: str | None = None) -> list[NumberGroup]:
    """The numbers of node ``name`` as groups (see the module docstring).

    For a ``table`` node ``column`` picks one column key (all columns when ``None``); it is
    ignored for canonical models, whose groups are the leak and every listed parent state.
    """
    node = cal.nodes[name]
    if node.cpt == "table":
        keys = [",".join(c) for c in cal.columns(name)]
        if column is not None:
            if column not in keys:
                raise KeyError(f"node {name!r} has no column {column!r}")
            keys = [column]
        return [
            _distribution_group(node, key, node.params[key], parent=None, parent_state=None,
                                column=tuple(key.split(",")) if key else ())
            for key in keys
        ]
    groups: list[NumberGroup] = []
    listed = [(LEAK, None, None, node.leak)]
    for parent in node.parents:
        by_state = node.params.get(parent, {})
        for state in cal.nodes[parent].states:
            if state in by_state:
                listed.append((f"{parent}={state}", parent, state, by_state[state]))
    for group, parent, state, value in listed:
        if node.cpt == "noisy_or":
            groups.append(NumberGroup(
                group=group, parent=parent, parent_state=state, column=None,
                slots=(Slot(group, node.states[-1], float(value)),),
                rest_state=node.states[0], note=str(node.notes.get(group, "")),
            ))
        else:
            groups.append(_distribution_group(node, group, value, parent=parent,
                                              parent_state=state, column=None))
    return groups


def _with_rest(values: Sequence[float]) -> list[float]:
    return [round(1.0 - math.fsum(values), _DECIMALS), *(float(v) for v in values)]


def edit_node(
    cal: Calibration,
    name: str,
    values: Mapping[str, float] | None = None,
    *,
    confidence: float | None = None,
    rationale: str | None = None,
) -> Calibration:
    """A new calibration in which node ``name`` has the given numbers and settings.

    ``values`` maps :attr:`Slot.key` to a probability in [0, 1]; groups not mentioned keep
    their numbers, and within a mentioned group, slots not mentioned keep theirs. The first
    state of each distribution takes the rest. A value within 1e-9 of the current number
    counts as unchanged (a group with no change keeps its numbers exactly). Unknown keys
    raise ``KeyError``. Nothing is validated here: use :func:`validate` on the result.
    """
    node = cal.nodes[name]
    values = dict(values or {})
    groups = {g.group: g for g in number_groups(cal, name)}
    unknown = sorted(k for k in values if k.partition("|")[0] not in groups
                     or k not in {s.key for s in groups[k.partition("|")[0]].slots})
    if unknown:
        raise KeyError(f"node {name!r} has no number(s) {', '.join(unknown)}")
    params: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v)
                              for k, v in node.params.items()}
    leak = node.leak
    for group in groups.values():
        if not any(s.key in values and abs(float(values[s.key]) - s.value) > _SAME
                   for s in group.slots):
            continue
        free = [float(values.get(s.key, s.value)) for s in group.slots]
        if node.cpt == "noisy_or":
            new: Any = free[0]
        else:
            new = _with_rest(free)
        if group.group == LEAK:
            leak = new
        elif node.cpt == "table":
            params[group.group] = new
        else:
            params[group.parent] = {**params[group.parent], group.parent_state: new}
    changes: dict[str, Any] = {"params": params, "leak": leak}
    if confidence is not None:
        changes["confidence"] = float(confidence)
    if rationale is not None:
        changes["rationale"] = rationale
    return cal.with_node(replace(node, **changes))


# ---------------------------------------------------------------------------------------------
# validation and comparison
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """A calibration written out and read back: the validated result or every problem."""

    text: str
    calibration: Calibration | None
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.calibration is not None


def validate(cal: Calibration, source: str = "the draft") -> Validation:
    """Write ``cal`` as TOML and read it back with the file validator (every problem at once).

    Companion files (red flags, fixes, checks, scenarios) are found next to ``cal.path`` or in
    the shipped data folder, exactly as when the saved text is loaded again.
    """
    text = to_toml(cal)
    base_dir = cal.path.parent if cal.path is not None else None
    try:
        checked = parse_calibration(text, base_dir=base_dir, source=source)
    except CalibrationError as exc:
        return Validation(text, None, tuple(exc.problems), ())
    return Validation(text, checked, (), checked.warnings)


def changed_nodes(before: Calibration, after: Calibration) -> list[str]:
    """Nodes whose numbers, confidence, rationale or form differ, in network order."""
    out = []
    for name, node in after.nodes.items():
        old = before.nodes.get(name)
        if old is None or (old.params, old.leak, old.confidence, old.rationale, old.cpt) != (
            node.params, node.leak, node.confidence, node.rationale, node.cpt
        ):
            out.append(name)
    return out


def shipped_default_text() -> str:
    """The shipped default calibration file's text (version 1 of a new store)."""
    return DEFAULT_PATH.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# previews
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioChange:
    """P(cause present | a reference scenario) before and after (NaN when impossible)."""

    scenario: str
    label: str
    cause: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


def _cause_posteriors(m: Model, evidence: Mapping[str, str]) -> dict[str, float]:
    try:
        post = m.posterior(dict(evidence))
    except (EvidenceError, ImpossibleEvidenceError):
        return {c: math.nan for c in m.causes}
    return {c: post[c][m.variables[c][m.present_index(c)]] for c in m.causes}


def scenario_preview(before: Model, after: Model) -> list[ScenarioChange]:
    """Every reference scenario's cause posteriors under ``before`` and ``after``.

    Scenarios come from ``after``'s calibration; causes are ``after``'s cause nodes.
    """
    rows = []
    for sc in after.calibration.scenarios:
        a = _cause_posteriors(before, sc.evidence)
        b = _cause_posteriors(after, sc.evidence)
        for cause in after.causes:
            rows.append(ScenarioChange(sc.id, sc.label, cause, a.get(cause, math.nan), b[cause]))
    return rows


@dataclass(frozen=True)
class SensitiveParameter:
    """A table entry P(node = state | column) and the largest swing it causes in a scenario.

    ``swing`` is how far P(cause present | scenario) moves when the entry is shifted by
    ±delta (the rest of its column rescaled); ``scenario`` and ``cause`` are where it
    moves most.
    """

    node: str
    column: str
    state: str
    value: float
    swing: float
    scenario: str
    cause: str


def scenario_sensitivity(m: Model, top: int = 10, delta: float = 0.05) -> list[SensitiveParameter]:
    """The parameters the reference scenarios' cause posteriors depend on most.

    Uses :meth:`Model.sensitivity` for every scenario and cause; for two-state nodes the
    mirror entry of the same column (which swings exactly as much) is left out.
    """
    best: dict[tuple[str, str, str], SensitiveParameter] = {}
    for sc in m.calibration.scenarios:
        for cause in m.causes:
            target = f"{cause}={m.variables[cause][m.present_index(cause)]}"
            try:
                items = m.sensitivity(target, dict(sc.evidence), delta=delta, top=None)
            except (EvidenceError, ImpossibleEvidenceError):
                continue
            for it in items:
                if m.cards[it.node] == 2 and it.state == m.variables[it.node][0]:
                    continue
                if not math.isfinite(it.swing):
                    continue
                key = (it.node, it.column, it.state)
                if key not in best or it.swing > best[key].swing:
                    best[key] = SensitiveParameter(it.node, it.column, it.state, it.value,
                                                   it.swing, sc.id, cause)
    return sorted(best.values(), key=lambda p: -p.swing)[:top]


# ---------------------------------------------------------------------------------------------
# cases and refits
# ---------------------------------------------------------------------------------------------


def case_table(cases: Iterable[Case], cal: Calibration) -> pd.DataFrame:
    """Stored cases as a frame: id, therapist, date, answers, adjudicated causes, outcome."""
    rows = []
    for c in cases:
        row: dict[str, Any] = {"case": c.id, "therapist": c.therapist,
                               "recorded": c.created_at.strftime("%Y-%m-%d %H:%M")}
        row.update({n: c.evidence.get(n, "") for n in cal.nodes if cal.nodes[n].observable})
        row.update({f"cause:{k}": c.adjudicated.get(k, "") for k in cal.causes})
        row["outcome"] = c.outcome or ""
        rows.append(row)
    columns = ["case", "therapist", "recorded",
               *(n for n in cal.nodes if cal.nodes[n].observable),
               *(f"cause:{k}" for k in cal.causes), "outcome"]
    return pd.DataFrame(rows, columns=columns)


def has_missing(cases: Iterable[Case | NewCase] | pd.DataFrame, cal: Calibration) -> bool:
    """True when any case leaves any node unknown (so counting alone cannot use it fully)."""
    frame = case_frame(cases, cal)
    return bool(frame[list(cal.nodes)].isna().to_numpy().any())


METRICS: dict[str, str] = {
    "log_loss": "Log loss (lower is better)",
    "brier": "Brier score (lower is better)",
    "brier_skill": "Brier skill vs base rate (higher is better)",
    "calibration_slope": "Calibration slope (1 is ideal)",
    "calibration_intercept": "Calibration intercept (0 is ideal)",
}


@dataclass(frozen=True)
class RefitPreview:
    """What a refit from cases would change, before anything is saved.

    ``method`` is ``"em"`` or ``"dirichlet"``; ``iterations``/``converged``/``history`` are
    EM's (Dirichlet counting: 1 / True / empty). ``comparison`` is the k-fold held-out
    comparison, or ``None`` with the reason in ``cv_problem``.
    """

    method: str
    calibration: Calibration
    n_cases: int
    iterations: int
    converged: bool
    history: tuple[float, ...]
    moved: tuple[MovedParameter, ...]
    comparison: Comparison | None
    cv_problem: str | None


def refit_preview(
    base: Calibration,
    cases: Sequence[Case | NewCase] | pd.DataFrame,
    method: str = "auto",
    *,
    n_splits: int = 5,
    seed: int = 0,
    top: int = 10,
) -> RefitPreview:
    """Refit ``base`` from ``cases`` and compare it with ``base`` on held-out folds.

    ``method``: ``"auto"`` (EM when any value is missing, Dirichlet counting otherwise),
    ``"em"`` or ``"dirichlet"`` (the names the command line uses). ``moved`` lists the
    ``top`` table entries that moved most (for two-state nodes only the second state: the
    first is its mirror image). Raises ``ValueError`` for an unknown method or when there are
    no cases.
    """
    frame = case_frame(cases, base)
    if len(frame) == 0:
        raise ValueError("there are no cases to refit from")
    if method == "auto":
        method = "em" if has_missing(frame, base) else "dirichlet"
    if method == "em":
        estimator: EMRefit | DirichletRefit = EMRefit(base)
    elif method == "dirichlet":
        estimator = DirichletRefit(base)
    else:
        raise ValueError(f"unknown refit method {method!r} (allowed: auto, em, dirichlet)")
    fitted = type(estimator)(**estimator.get_params()).fit(frame)
    comparison: Comparison | None = None
    problem: str | None = None
    try:
        comparison = cross_validate(frame, estimator, n_splits=n_splits, seed=seed)
    except ValueError as exc:
        problem = str(exc)
    return RefitPreview(
        method=method,
        calibration=fitted.calibration_,
        n_cases=len(frame),
        iterations=int(getattr(fitted, "n_iter_", 1)),
        converged=bool(getattr(fitted, "converged_", True)),
        history=tuple(getattr(fitted, "history_", ())),
        moved=tuple([m for m in moved_parameters(base, fitted.calibration_, top=None)
                     if not _mirror(base, m.node, m.state)][:top]),
        comparison=comparison,
        cv_problem=problem,
    )


def _mirror(cal: Calibration, node: str, state: str) -> bool:
    """True for the first state of a two-state node: the mirror image of the second."""
    spec = cal.nodes[node]
    return spec.card == 2 and state == spec.states[0]


def metrics_table(comparison: Comparison) -> pd.DataFrame:
    """Held-out metrics per cause, before vs after, for :data:`METRICS` only."""
    table = comparison.table()
    table = table[table["metric"].isin(list(METRICS))].copy()
    table["metric"] = table["metric"].map(METRICS)
    return table[["cause", "metric", "before", "after", "better"]].reset_index(drop=True)


def reliability_table(comparison: Comparison) -> pd.DataFrame:
    """Reliability-curve points: cause, version (before/after), predicted, observed, count."""
    rows = []
    for version, ev in (("before", comparison.before), ("after", comparison.after)):
        for cause, metrics in ev.metrics.items():
            for pt in metrics.reliability:
                rows.append({"cause": cause, "version": version,
                             "predicted": pt.mean_predicted, "observed": pt.observed,
                             "count": pt.count})
    return pd.DataFrame(rows, columns=["cause", "version", "predicted", "observed", "count"])


@dataclass(frozen=True)
class NumberChange:
    """One number as a therapist sets it (see :func:`number_groups`), in versions a and b."""

    node: str
    group: str
    state: str
    a: float
    b: float

    @property
    def change(self) -> float:
        return self.b - self.a


def number_changes(a: Calibration, b: Calibration) -> tuple[list[NumberChange], list[str]]:
    """The numbers as set that differ (largest change first), for nodes of the same form.

    Returns the changes and the nodes whose form differs (parameterisation, parents or
    states), for which only :func:`diff_rows`' table entries can be compared.
    """
    changes: list[NumberChange] = []
    other_form: list[str] = []
    for name, na in a.nodes.items():
        nb = b.nodes.get(name)
        if nb is None:
            continue
        if (na.cpt, na.parents, na.states) != (nb.cpt, nb.parents, nb.states) or any(
            a.nodes[p].states != b.nodes[p].states for p in na.parents
        ):
            other_form.append(name)
            continue
        ga = {s.key: s for g in number_groups(a, name) for s in g.slots}
        gb = {s.key: s for g in number_groups(b, name) for s in g.slots}
        if set(ga) != set(gb):
            other_form.append(name)
            continue
        for key, sa in ga.items():
            vb = gb[key].value
            if abs(vb - sa.value) > _SAME:
                changes.append(NumberChange(name, sa.group, sa.state, sa.value, vb))
    changes.sort(key=lambda c: -abs(c.change))
    return changes, other_form


def diff_rows(a: Calibration, b: Calibration) -> tuple[pd.DataFrame, list[str]]:
    """Parameter-by-parameter differences (largest first) and other differences as text.

    For two-state nodes only the second state is listed (the first is its mirror image).
    """
    d = diff_calibrations(a, b)
    frame = pd.DataFrame(
        [{"node": c.node, "column": c.column, "state": c.state, "a": c.a, "b": c.b,
          "change": c.delta} for c in d.largest(None)
         if not _mirror(a, c.node, c.state)],
        columns=["node", "column", "state", "a", "b", "change"],
    )
    other = [str(c) for c in (*d.structure, *d.settings)]
    return frame, other
