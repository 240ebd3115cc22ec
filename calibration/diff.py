"""Parameter-by-parameter comparison of two calibrations of (nearly) the same network.

:func:`diff_calibrations` compares every probability of every node that both calibrations
share, after expanding canonical models (noisy-OR / noisy-MAX) into full tables, so a node
written as ``noisy_or`` in one version and as a ``table`` in the other is compared number by
number. Differences that make numbers incomparable are reported as structure instead:

* a node present in only one calibration (``field = "node"``);
* different state sets, or different parent sets (``"states"`` / ``"parents"``) — that
  node's parameters are then not compared;
* a parent whose states differ (``"columns"``) — the child's columns cannot be matched, so
  its parameters are not compared either;
* the same states or parents in another order (``"state_order"`` / ``"parent_order"``) —
  reported, but the numbers are still compared, matched by state name.

Settings that change no number (``"cpt"`` parameterisation, ``"confidence"``,
``"column_confidence"`` (per-column confidences, e.g. after a refit), and the
``"rationale"`` or ``"source"`` text) are listed separately. Column keys and state names in
the result follow the first calibration ``a``. For a two-state node only the second state is
listed: the first is its mirror image.

This module is pure calibration code: it imports nothing from ``model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration.schema import Calibration, column_key

__all__ = [
    "CalibrationDiff",
    "NodeChange",
    "ParameterChange",
    "aligned_table",
    "diff_calibrations",
]

#: Fields of :class:`NodeChange` that mean the network itself differs.
STRUCTURAL_FIELDS = ("node", "states", "parents", "columns", "state_order", "parent_order")


@dataclass(frozen=True)
class ParameterChange:
    """One probability that differs: P(``node`` = ``state`` | parents = ``column``).

    ``column`` is the TOML column key (parents' states joined by commas; ``""`` for a root).
    """

    node: str
    column: str
    state: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        """``b - a``."""
        return self.b - self.a

    def __str__(self) -> str:
        where = f"[{self.column}]" if self.column else ""
        return f"{self.node}{where} {self.state}: {self.a:.4f} -> {self.b:.4f} ({self.delta:+.4f})"


@dataclass(frozen=True)
class NodeChange:
    """A difference that is not a single number: structure or a node setting.

    ``a`` and ``b`` describe the two sides in words (``"absent"`` for a missing node).
    """

    node: str
    field: str
    a: str
    b: str

    @property
    def structural(self) -> bool:
        """True when the network differs (nodes, states, parents), not just a setting."""
        return self.field in STRUCTURAL_FIELDS

    def __str__(self) -> str:
        return f"{self.node}: {self.field} {self.a} -> {self.b}"


@dataclass(frozen=True)
class CalibrationDiff:
    """Everything that differs between calibrations ``a`` and ``b``.

    ``parameters`` are in network order (node, column, state); ``compared`` names the nodes
    whose numbers were compared (shared nodes whose structure allows it).
    """

    parameters: tuple[ParameterChange, ...]
    structure: tuple[NodeChange, ...]
    settings: tuple[NodeChange, ...]
    compared: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """No parameter, structure or setting differs."""
        return not (self.parameters or self.structure or self.settings)

    @property
    def structural(self) -> bool:
        """True when the two networks differ in nodes, states or parents."""
        return bool(self.structure)

    def largest(self, top: int | None = 10) -> list[ParameterChange]:
        """The parameters that moved most (largest ``|delta|`` first; ties in network order)."""
        ranked = sorted(self.parameters, key=lambda c: -abs(c.delta))
        return ranked if top is None else ranked[:top]

    def rows(self) -> list[dict[str, Any]]:
        """Parameter changes as plain records (e.g. for ``pandas.DataFrame(diff.rows())``)."""
        return [
            {"node": c.node, "column": c.column, "state": c.state, "a": c.a, "b": c.b,
             "delta": c.delta}
            for c in self.parameters
        ]

    def __str__(self) -> str:
        lines: list[str] = []
        if self.structure:
            lines.append("Structural differences:")
            lines += [f"  {c}" for c in self.structure]
        if self.settings:
            lines.append("Settings:")
            lines += [f"  {c}" for c in self.settings]
        if self.parameters:
            lines.append(f"Parameters ({len(self.parameters)} differ):")
            lines += [f"  {c}" for c in self.parameters]
        return "\n".join(lines) if lines else "No differences."


def _states_text(states: Sequence[str]) -> str:
    return "[" + ", ".join(states) + "]"


def aligned_table(a: Calibration, b: Calibration, name: str) -> np.ndarray:
    """``b``'s table of ``name`` re-indexed to ``a``'s parent order and state orders.

    Requires the same state *sets* for the node and each parent, and the same parent *set*;
    raises :class:`ValueError` otherwise.
    """
    na, nb = a.nodes[name], b.nodes[name]
    if set(na.parents) != set(nb.parents):
        raise ValueError(f"node {name!r}: parents differ ({na.parents} vs {nb.parents})")
    for v in (name, *na.parents):
        if set(a.nodes[v].states) != set(b.nodes[v].states):
            raise ValueError(f"node {v!r}: states differ, so {name!r} cannot be aligned")
    return _aligned(a, b, b.cpt(name), (*nb.parents, name), (*na.parents, name))


def aligned_column_confidences(a: Calibration, b: Calibration, name: str) -> np.ndarray:
    """``b``'s :meth:`~Calibration.column_confidences` of ``name`` in ``a``'s column order
    (same requirements as :func:`aligned_table`)."""
    aligned_table(a, b, name)  # the same checks
    na, nb = a.nodes[name], b.nodes[name]
    return _aligned(a, b, b.column_confidences(name), nb.parents, na.parents)


def _aligned(a: Calibration, b: Calibration, array: np.ndarray, b_axes: Sequence[str],
             a_axes: Sequence[str]) -> np.ndarray:
    """``array`` (one axis per name of ``b_axes``, in ``b``'s state orders) re-indexed to the
    axis order ``a_axes`` and ``a``'s state orders."""
    array = np.transpose(array, [list(b_axes).index(v) for v in a_axes])
    for axis, v in enumerate(a_axes):
        index = [b.nodes[v].states.index(s) for s in a.nodes[v].states]
        array = np.take(array, index, axis=axis)
    return array


def _confidence_text(per_column: Mapping[str, float]) -> str:
    """One line for a node's per-column confidences: how many, and their range."""
    if not per_column:
        return "none (the node's confidence for every column)"
    values = list(per_column.values())
    return f"{len(values)} column(s), {min(values):,.4g} to {max(values):,.4g}"


def _node_structure(a: Calibration, b: Calibration, name: str) -> tuple[list[NodeChange], bool]:
    """Structural notes for a shared node, and whether its numbers can be compared."""
    na, nb = a.nodes[name], b.nodes[name]
    notes: list[NodeChange] = []
    comparable = True
    if na.states != nb.states:
        field = "state_order" if set(na.states) == set(nb.states) else "states"
        notes.append(NodeChange(name, field, _states_text(na.states), _states_text(nb.states)))
        comparable = comparable and field == "state_order"
    if na.parents != nb.parents:
        field = "parent_order" if set(na.parents) == set(nb.parents) else "parents"
        notes.append(NodeChange(name, field, _states_text(na.parents), _states_text(nb.parents)))
        comparable = comparable and field == "parent_order"
    if comparable:
        changed = [p for p in na.parents if set(a.nodes[p].states) != set(b.nodes[p].states)]
        if changed:
            notes.append(
                NodeChange(
                    name,
                    "columns",
                    "parameters not compared",
                    f"states of parent(s) {', '.join(changed)} differ",
                )
            )
            comparable = False
    return notes, comparable


def diff_calibrations(a: Calibration, b: Calibration, *, atol: float = 1e-12) -> CalibrationDiff:
    """Compare ``b`` against ``a``: every probability whose difference exceeds ``atol``.

    Canonical models are expanded first, so the comparison is of the tables actually used for
    inference. See the module docstring for how structural differences are reported.
    """
    parameters: list[ParameterChange] = []
    structure: list[NodeChange] = []
    settings: list[NodeChange] = []
    compared: list[str] = []
    for name in a.nodes:
        if name not in b.nodes:
            structure.append(NodeChange(name, "node", "present", "absent"))
    for name in b.nodes:
        if name not in a.nodes:
            structure.append(NodeChange(name, "node", "absent", "present"))
    for name, na in a.nodes.items():
        if name not in b.nodes:
            continue
        nb = b.nodes[name]
        notes, comparable = _node_structure(a, b, name)
        structure += notes
        if na.cpt != nb.cpt:
            settings.append(NodeChange(name, "cpt", na.cpt, nb.cpt))
        if na.confidence != nb.confidence:
            settings.append(NodeChange(name, "confidence", f"{na.confidence:g}",
                                       f"{nb.confidence:g}"))
        if na.column_confidence != nb.column_confidence:
            settings.append(NodeChange(name, "column_confidence",
                                       _confidence_text(na.column_confidence),
                                       _confidence_text(nb.column_confidence)))
        for text in ("rationale", "source"):
            old, new = getattr(na, text), getattr(nb, text)
            if old != new:
                settings.append(NodeChange(name, text, f"{len(old)} characters",
                                           f"{len(new)} characters (rewritten)"))
        if not comparable:
            continue
        compared.append(name)
        ta = a.cpt(name).reshape(-1, na.card)
        tb = aligned_table(a, b, name).reshape(-1, na.card)
        rows, cols = np.nonzero(np.abs(tb - ta) > atol)
        keys = a.columns(name)
        for r, s in zip(rows.tolist(), cols.tolist(), strict=True):
            if na.card == 2 and s == 0:  # the mirror image of the second state
                continue
            parameters.append(
                ParameterChange(
                    node=name,
                    column=column_key(keys[r]),
                    state=na.states[s],
                    a=float(ta[r, s]),
                    b=float(tb[r, s]),
                )
            )
    return CalibrationDiff(
        parameters=tuple(parameters),
        structure=tuple(structure),
        settings=tuple(settings),
        compared=tuple(compared),
    )
