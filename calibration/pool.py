"""Pooling several calibrations of the same network into one (a linear opinion pool).

Each version ``i`` of a node carries its probabilities ``p_i`` and, per column, its
confidence ``N_i`` (equivalent sample size: how many cases those numbers are worth; the
node's confidence, or the column's own after a refit, see
:meth:`~calibration.schema.Calibration.column_confidences`). Per column the pooled
distribution is the confidence-weighted average

    p = Σ_i w_i·N_i·p_i / Σ_i w_i·N_i

and the pooled confidence is ``Σ_i w_i·N_i`` (``w_i`` = optional extra weight per version,
1 by default).

Why these two rules
-------------------
Reading each version as a Dirichlet(N_i·p_i) — N_i imagined cases distributed as p_i —
adding the imagined cases of all versions gives Dirichlet(Σ N_i·p_i), whose mean is exactly
the weighted average above and whose equivalent sample size is exactly the sum. So pooling
is the same operation as a refit from cases, with the other versions playing the cases.

The sum is an upper bound on what the pool is worth. It treats the versions as independent
witnesses; therapists usually share training, textbooks and the same seed article, so their
numbers are correlated and the honest ESS lies between ``max N_i`` and ``Σ N_i``. Lower the
pooled confidence by hand (or pass ``weights`` below 1) when the versions share sources.
A linear pool also keeps every version's spread: if one therapist says 0.1 and another 0.9
the pool says 0.5 with a large ESS, which hides the disagreement — look at
:func:`calibration.diff.diff_calibrations` before pooling.

Structure must match: the same nodes, and for each node the same state set and parent set.
Orders may differ; everything is aligned to the first calibration, whose labels, wording,
companions (fixes, red flags, checks) and network metadata the pooled calibration keeps.
A node whose parameters are identical in every version keeps its parameterisation
(noisy-OR stays noisy-OR); any other node is written as a full table.

This module is pure calibration code: it imports nothing from ``model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from calibration.diff import aligned_column_confidences, aligned_table, diff_calibrations
from calibration.schema import Calibration, column_key
from model.errors import InputError

__all__ = ["pool_calibrations"]


def _check_compatible(calibrations: Sequence[Calibration]) -> None:
    first = calibrations[0]
    problems: list[str] = []
    for i, other in enumerate(calibrations[1:], start=1):
        d = diff_calibrations(first, other)
        for change in d.structure:
            if change.field in ("state_order", "parent_order"):
                continue  # aligned by name
            problems.append(f"calibration {i} vs 0: {change}")
    if problems:
        raise InputError(
            "cannot pool calibrations of different networks:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def pool_calibrations(
    calibrations: Sequence[Calibration], weights: Sequence[float] | None = None
) -> Calibration:
    """Confidence-weighted linear pool of calibrations of one network.

    ``weights`` (one non-negative number per calibration, default all 1) multiply each
    version's confidences: a weight of 0.5 counts that version as worth half its stated
    cases. Columns whose pooled confidences differ keep them as ``column_confidence``.
    Returns a new :class:`Calibration` aligned to ``calibrations[0]``; raises
    :class:`~model.errors.InputError` when the networks differ in structure (every
    difference listed) or the weights are not usable.
    """
    cals = list(calibrations)
    if not cals:
        raise InputError("nothing to pool: give at least one calibration")
    w = np.ones(len(cals)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(cals),):
        raise InputError(f"weights: expected {len(cals)} numbers, one per calibration")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise InputError("weights must be finite, non-negative and not all zero")
    _check_compatible(cals)
    first = cals[0]
    pooled = first
    for name, node in first.nodes.items():
        # one confidence per column and version: a refitted version's columns are worth
        # the cases behind each of them, not its node-wide confidence
        ess = np.stack([w[0] * first.column_confidences(name)]
                       + [w[i] * aligned_column_confidences(first, c, name)
                          for i, c in enumerate(cals[1:], start=1)])
        total = ess.sum(axis=0)
        tables = [first.cpt(name)] + [aligned_table(first, c, name) for c in cals[1:]]
        table = (ess[..., None] * np.stack(tables)).sum(axis=0) / total[..., None]
        node_total = float(sum(w[i] * c.nodes[name].confidence for i, c in enumerate(cals)))
        same = all(
            c.nodes[name].cpt == node.cpt
            and c.nodes[name].states == node.states
            and c.nodes[name].parents == node.parents
            and c.nodes[name].params == node.params
            and c.nodes[name].leak == node.leak
            for c in cals[1:]
        )
        if same:  # the parameters' own confidences add up, key by key
            keys = {k for c in cals for k in c.nodes[name].column_confidence}
            per_key = {k: float(sum(w[i] * c.nodes[name].confidence_of(k)
                                    for i, c in enumerate(cals))) for k in sorted(keys)}
            pooled = pooled.with_node(replace(node, confidence=node_total,
                                              column_confidence=per_key))
        elif np.allclose(total, total.flat[0]):
            pooled = pooled.with_table(name, table, confidence=float(total.flat[0]),
                                       column_confidence={})
        else:
            per_column = {column_key(combo): float(v)
                          for combo, v in zip(first.columns(name), total.ravel(), strict=True)}
            pooled = pooled.with_table(name, table, confidence=node_total,
                                       column_confidence=per_column)
    return pooled
