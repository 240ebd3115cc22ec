"""Every use of pgmpy lives here: its API moves between releases (pinned: pgmpy==1.1.2).

Importing pgmpy takes seconds, so nothing on the query path imports this module; it is
loaded when someone asks for ``Model.network``, the ``pgmpy`` backend, or an export.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

with warnings.catch_warnings():
    # pgmpy 1.1.2 warns about its own deprecated estimators module on import
    warnings.simplefilter("ignore", FutureWarning)
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.inference import VariableElimination
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.readwrite import BIFReader, BIFWriter, XMLBIFReader, XMLBIFWriter

from model.inference.engine import BatchResult, ImpossibleEvidenceError


def build_network(
    variables: Mapping[str, Sequence[str]],
    parents: Mapping[str, Sequence[str]],
    cpts: Mapping[str, np.ndarray],
) -> DiscreteBayesianNetwork:
    """A checked pgmpy network from tables in the columns layout ``(*parent_cards, card)``."""
    net = DiscreteBayesianNetwork()
    net.add_nodes_from(variables)
    net.add_edges_from((p, n) for n in variables for p in parents.get(n, ()))
    for n, states in variables.items():
        pa = list(parents.get(n, ()))
        table = np.asarray(cpts[n], dtype=float).reshape(-1, len(states)).T
        net.add_cpds(
            TabularCPD(
                variable=n,
                variable_card=len(states),
                values=table,
                evidence=pa or None,
                evidence_card=[len(variables[p]) for p in pa] or None,
                state_names={v: list(variables[v]) for v in (n, *pa)},
            )
        )
    net.check_model()
    return net


def cpd_table(cpd: TabularCPD, parents: Sequence[str], states: Mapping[str, Sequence[str]]
              ) -> np.ndarray:
    """A pgmpy CPD in the columns layout, re-indexed by name: ``parents`` in the given order,
    every variable's states in ``states`` order (pgmpy's own orders never matter)."""
    factor = cpd.to_factor()
    order = [*parents, cpd.variable]
    values = np.transpose(factor.values, [factor.variables.index(v) for v in order])
    for axis, v in enumerate(order):
        index = [factor.state_names[v].index(s) for s in states[v]]
        values = np.take(values, index, axis=axis)
    return values


def read_network(path: str | Path) -> tuple[dict, dict, dict]:
    """Variables, parents and columns-layout tables of a BIF or XMLBIF file."""
    path = Path(path)
    reader = XMLBIFReader(str(path)) if path.suffix.lower() in (".xml", ".xmlbif") else None
    net = (reader or BIFReader(str(path))).get_model()
    variables = {cpd.variable: list(cpd.state_names[cpd.variable]) for cpd in net.get_cpds()}
    parents = {cpd.variable: list(cpd.variables[1:]) for cpd in net.get_cpds()}
    cpts = {n: cpd_table(net.get_cpds(n), parents[n], variables) for n in variables}
    return variables, parents, cpts


def export_network(net: DiscreteBayesianNetwork, fmt: str, out: str | Path) -> None:
    """Write ``net`` as BIF or XMLBIF."""
    if fmt == "bif":
        BIFWriter(net).write(str(out))
    elif fmt == "xmlbif":
        XMLBIFWriter(net).write(str(out))
    else:
        raise ValueError(f"unknown export format {fmt!r}; valid formats are: bif, xmlbif")


class PgmpyBackend:
    """Reference backend: one pgmpy VariableElimination query per node and evidence row."""

    name = "pgmpy"

    def __init__(
        self,
        variables: Mapping[str, Sequence[str]],
        parents: Mapping[str, Sequence[str]],
        cpts: Mapping[str, np.ndarray],
        joint_sets: Sequence[Sequence[str]] = (),
    ) -> None:
        self.variables = {n: list(s) for n, s in variables.items()}
        self.parents = {n: list(parents.get(n, ())) for n in variables}
        self.cpts = dict(cpts)
        self.joint_sets = [tuple(s) for s in joint_sets]
        self.network = build_network(self.variables, self.parents, self.cpts)
        self.inference = VariableElimination(self.network)

    def _row(self, arrays: Mapping[str, np.ndarray], b: int) -> dict[str, np.ndarray]:
        return {n: a[b] if a.shape[0] > 1 else a[0] for n, a in arrays.items()}

    def query(
        self,
        evidence: Mapping[str, np.ndarray],
        overrides: Mapping[str, np.ndarray] | None = None,
        raise_on_impossible: bool = True,
    ) -> BatchResult:
        ev = {n: (a if a.ndim == 2 else a[None, :]) for n, a in evidence.items()}
        overrides = dict(overrides or {})
        batched_over = {
            n: t for n, t in overrides.items() if t.ndim == np.asarray(self.cpts[n]).ndim + 1
        }
        sizes = [a.shape[0] for a in ev.values()] + [t.shape[0] for t in batched_over.values()]
        size = max(sizes, default=1)
        margs = {n: np.empty((size, len(s))) for n, s in self.variables.items()}
        joints = {
            s: np.empty((size, *(len(self.variables[v]) for v in s))) for s in self.joint_sets
        }
        bad: list[int] = []
        for b in range(size):
            row = self._row(ev, b)
            tables = dict(self.cpts)
            for n, t in overrides.items():
                tables[n] = t[b] if n in batched_over else t
            if overrides:
                net = build_network(self.variables, self.parents, tables)
                inference = VariableElimination(net)
            else:
                net, inference = self.network, self.inference
            hard: dict[str, str] = {}
            soft: dict[str, np.ndarray] = {}
            for n, lik in row.items():
                if np.count_nonzero(lik) == 1 and lik.max() == 1.0:
                    hard[n] = self.variables[n][int(np.argmax(lik))]
                else:
                    soft[n] = lik
            virtual = {}
            if soft:
                # soft evidence the textbook way (pgmpy's own virtual evidence does the same,
                # but rebuilds the model on every query): an observed child per soft node
                net = net.copy()
                for n, lik in soft.items():
                    child = f"__soft__{n}"
                    net.add_edge(n, child)
                    net.add_cpds(
                        TabularCPD(
                            child,
                            2,
                            np.vstack([lik / lik.max(), 1 - lik / lik.max()]),
                            evidence=[n],
                            evidence_card=[len(lik)],
                            state_names={child: ["seen", "unseen"], n: self.variables[n]},
                        )
                    )
                    virtual[child] = "seen"
                inference = VariableElimination(net)
            hard_all = {**hard, **virtual}
            free = [n for n in self.variables if n not in hard]
            # one query per variable: asking pgmpy for many variables at once contracts
            # towards their joint and can run out of memory on larger networks
            result = {
                n: inference.query([n], evidence=hard_all, joint=False, show_progress=False)[n]
                for n in free
            }
            for n in self.variables:
                if n in hard:
                    margs[n][b] = (np.arange(len(self.variables[n])) == self.variables[n].index(
                        hard[n]
                    )).astype(float)
                else:
                    margs[n][b] = _ordered(result[n], n, self.variables[n])
            if np.isnan(margs[free[0]][b]).any() if free else False:
                bad.append(b)
                continue
            for s in self.joint_sets:
                joints[s][b] = self._joint(inference, s, hard, hard_all)
        if bad and raise_on_impossible:
            raise ImpossibleEvidenceError(bad)
        return BatchResult(
            marginals=margs, joints=joints, evidence_probability=np.full(size, np.nan)
        )

    def _joint(
        self, inference: VariableElimination, s: tuple[str, ...], hard: dict, evidence: dict
    ) -> np.ndarray:
        cards = [len(self.variables[v]) for v in s]
        out = np.zeros(cards)
        free = [v for v in s if v not in hard]
        if not free:
            out[tuple(self.variables[v].index(hard[v]) for v in s)] = 1.0
            return out
        factor = inference.query(free, evidence=evidence, joint=True, show_progress=False)
        values = factor.values
        order = list(factor.variables)
        # re-index by state names so pgmpy's own state order never matters
        for idx in np.ndindex(*[len(self.variables[v]) for v in free]):
            names = {v: self.variables[v][i] for v, i in zip(free, idx, strict=True)}
            pos = tuple(factor.state_names[v].index(names[v]) for v in order)
            full = tuple(
                self.variables[v].index(hard[v]) if v in hard else idx[free.index(v)] for v in s
            )
            out[full] = values[pos]
        return out


def _ordered(factor, node: str, states: Sequence[str]) -> np.ndarray:
    names = factor.state_names[node]
    return np.array([factor.values[names.index(s)] for s in states])
