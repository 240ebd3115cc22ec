"""Checking what a user says they know, and turning it into likelihood vectors."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from model.errors import EvidenceError

EvidenceInput = Mapping[str, Any]


def is_unknown(value: Any) -> bool:
    """True for the values that mean "not answered": None, "", NaN."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, float) and math.isnan(value)


def check_node(node: str, variables: Mapping[str, list[str]]) -> None:
    if node not in variables:
        raise EvidenceError(
            f"unknown node {node!r}; valid nodes are: {', '.join(variables)}"
        )


def check_state(node: str, state: Any, variables: Mapping[str, list[str]]) -> str:
    check_node(node, variables)
    if not isinstance(state, str) or state not in variables[node]:
        raise EvidenceError(
            f"unknown state {state!r} for node {node!r}; valid states are: "
            f"{', '.join(variables[node])}"
        )
    return state


def normalise(
    evidence: EvidenceInput | None, variables: Mapping[str, list[str]]
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Split evidence into hard findings and soft likelihoods, validating every entry.

    Hard evidence is ``node -> state``; soft (likelihood) evidence is ``node -> {state:
    weight}`` with non-negative weights (states left out weigh 0). Unknown values are dropped.
    """
    hard: dict[str, str] = {}
    soft: dict[str, np.ndarray] = {}
    if evidence is not None and not isinstance(evidence, Mapping):
        raise EvidenceError(
            f"evidence must be a mapping of node to state, not {type(evidence).__name__}"
        )
    for node, value in (evidence or {}).items():
        check_node(node, variables)
        if isinstance(value, Mapping):
            states = variables[node]
            for s in value:
                check_state(node, s, variables)
            try:
                vec = np.array([float(value.get(s, 0.0)) for s in states])
            except (TypeError, ValueError):
                raise EvidenceError(f"soft evidence for {node!r} needs numeric weights") from None
            if not np.all(np.isfinite(vec)) or np.any(vec < 0) or vec.sum() <= 0:
                raise EvidenceError(
                    f"soft evidence for {node!r} needs non-negative weights, not all zero"
                )
            if np.count_nonzero(vec) == 1:  # all weight on one state: that is a finding
                hard[node] = states[int(np.flatnonzero(vec)[0])]
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
