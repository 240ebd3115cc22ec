"""Editing a calibration's numbers the way a therapist sets them (no inference here).

:func:`number_groups` lists the numbers a therapist sets for one node, grouped by the
distribution they belong to:

* ``noisy_or`` — one group per parent state listed in the file (the probability that the node
  is present when only that parent is in that state, leak included) plus the ``leak`` group;
  each group holds ONE number, the probability of the node's last state.
* ``noisy_max`` — the same groups, each a distribution over the node's states.
* ``table`` — one group per column (parent configuration; ``""`` for a root), a distribution.

In a distribution every state but the first gets its own number; the first state takes the
rest (``1 - sum``), so the numbers a therapist sets are exactly the numbers saved. A rest
below zero is not hidden: validation then reports it like any other problem.
:func:`edit_node` writes numbers (keyed by :attr:`Slot.key`), a confidence and a rationale
into a new calibration; :func:`number_changes` compares two versions number by number.
Nothing here changes a :class:`~calibration.schema.Calibration` in place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from calibration.schema import Calibration, NodeSpec

__all__ = [
    "LEAK",
    "NumberChange",
    "NumberGroup",
    "Slot",
    "changed_nodes",
    "edit_node",
    "number_changes",
    "number_groups",
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
