"""Exact inference on any discrete Bayesian network, without the knowpain vocabulary.

Load a BIF or XMLBIF file (or take a pgmpy model) and ask every posterior marginal for an
evidence dict — exact, and faster than pgmpy and pyAgrum on the bnlearn networks (see
``benchmarks/bench_networks.py``)::

    from model.inference import load_network
    net = load_network("alarm.bif")                     # .bif, .xml/.xmlbif, optionally .gz
    post = net.marginals({"HR": "HIGH", "CO": "LOW"})   # {node: {state: p}} for every node
    net.probability_of_evidence({"HR": "HIGH"})         # P(e)
    states, p = net.mpe({"HR": "HIGH"})                 # most probable explanation

Evidence values are a state name (hard evidence), a state index, or a likelihood given as
``{state: weight}`` or a sequence of weights (soft evidence). Reading files and querying
never imports pgmpy; only :meth:`Network.from_pgmpy` touches a pgmpy object (duck-typed).

Every bad input is a :class:`~model.errors.KnowpainError` naming what is wrong and what is
allowed: a file or network that cannot be used is a
:class:`~model.inference.formats.NetworkFormatError` (unreadable, over a size limit,
malformed, cyclic, a table that is not a distribution), evidence that cannot be used a
:class:`NetworkEvidenceError`, and a network too densely connected for exact inference an
:class:`~model.errors.InputError` naming ``MAX_NETWORK_CLIQUE_ENTRIES``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.errors import EvidenceError, UsageError, listing, quote
from model.inference.engine import BatchResult, CompiledNetwork, ImpossibleEvidenceError
from model.inference.evidence import check_batch_frame, check_mapping, is_unknown, weight
from model.inference.formats import check_network, network_path, read_network_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ImpossibleEvidenceError", "Network", "NetworkEvidenceError", "load_network"]


class NetworkEvidenceError(EvidenceError):
    """Evidence naming an unknown node or state, or with unusable weights."""


class Network:
    """A discrete Bayesian network compiled for exact queries.

    ``variables`` maps each node to its states, ``parents`` each node to its parents, and
    ``cpts`` each node to its table in the layout ``(*parent_cards, card)``: the last axis
    is the node, and ``cpts[n][parent states...]`` is a distribution.
    """

    def __init__(
        self,
        variables: Mapping[str, Sequence[str]],
        parents: Mapping[str, Sequence[str]],
        cpts: Mapping[str, np.ndarray],
        *,
        source: str = "network",
    ) -> None:
        tables = check_network(variables, parents, cpts, source)  # before anything is built
        self.variables: dict[str, list[str]] = {n: list(s) for n, s in variables.items()}
        self.parents: dict[str, list[str]] = {n: list(parents.get(n, ())) for n in variables}
        self.engine = CompiledNetwork(self.variables, self.parents, tables)
        self._state_index = {n: {s: i for i, s in enumerate(v)} for n, v in variables.items()}
        self._onehot: dict[str, dict[str, np.ndarray]] = {}
        eyes: dict[int, np.ndarray] = {}  # shared by cardinality
        for n, states in self.variables.items():
            eye = eyes.get(len(states))
            if eye is None:
                eye = eyes[len(states)] = np.eye(len(states))
                eye.flags.writeable = False
            self._onehot[n] = {s: eye[i] for i, s in enumerate(states)}

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Network:
        """Read a ``.bif`` or ``.xml``/``.xmlbif`` file (``.gz`` allowed)."""
        return cls(*read_network_file(path), source=network_path(path).name)

    @classmethod
    def from_pgmpy(cls, model: Any) -> Network:
        """Compile a pgmpy ``DiscreteBayesianNetwork`` (its CPDs; state names kept)."""
        from model.inference.pgmpy_adapter import cpd_table

        if not callable(getattr(model, "get_cpds", None)):
            raise UsageError(
                f"from_pgmpy needs a pgmpy DiscreteBayesianNetwork, not {type(model).__name__}"
            )
        cpds = {cpd.variable: cpd for cpd in model.get_cpds()}
        variables = {n: list(cpd.state_names[n]) for n, cpd in cpds.items()}
        parents = {n: list(cpd.variables[1:]) for n, cpd in cpds.items()}
        check_network(variables, parents, None, "pgmpy model")  # sizes before any table
        cpts = {n: cpd_table(cpds[n], parents[n], variables) for n in variables}
        return cls(variables, parents, cpts, source="pgmpy model")

    @property
    def cpts(self) -> dict[str, np.ndarray]:
        """The tables, ``(*parent_cards, card)`` per node."""
        return self.engine.cpts

    # ---- evidence ------------------------------------------------------------------------
    def likelihoods(self, evidence: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
        """Evidence as one likelihood vector per node (one-hot for a state)."""
        check_mapping(evidence, NetworkEvidenceError)
        out: dict[str, np.ndarray] = {}
        onehot = self._onehot
        for node, value in (evidence or {}).items():
            vec = onehot.get(node, {}).get(value) if isinstance(value, str) else None
            if vec is not None:  # the common case: a state name
                out[node] = vec
                continue
            if node not in self.variables:
                raise NetworkEvidenceError(
                    f"unknown node {quote(node)}; valid nodes are: {listing(self.variables)}"
                )
            states = self.variables[node]
            if is_unknown(value):  # None, "", NaN, pd.NA: not observed
                continue
            if isinstance(value, str | int | np.integer) and not isinstance(value, bool):
                if isinstance(value, str):
                    if value not in self._state_index[node]:
                        raise NetworkEvidenceError(
                            f"unknown state {quote(value)} for node {node!r}; valid states "
                            f"are: {listing(states)}"
                        )
                    index = self._state_index[node][value]
                else:
                    index = int(value)
                    if not 0 <= index < len(states):
                        raise NetworkEvidenceError(
                            f"state index {index} out of range for node {node!r}"
                        )
                vec = np.zeros(len(states))
                vec[index] = 1.0
            elif isinstance(value, Mapping):
                bad = [s for s in value if s not in self._state_index[node]]
                if bad:
                    raise NetworkEvidenceError(
                        f"unknown state {quote(bad[0])} for node {node!r}; valid states "
                        f"are: {listing(states)}"
                    )
                vec = np.array([weight(node, s, value.get(s, 0.0), NetworkEvidenceError)
                                for s in states])
            else:
                try:
                    vec = np.asarray(value, dtype=float)
                except (TypeError, ValueError, OverflowError):
                    vec = np.empty(0)
                if vec.ndim != 1 or vec.size == 0:
                    raise NetworkEvidenceError(
                        f"evidence for {node!r} must be a state name, a state index, "
                        f"{{state: weight}} or a list of {len(states)} weights; got "
                        f"{quote(value)}"
                    )
                if vec.shape != (len(states),):
                    raise NetworkEvidenceError(
                        f"likelihood for {node!r} needs {len(states)} weights, got {vec.size}"
                    )
            if not np.all(np.isfinite(vec)) or (vec < 0).any() or not (vec > 0).any():
                raise NetworkEvidenceError(
                    f"likelihood for {node!r} needs finite non-negative weights, not all zero"
                )
            out[node] = vec
        return out

    # ---- queries -------------------------------------------------------------------------
    def query(self, evidence: Mapping[str, Any] | None = None) -> BatchResult:
        """The engine's raw answer for one evidence dict: arrays with a batch axis of 1."""
        return self.engine.query(self.likelihoods(evidence))

    def marginals(self, evidence: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
        """``{node: {state: P(state | evidence)}}`` for every node (observed ones included).

        Raises :class:`ImpossibleEvidenceError` when the evidence has probability zero.
        """
        res = self.query(evidence)
        return {
            n: dict(zip(states, m[0].tolist(), strict=True))
            for (n, states), m in zip(self.variables.items(), res.marginals.values(), strict=True)
        }

    def marginal_arrays(self, evidence: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Like :meth:`marginals`, as one probability vector per node (states in order)."""
        res = self.query(evidence)
        return {n: m[0] for n, m in res.marginals.items()}

    def probability_of_evidence(self, evidence: Mapping[str, Any] | None = None) -> float:
        """P(evidence) (for soft evidence: the likelihood-weighted probability)."""
        res = self.engine.query(self.likelihoods(evidence), raise_on_impossible=False)
        return float(res.evidence_probability[0])

    def mpe(
        self, evidence: Mapping[str, Any] | None = None, nodes: Sequence[str] | None = None
    ) -> tuple[dict[str, str], float]:
        """The most probable states and their posterior probability.

        ``nodes=None``: over every node (observed ones at their evidence), by max-product.
        A list of nodes: the most probable configuration of those nodes, the rest summed out;
        a single node name (a string) means that one node.
        """
        if nodes is not None:
            nodes = self._nodes(nodes)
        states, p = self.engine.mpe(self.likelihoods(evidence), nodes)
        return {n: self.variables[n][i] for n, i in states.items()}, p

    def _nodes(self, nodes: Any) -> list[str]:
        """``nodes`` as a list of known node names, each once (a string is one node)."""
        if isinstance(nodes, str):
            nodes = [nodes]
        try:
            listed = list(dict.fromkeys(nodes))
        except TypeError:
            raise NetworkEvidenceError(
                f"nodes must be a node name or a list of node names, not "
                f"{type(nodes).__name__} {quote(nodes, 40)}"
            ) from None
        for n in listed:
            if n not in self.variables:
                raise NetworkEvidenceError(
                    f"unknown node {quote(n)} in nodes; valid nodes are: {listing(self.variables)}"
                )
        return listed

    def posterior_batch(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score a DataFrame of evidence rows (columns are nodes; NaN or "" mean unknown).

        Returns one column ``node=state`` per node and state, indexed like ``df``. Identical
        rows are scored once and rows go through in chunks, so memory stays bounded.
        """
        from model.inference.frames import FrameEvidenceError, posterior_frame

        try:
            check_batch_frame(df, self.variables)  # the Model's checks: one policy per rule
        except EvidenceError as exc:
            raise NetworkEvidenceError(str(exc)) from None
        try:
            return posterior_frame(
                df, self.variables, self.engine.query, codes_query=self.engine.query_codes
            )
        except FrameEvidenceError as exc:
            raise NetworkEvidenceError(str(exc)) from None

    def __repr__(self) -> str:
        return f"Network({len(self.variables)} nodes, {len(self.engine.tree.cliques)} cliques)"


def load_network(path: str | Path) -> Network:
    """Read and compile a ``.bif`` or ``.xml``/``.xmlbif`` network file (``.gz`` allowed)."""
    return Network.from_file(path)
