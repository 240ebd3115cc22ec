"""The two-session network behind the next-session forecast and the fix ranking.

A fix is judged by what it changes at the lifter's *next* session, so the forecast must know
what changes between sessions, not assume this session repeats:

* every node gets a next-session copy; a root's copy follows its current value through the
  calibration's carry-over table (``[next_session.<node>]``: a one-off max attempt or load
  jump is not repeated unless planned, training history advances), or exactly when it has
  none (habits such as bracing carry over until they are changed);
* a two-state node with parents is recomputed from its next-session parents, then, when it is
  present now, scaled down by its ``protection`` (the repeated-bout effect: the same work
  causes far less soreness the second time) and carried on by its ``persistence`` (a strain
  does not vanish in a few days);
* a fix is Pearl's do() on a root's next-session copy, with everything known about this
  session kept.

The tables are built from the base tables by :meth:`TwinNetwork.tables`, which also accepts
a leading batch axis (parameter draws), so the forecast's interval reuses the same draws as
the causes' intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from calibration.schema import Carryover

SUFFIX = "__next"


def next_name(node: str) -> str:
    return node + SUFFIX


@dataclass(frozen=True)
class TwinNetwork:
    """Variables and parents of the two-session network; tables come from :meth:`tables`."""

    variables: dict[str, list[str]]
    parents: dict[str, list[str]]
    base_parents: dict[str, list[str]]
    carryover: dict[str, Carryover]
    present: dict[str, int]

    @property
    def base(self) -> list[str]:
        return list(self.base_parents)

    def tables(self, cpts: Mapping[str, np.ndarray], batch: bool = False
               ) -> dict[str, np.ndarray]:
        """Every twin table from the base tables (each with a leading batch axis if
        ``batch``): this session's tables as they are, next session's derived from them."""
        out = {n: np.asarray(cpts[n], dtype=float) for n in self.base_parents}
        for n, pa in self.base_parents.items():
            nn = next_name(n)
            if nn not in self.variables:
                continue
            card = len(self.variables[n])
            rule = self.carryover.get(n)
            table = out[n]
            if not pa:  # a root: carried over by its table, or unchanged
                if rule is not None and rule.table:
                    trans = np.array([rule.table[s] for s in self.variables[n]])
                else:
                    trans = np.eye(card)
                if batch:
                    trans = np.broadcast_to(trans, (table.shape[0], card, card))
                out[nn] = trans
                continue
            if rule is None or not (rule.protection or rule.persistence):
                out[nn] = table
                continue
            k = self.present[n]
            p = table[..., k]
            protected = 1.0 - (1.0 - p * (1.0 - rule.protection)) * (1.0 - rule.persistence)
            yes_now = np.stack([1.0 - protected, protected], axis=-1)
            if k == 0:
                yes_now = yes_now[..., ::-1]
            # the node's own current value is the last parent of its next-session copy
            out[nn] = np.stack([table if i != k else yes_now for i in range(card)],
                               axis=-2)
        return out

    def do_table(self, node: str, state: str, batch: int | None = None) -> np.ndarray:
        """The next-session table of root ``node`` fixed to ``state`` whatever it was."""
        card = len(self.variables[node])
        table = np.zeros((card, card))
        table[:, self.variables[node].index(state)] = 1.0
        return table if batch is None else np.broadcast_to(table, (batch, card, card))


def _ancestors(node: str, parents: Mapping[str, Sequence[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [node]
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def build_twin(
    variables: Mapping[str, Sequence[str]],
    parents: Mapping[str, Sequence[str]],
    carryover: Mapping[str, Carryover],
    present: Mapping[str, int],
    outcome: str,
) -> TwinNetwork:
    """The two-session structure of a network for forecasting ``outcome``; ``present[n]`` is
    the index of a two-state node's present state (used by protection and persistence).

    Only the outcome and its ancestors get a next-session copy: the other copies would be
    barren (never observed, never asked) and cannot change the forecast.
    """
    tv = {n: list(s) for n, s in variables.items()}
    tp = {n: list(parents.get(n, ())) for n in variables}
    rules = dict(carryover)
    copied = _ancestors(outcome, parents) | {outcome}
    for n in (n for n in variables if n in copied):
        pa = list(parents.get(n, ()))
        nn = next_name(n)
        tv[nn] = list(variables[n])
        if not pa:
            tp[nn] = [n]
        else:
            own = [n] if n in rules and (rules[n].protection or rules[n].persistence) else []
            tp[nn] = [next_name(p) for p in pa] + own
    return TwinNetwork(variables=tv, parents=tp,
                       base_parents={n: list(parents.get(n, ())) for n in variables},
                       carryover=rules, present=dict(present))


def intervenable(twin: TwinNetwork, targets: Iterable[str]) -> list[str]:
    """The targets a fix can act on: roots of the network."""
    return [t for t in targets if t in twin.base_parents and not twin.base_parents[t]]
