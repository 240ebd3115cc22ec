"""Expansion of canonical (noisy-OR / noisy-MAX) parameters into full conditional tables.

Parameters are *observable* ones: the distribution of the child when only one parent is in a
given state and every other parent is in its off state, the leak included. Tables come back
in the "columns" layout used across the project: shape ``(*parent_cards, child_card)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def noisy_max_table(
    parent_states: Sequence[Sequence[str]],
    child_card: int,
    params: Mapping[int, Mapping[str, Sequence[float]]],
    leak: Sequence[float],
) -> np.ndarray:
    """Expand noisy-MAX parameters into a full table.

    ``params[i][state]`` is the child's distribution when only parent ``i`` is in ``state``;
    a parent state that is absent from ``params[i]`` is that parent's off state.
    """
    leak_arr = np.asarray(leak, dtype=float)
    leak_cum = np.cumsum(leak_arr)
    shape = tuple(len(s) for s in parent_states)
    cum = np.broadcast_to(leak_cum, (*shape, child_card)).copy()
    for i, states in enumerate(parent_states):
        # per-state factor on the cumulative: P_i(<= y) / L(<= y); 1 for the off state
        factor = np.ones((len(states), child_card))
        for s_idx, state in enumerate(states):
            dist = params.get(i, {}).get(state)
            if dist is not None:
                factor[s_idx] = np.cumsum(np.asarray(dist, dtype=float)) / leak_cum
        view = [1] * len(shape) + [child_card]
        view[i] = len(states)
        cum = cum * factor.reshape(view)
    cum[..., -1] = 1.0
    table = np.diff(cum, axis=-1, prepend=0.0)
    return np.clip(table, 0.0, 1.0)


def noisy_or_table(
    parent_states: Sequence[Sequence[str]],
    params: Mapping[int, Mapping[str, float]],
    leak: float,
) -> np.ndarray:
    """Expand noisy-OR parameters (probability of the present state) into a binary table."""
    as_max = {
        i: {state: (1.0 - p, p) for state, p in by_state.items()} for i, by_state in params.items()
    }
    return noisy_max_table(parent_states, 2, as_max, (1.0 - leak, leak))
