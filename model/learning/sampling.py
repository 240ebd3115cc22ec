"""Synthetic cases from a calibration: vectorised forward (ancestral) sampling.

Used to test that learning recovers known numbers and to benchmark it; never to make up
clinical data.
"""

from __future__ import annotations

from collections.abc import Mapping
from graphlib import TopologicalSorter

import numpy as np
import pandas as pd

from calibration.schema import Calibration
from model.errors import UsageError

__all__ = ["sample_cases", "with_missing"]


def topological_order(calibration: Calibration) -> list[str]:
    """Nodes ordered so that every parent comes before its children."""
    graph = {name: set(node.parents) for name, node in calibration.nodes.items()}
    return list(TopologicalSorter(graph).static_order())


def sample_codes(calibration: Calibration, n: int, seed: int | None = 0) -> dict[str, np.ndarray]:
    """``n`` joint draws as state indices: ``{node: int array of shape (n,)}``."""
    rng = np.random.default_rng(seed)
    codes: dict[str, np.ndarray] = {}
    for name in topological_order(calibration):
        node = calibration.nodes[name]
        table = calibration.cpt(name)
        flat = table.reshape(-1, node.card)
        if node.parents:
            column = np.ravel_multi_index(
                tuple(codes[p] for p in node.parents), table.shape[:-1]
            )
            cdf = np.cumsum(flat, axis=1)[column]
        else:
            cdf = np.broadcast_to(np.cumsum(flat[0]), (n, node.card))
        u = rng.random(n)
        # the state is the number of cumulative bounds at or below u (last bound ignored,
        # so rounding in a cumulative that ends at 0.9999999 can never index past the end)
        codes[name] = (cdf[:, :-1] <= u[:, None]).sum(axis=1)
    return codes


def sample_cases(calibration: Calibration, n: int, seed: int | None = 0) -> pd.DataFrame:
    """``n`` complete cases drawn from the network: one column per node, state names.

    Columns follow the calibration's node order; values are ``str`` (object dtype), the
    same shape of frame the estimators in :mod:`model.learning.refit` read.
    """
    if n < 0:
        raise UsageError("n must be non-negative")
    codes = sample_codes(calibration, n, seed)
    return pd.DataFrame(
        {
            name: np.asarray(node.states, dtype=object)[codes[name]]
            for name, node in calibration.nodes.items()
        }
    )


def with_missing(
    cases: pd.DataFrame, rates: Mapping[str, float], seed: int | None = 0
) -> pd.DataFrame:
    """A copy of ``cases`` with each listed column blanked (set to NaN) at the given rate.

    A rate of 1 hides the column in every row (a latent cause never observed); 0.3 leaves a
    symptom unanswered in about 30 % of rows, independently of everything (missing
    completely at random — the assumption EM needs to ignore why a value is missing).
    """
    rng = np.random.default_rng(seed)
    out = cases.copy()
    for column, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise UsageError(f"rate for {column!r} must lie in [0, 1], got {rate}")
        hide = rng.random(len(out)) < rate
        out[column] = out[column].astype(object).where(~hide, np.nan)
    return out
