"""The network every analysis works on: a calibration compiled for inference.

:class:`CalibratedNetwork` holds what the analyses need — the vocabulary, the tables, the
inference backend, and pieces built on first use (the skeleton for explanation paths, the
next-session twin for fixes, the parameter draws for intervals). The public facade
:class:`model.Model` is a ``CalibratedNetwork`` with the query API on top; the analyses take
a ``CalibratedNetwork`` and never the facade.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from calibration.schema import OBSERVABLE_ROLES, Calibration
from model.inference.backends import Backend, make_backend

if TYPE_CHECKING:
    from model.analysis.twin import TwinNetwork

#: Parameter draws behind every 90 % interval of a cause.
DRAWS = 200
#: Of those, the draws behind the next-session forecast's intervals (one batch per fix).
FORECAST_DRAWS = 80
MIN_ALPHA = 1e-3
FLOOR = 1e-9


def dirichlet_draws(
    cpts: Mapping[str, np.ndarray],
    confidence: Mapping[str, float | np.ndarray],
    draws: int,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``draws`` tables per node, each column drawn from Dirichlet(confidence × column);
    a node's confidence is one number or one per column (shape: the parents' cards)."""
    rng = np.random.default_rng(seed)
    out = {}
    for n, table in cpts.items():
        alpha = np.maximum(np.asarray(confidence[n], dtype=float)[..., None] * table, MIN_ALPHA)
        g = rng.standard_gamma(np.broadcast_to(alpha, (draws, *table.shape)))
        g = np.maximum(g, FLOOR)
        out[n] = g / g.sum(axis=-1, keepdims=True)
    return out


class CalibratedNetwork:
    """A calibrated discrete network compiled for exact queries; read-only once built."""

    def __init__(self, calibration: Calibration, backend: str = "compiled") -> None:
        self.calibration = calibration
        nodes = calibration.nodes
        self.variables: dict[str, list[str]] = calibration.variables
        self.causes: list[str] = calibration.causes
        self.cards = {n: len(s) for n, s in self.variables.items()}
        self.parents = {n: list(node.parents) for n, node in nodes.items()}
        self.latents = [n for n, node in nodes.items() if node.role in ("latent", "cause")]
        self.observable = [n for n, node in nodes.items() if node.role in OBSERVABLE_ROLES]
        self.cpts = calibration.cpts()
        self.backend_name = backend
        # the compiled engine finds the MPE by itself (CompiledNetwork.mpe); only the pgmpy
        # reference needs the latents' joint for it
        wanted = (self.causes,) if backend == "compiled" else (self.causes, self.latents)
        joint_sets = [tuple(s) for s in wanted if s]
        self.backend: Backend = make_backend(
            backend, self.variables, self.parents, self.cpts, joint_sets
        )

    def present_index(self, node: str) -> int:
        """Index of the "present" state of a cause-like node: ``yes`` if it has one, else last."""
        states = self.variables[node]
        return states.index("yes") if "yes" in states else len(states) - 1

    def cause_probabilities(self, marginals: Mapping[str, np.ndarray]) -> dict[str, float]:
        """P(cause present) for every cause, from the first row of batched marginals."""
        return {c: float(marginals[c][0, self.present_index(c)]) for c in self.causes}

    @cached_property
    def skeleton(self) -> nx.Graph:
        """The undirected graph of the network (for influence paths)."""
        g = nx.Graph()
        g.add_nodes_from(self.variables)
        g.add_edges_from((p, n) for n, ps in self.parents.items() for p in ps)
        return g

    def descendants(self, node: str) -> set[str]:
        """Every node downstream of ``node``."""
        return self._descendants[node]

    @cached_property
    def _descendants(self) -> dict[str, set[str]]:
        g = nx.DiGraph()
        g.add_nodes_from(self.variables)
        g.add_edges_from((p, n) for n, ps in self.parents.items() for p in ps)
        return {n: nx.descendants(g, n) for n in self.variables}

    @cached_property
    def twin(self) -> TwinNetwork:
        """The two-session network behind the forecast and the fix ranking."""
        from model.analysis.twin import build_twin

        present = {n: self.present_index(n) for n, s in self.variables.items() if len(s) == 2}
        return build_twin(self.variables, self.parents, self.calibration.next_session, present,
                          self.calibration.outcome or self.causes[-1])

    @cached_property
    def twin_backend(self) -> Backend:
        t = self.twin
        return make_backend(self.backend_name, t.variables, t.parents, t.tables(self.cpts))

    @cached_property
    def draws(self) -> dict[str, np.ndarray]:
        """``DRAWS`` tables per node from each column's Dirichlet (its confidence × its
        numbers): after a refit, columns backed by many cases vary little."""
        confidence = {n: self.calibration.column_confidences(n) for n in self.calibration.nodes}
        return dirichlet_draws(self.cpts, confidence, DRAWS)

    @cached_property
    def prior_causes(self) -> dict[str, float]:
        """P(cause present) before any evidence."""
        return self.cause_probabilities(self.backend.query({}).marginals)
