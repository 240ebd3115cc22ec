"""The "next session" twin network behind the fix ranking.

A fix is judged by what it changes at the lifter's next session. The twin holds two copies of
the network that share the root nodes (the lifter's training history, habits and plan, which
carry over), while every other node — technique breakdown, the causes, the symptoms — is
drawn afresh in the next-session copy. Each intervenable root also gets a next-session copy
that simply follows it; intervening replaces that copy's table with the good state, which
is Pearl's do() on the next session while everything known about this session stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SUFFIX = "__next"


def next_name(node: str) -> str:
    return node + SUFFIX


@dataclass(frozen=True)
class TwinNetwork:
    variables: dict[str, list[str]]
    parents: dict[str, list[str]]
    cpts: dict[str, np.ndarray]

    def do_table(self, node: str, state: str) -> np.ndarray:
        """The next-session table of ``node`` fixed to ``state`` whatever its parents."""
        name = next_name(node)
        table = np.zeros_like(self.cpts[name])
        table[..., self.variables[name].index(state)] = 1.0
        return table


def build_twin(
    variables: Mapping[str, Sequence[str]],
    parents: Mapping[str, Sequence[str]],
    cpts: Mapping[str, np.ndarray],
    targets: Iterable[str],
) -> TwinNetwork:
    """Twin of a network in which ``targets`` can be intervened on at the next session."""
    roots = {n for n in variables if not parents.get(n)}
    targets = set(targets)
    tv = {n: list(s) for n, s in variables.items()}
    tp = {n: list(parents.get(n, ())) for n in variables}
    tc = {n: np.asarray(t) for n, t in cpts.items()}
    copied = (set(variables) - roots) | (targets & roots)

    def mapped(p: str) -> str:
        return next_name(p) if p in copied else p

    for n in variables:
        if n not in copied:
            continue
        nn = next_name(n)
        tv[nn] = list(variables[n])
        if n in roots:  # follows the shared root exactly until intervened on
            tp[nn] = [n]
            tc[nn] = np.eye(len(variables[n]))
        else:
            tp[nn] = [mapped(p) for p in parents[n]]
            tc[nn] = np.asarray(cpts[n])
    return TwinNetwork(variables=tv, parents=tp, cpts=tc)
