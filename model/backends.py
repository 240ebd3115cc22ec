"""The inference seam: every analysis asks a backend for batched marginals.

``compiled`` (the default) is the junction-tree engine in :mod:`model.inference.engine`;
``pgmpy`` is the reference, built lazily in :mod:`model.pgmpy_adapter` so that the query
path never imports pgmpy unless asked to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from model.inference.engine import BatchResult, CompiledNetwork

BACKENDS = ("compiled", "pgmpy")


class Backend(Protocol):
    """What every inference backend offers; arrays carry a leading batch axis."""

    name: str

    def query(
        self,
        evidence: Mapping[str, np.ndarray],
        overrides: Mapping[str, np.ndarray] | None = None,
        raise_on_impossible: bool = True,
    ) -> BatchResult: ...


class CompiledBackend:
    """The default: exact junction-tree inference over numpy, compiled once."""

    name = "compiled"

    def __init__(
        self,
        variables: Mapping[str, Sequence[str]],
        parents: Mapping[str, Sequence[str]],
        cpts: Mapping[str, np.ndarray],
        joint_sets: Sequence[Sequence[str]] = (),
    ) -> None:
        self.engine = CompiledNetwork(variables, parents, cpts, joint_sets)

    def query(
        self,
        evidence: Mapping[str, np.ndarray],
        overrides: Mapping[str, np.ndarray] | None = None,
        raise_on_impossible: bool = True,
    ) -> BatchResult:
        return self.engine.query(evidence, overrides, raise_on_impossible)


def make_backend(
    name: str,
    variables: Mapping[str, Sequence[str]],
    parents: Mapping[str, Sequence[str]],
    cpts: Mapping[str, np.ndarray],
    joint_sets: Sequence[Sequence[str]] = (),
) -> Backend:
    """Build the named backend over one network."""
    if name == "compiled":
        return CompiledBackend(variables, parents, cpts, joint_sets)
    if name == "pgmpy":
        from model.pgmpy_adapter import PgmpyBackend

        return PgmpyBackend(variables, parents, cpts, joint_sets)
    raise ValueError(f"unknown backend {name!r}; valid backends are: {', '.join(BACKENDS)}")
