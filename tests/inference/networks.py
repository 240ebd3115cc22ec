"""Shared by the inference tests and benchmarks/bench_networks.py: the bnlearn networks that
ship with pgmpy, evidence sampled from them, and pyAgrum's answers for comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path

import numpy as np

# found without importing pgmpy (which takes seconds)
EXAMPLES = Path(find_spec("pgmpy").origin).parent / "utils" / "example_models"


def bnlearn_networks() -> dict[str, Path]:
    """Name -> path of every ``.bif.gz`` network in pgmpy's example models, smallest first."""
    paths = sorted(EXAMPLES.glob("*.bif.gz"), key=lambda p: p.stat().st_size)
    return {p.name.removesuffix(".bif.gz"): p for p in paths}


def topological(parents: Mapping[str, Sequence[str]]) -> list[str]:
    order: list[str] = []
    done: set[str] = set()
    for start in parents:
        stack = [(start, False)]
        while stack:
            n, expanded = stack.pop()
            if n in done:
                continue
            if expanded:
                done.add(n)
                order.append(n)
                continue
            stack.append((n, True))
            stack.extend((p, False) for p in parents[n] if p not in done)
    return order


def sample_evidence(
    rng: np.random.Generator,
    variables: Mapping[str, Sequence[str]],
    parents: Mapping[str, Sequence[str]],
    cpts: Mapping[str, np.ndarray],
    share: float = 0.2,
) -> dict[str, str]:
    """One forward sample of the network, of which a ``share`` of the nodes is kept."""
    value: dict[str, int] = {}
    for n in topological(parents):
        p = cpts[n][tuple(value[q] for q in parents[n])]
        value[n] = int(rng.choice(len(p), p=p / p.sum()))
    names = list(variables)
    k = max(1, round(share * len(names)))
    chosen = rng.choice(len(names), size=k, replace=False)
    return {names[i]: variables[names[i]][value[names[i]]] for i in sorted(chosen)}


def likelihood_vectors(
    variables: Mapping[str, Sequence[str]],
    hard: Mapping[str, str],
    soft: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Engine evidence: one-hot vectors for ``hard``, the given weights for ``soft``."""
    out = {n: np.asarray(v, dtype=float) for n, v in (soft or {}).items()}
    for n, s in hard.items():
        out[n] = (np.array(variables[n]) == s).astype(float)
    return out


def max_difference(
    ours: Mapping[str, np.ndarray], theirs: Mapping[str, np.ndarray]
) -> float:
    """Largest absolute difference over every node's posterior."""
    return max(float(np.abs(np.asarray(ours[n]) - theirs[n]).max()) for n in theirs)
