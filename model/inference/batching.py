"""Stacking many evidence rows into the batched likelihood arrays the backends take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def stack_rows(
    rows: Sequence[Mapping[str, np.ndarray]], cards: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """``rows[b][node]`` likelihood vectors -> ``{node: (B, card)}``, ones where unobserved."""
    nodes = {n for row in rows for n in row}
    out: dict[str, np.ndarray] = {}
    for n in nodes:
        arr = np.ones((len(rows), cards[n]))
        for b, row in enumerate(rows):
            if n in row:
                arr[b] = row[n]
        out[n] = arr
    return out


def one_hot(card: int, index: int) -> np.ndarray:
    vec = np.zeros(card)
    vec[index] = 1.0
    return vec


def logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(q) - np.log1p(-q)


def entropy(p: np.ndarray, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    """Shannon entropy in bits along ``axis``."""
    q = np.clip(p, 1e-300, 1.0)
    return -(p * np.log2(q)).sum(axis=axis)
