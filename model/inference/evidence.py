"""Checking what a user says they know, and turning it into likelihood vectors.

Every bad piece of evidence is an :class:`~model.errors.EvidenceError` that names the node
(and row and column for a batch) and what is allowed; user text in a message is cut short
(:func:`~model.errors.quote`). ``None``, ``""``, NaN (of any float type), ``pd.NA`` and
``pd.NaT`` all mean "not answered" (:func:`is_unknown`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.limits import SOFT_EVIDENCE_FLOOR
from model.errors import EvidenceError, UsageError, quote

if TYPE_CHECKING:
    import pandas as pd

EvidenceInput = Mapping[str, Any]
#: Most nodes listed when a message says which nodes are valid.
_LISTED = 40


def is_unknown(value: Any) -> bool:
    """True for the values that mean "not answered": None, "", NaN, ``pd.NA``, ``pd.NaT``.

    pandas is not imported for this (the query path must stay light): its missing-value
    singletons are recognised by type name.
    """
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            return math.isnan(value)
        except (TypeError, ValueError, OverflowError):
            return False
    return type(value).__name__ in ("NAType", "NaTType")


def _listing(names: Any) -> str:
    names = list(names)
    shown = ", ".join(names[:_LISTED])
    return shown + (f", … ({len(names)} in all)" if len(names) > _LISTED else "")


def check_node(node: Any, variables: Mapping[str, list[str]]) -> None:
    """Refuse a node name that is not in the network (the message lists the valid ones)."""
    if not isinstance(node, Hashable) or node not in variables:
        raise EvidenceError(
            f"unknown node {quote(node)}; valid nodes are: {_listing(variables)}"
        )


def check_state(node: Any, state: Any, variables: Mapping[str, list[str]]) -> str:
    """``state`` when it is a state of ``node``; otherwise an :class:`EvidenceError`."""
    check_node(node, variables)
    if not isinstance(state, str) or state not in variables[node]:
        raise EvidenceError(
            f"unknown state {quote(state)} for node {quote(node)}; valid states are: "
            f"{_listing(variables[node])}"
        )
    return state


def check_mapping(evidence: Any, error: type[EvidenceError] = EvidenceError) -> None:
    """Refuse evidence that is neither ``None`` nor a mapping of node to value (a list or a
    string of node names says nothing about their states)."""
    if evidence is not None and not isinstance(evidence, Mapping):
        raise error(
            f"evidence must be a mapping of node to state (a dict), not "
            f"{type(evidence).__name__} {quote(evidence, 40)}"
        )


def weight(node: Any, state: Any, w: Any, error: type[EvidenceError] = EvidenceError) -> float:
    """One likelihood weight as a float: a real number (not a bool), finite and >= 0.

    Refused with ``error``: text, None, a bool, NaN, a negative number, and an integer too
    large for a float (``10**400``), each naming the node and state.
    """
    if isinstance(w, bool | np.bool_) or not isinstance(w, numbers.Real):
        raise error(
            f"soft evidence for {quote(node)} needs numeric weights: the weight of "
            f"{quote(state)} is {quote(w)}"
        )
    try:
        value = float(w)
    except (OverflowError, ValueError, TypeError):
        value = math.inf
    if not math.isfinite(value) or value < 0:
        raise error(
            f"soft evidence for {quote(node)}: the weight of {quote(state)} is {quote(w, 40)}; "
            "weights must be finite numbers >= 0"
        )
    return value


def soft_vector(node: str, value: Mapping[Any, Any], states: list[str]) -> np.ndarray:
    """Likelihood weights ``{state: weight}`` as a vector scaled so its largest weight is 1.

    States left out weigh 0. Refused with an :class:`EvidenceError`: an unknown state, a
    weight that is not a finite number >= 0, all weights zero, and a non-zero weight smaller
    than :data:`~calibration.limits.SOFT_EVIDENCE_FLOOR` times the largest (write 0 for a
    state that is ruled out). Scaling by the largest weight keeps tiny but valid weights such
    as ``{no: 1e-300, yes: 2e-300}`` from underflowing: they mean the same as ``{no: 1, yes: 2}``.
    """
    variables = {node: states}
    for s in value:
        check_state(node, s, variables)
    vec = np.array([weight(node, s, value.get(s, 0.0)) for s in states], dtype=float)
    top = float(vec.max())
    if top <= 0:
        raise EvidenceError(f"soft evidence for {node!r}: the weights are all zero")
    if top < np.finfo(float).tiny:
        raise EvidenceError(
            f"soft evidence for {node!r}: the largest weight {top:g} is too small to compute "
            "with; scale the weights up (only their ratios matter)"
        )
    vec = vec / top
    tiny = (vec > 0) & (vec < SOFT_EVIDENCE_FLOOR)
    if tiny.any():
        s = states[int(np.flatnonzero(tiny)[0])]
        raise EvidenceError(
            f"soft evidence for {node!r}: the weight of {s!r} is less than "
            f"{SOFT_EVIDENCE_FLOOR:g} times the largest weight; write 0 if that state is ruled "
            "out"
        )
    return vec


def normalise(
    evidence: EvidenceInput | None, variables: Mapping[str, list[str]]
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Split evidence into hard findings and soft likelihoods, validating every entry.

    Hard evidence is ``node -> state``; soft (likelihood) evidence is ``node -> {state:
    weight}`` with non-negative weights (states left out weigh 0). Unknown values are dropped.
    """
    hard: dict[str, str] = {}
    soft: dict[str, np.ndarray] = {}
    check_mapping(evidence)
    for node, value in (evidence or {}).items():
        check_node(node, variables)
        if isinstance(value, Mapping):
            vec = soft_vector(node, value, variables[node])
            if np.count_nonzero(vec) == 1:  # all weight on one state: that is a finding
                hard[node] = variables[node][int(np.flatnonzero(vec)[0])]
            else:
                soft[node] = vec
        elif not is_unknown(value):
            hard[node] = check_state(node, value, variables)
    return hard, soft


def likelihoods(
    hard: Mapping[str, str], soft: Mapping[str, np.ndarray], variables: Mapping[str, list[str]]
) -> dict[str, np.ndarray]:
    """One likelihood vector per observed node (one-hot for hard evidence)."""
    out = {n: np.asarray(v, dtype=float) for n, v in soft.items()}
    for node, state in hard.items():
        vec = np.zeros(len(variables[node]))
        vec[variables[node].index(state)] = 1.0
        out[node] = vec
    return out


def check_batch_frame(df: Any, variables: Mapping[str, list[str]]) -> pd.DataFrame:
    """Check a :meth:`Model.posterior_batch` argument before any scoring; return the frame.

    Refused, each with an error naming the column (and the row for a cell): something that
    is not a DataFrame, a column named twice, a column that is not a node, and a cell that
    is neither a state name (text) nor unknown (None, NaN, ``pd.NA``, "") — e.g. a dict or
    a list. Text columns are checked with pandas' vectorised type inference, so the usual
    case costs one pass in C per column.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise UsageError(
            f"posterior_batch(df): df must be a pandas DataFrame with one column per node, "
            f"not {type(df).__name__}"
        )
    columns = list(df.columns)
    if not df.columns.is_unique:
        twice = [c for c in dict.fromkeys(columns) if columns.count(c) > 1]
        raise EvidenceError(
            f"column {quote(twice[0])} appears {columns.count(twice[0])} times; give each "
            "node one column"
        )
    for j, col in enumerate(columns):
        if not isinstance(col, str) or col not in variables:
            raise EvidenceError(
                f"unknown column {quote(col)}; columns must be nodes: {_listing(variables)}"
            )
        values = df.iloc[:, j]
        if values.dtype != object:
            continue  # numbers, booleans, strings: the state comparison reports them
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind in ("string", "empty"):
            continue
        for position, cell in enumerate(values.array):
            if not isinstance(cell, str) and not is_unknown(cell):
                raise EvidenceError(
                    f"row {position}, column {col!r}: {type(cell).__name__} {quote(cell, 40)} "
                    f"is not a state; write one of: {_listing(variables[col])} (or leave it "
                    "empty for unknown)"
                )
    return df
