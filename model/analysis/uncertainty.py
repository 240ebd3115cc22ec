"""How much the answers depend on the calibration's numbers.

Each column of each table is uncertain: an expert's distribution ``p`` given with confidence
``N`` (an equivalent sample size) is read as Dirichlet(N·p). Drawing whole calibrations from
those Dirichlets and pushing every draw through the engine in one batch gives an interval for
any posterior; nudging one parameter at a time gives the sensitivity (tornado) data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from calibration.schema import column_key
from model.results import Interval, SensitivityItem

if TYPE_CHECKING:
    from model.analysis.network import CalibratedNetwork

FLOOR = 1e-9


def cause_intervals(
    net: CalibratedNetwork, likelihoods: Mapping[str, np.ndarray], level: float = 0.9
) -> dict[str, Interval]:
    """Central ``level`` intervals of each cause's posterior over the parameter draws."""
    if not net.causes:
        return {}
    res = net.backend.query(likelihoods, net.draws, raise_on_impossible=False)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = {}
    for c in net.causes:
        p = res.marginals[c][:, net.present_index(c)]
        p = p[np.isfinite(p)]
        if p.size == 0:
            out[c] = Interval(float("nan"), float("nan"), level)
        else:
            out[c] = Interval(float(np.percentile(p, lo)), float(np.percentile(p, hi)), level)
    return out


def sensitivity(
    net: CalibratedNetwork,
    target: tuple[str, str],
    likelihoods: Mapping[str, np.ndarray],
    delta: float = 0.05,
    top: int | None = 15,
) -> list[SensitivityItem]:
    """Which single parameters move P(target | evidence) most when shifted by ±``delta``.

    A shifted probability keeps its column summing to 1 by scaling the column's other
    entries in proportion.
    """
    node_t, state_t = target
    t_idx = net.variables[node_t].index(state_t)
    base = net.cpts
    params: list[tuple[str, tuple[int, ...], int]] = []
    for n, table in base.items():
        for col in np.ndindex(*table.shape[:-1]):
            for s in range(table.shape[-1]):
                params.append((n, col, s))
    size = 2 * len(params)
    overrides = {n: np.broadcast_to(t, (size, *t.shape)).copy() for n, t in base.items()}
    values = []
    for i, (n, col, s) in enumerate(params):
        column = base[n][col]
        p = float(column[s])
        values.append(p)
        for row, new in ((2 * i, max(p - delta, FLOOR)), (2 * i + 1, min(p + delta, 1 - FLOOR))):
            rest = 1.0 - p
            if rest > 0:
                shifted = column * ((1.0 - new) / rest)
            else:  # the other states had nothing: share what this one gives up evenly
                shifted = np.full_like(column, (1.0 - new) / max(len(column) - 1, 1))
            shifted[s] = new
            overrides[n][(row, *col)] = shifted
    ev = {n: np.broadcast_to(v, (size, v.shape[-1])) for n, v in likelihoods.items()}
    res = net.backend.query(ev, overrides, raise_on_impossible=False)
    out_p = res.marginals[node_t][:, t_idx]
    items = []
    for i, (n, col, s) in enumerate(params):
        parents = net.calibration.nodes[n].parents
        col_states = tuple(net.variables[p][c] for p, c in zip(parents, col, strict=True))
        items.append(
            SensitivityItem(
                node=n,
                column=column_key(col_states),
                state=net.variables[n][s],
                value=values[i],
                low=float(out_p[2 * i]),
                high=float(out_p[2 * i + 1]),
            )
        )
    items.sort(key=lambda it: -(it.swing if np.isfinite(it.swing) else -1))
    return items[:top] if top else items
