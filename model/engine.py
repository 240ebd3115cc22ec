"""Exact inference for any discrete Bayesian network, compiled once into a junction tree.

The network is moralised, triangulated (greedy min-fill), and its maximal cliques joined
into a tree. A query is two passes of messages over that tree, each message a single
``numpy.einsum`` over one clique. Every quantity carries a leading batch axis, so many
evidence rows — and many parameter draws — go through one pass together.

Evidence is a likelihood vector per observed node (one-hot for hard evidence), which makes
hard, soft and "withheld" evidence the same operation. Parameter overrides replace whole
tables (columns layout, optionally with a batch axis) for one call, without recompiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from string import ascii_letters

import networkx as nx
import numpy as np

BATCH = "Z"
_LETTERS = ascii_letters.replace(BATCH, "")


class ImpossibleEvidenceError(ValueError):
    """The evidence has probability zero under the network; ``rows`` are the offending rows."""

    def __init__(self, rows: Sequence[int], detail: str = "") -> None:
        self.rows = list(rows)
        where = f" (row(s) {', '.join(map(str, self.rows[:10]))})" if len(self.rows) > 1 else ""
        super().__init__(
            f"the evidence is impossible under this calibration{where}: it has probability "
            f"zero{': ' + detail if detail else ''}"
        )


@dataclass(frozen=True)
class BatchResult:
    """Posterior marginals ``(B, card)`` per node, the joint over requested sets, and P(e)."""

    marginals: dict[str, np.ndarray]
    joints: dict[tuple[str, ...], np.ndarray]
    evidence_probability: np.ndarray


def _local(names: Sequence[str], mapping: dict[str, str]) -> str:
    return "".join(mapping[n] for n in names)


class CompiledNetwork:
    """A discrete network compiled for repeated exact queries.

    ``cpts[node]`` has shape ``(*parent_cards, card)``. ``joint_sets`` are node sets whose
    joint posterior will be asked for; they are forced into a common clique.
    """

    def __init__(
        self,
        variables: Mapping[str, Sequence[str]],
        parents: Mapping[str, Sequence[str]],
        cpts: Mapping[str, np.ndarray],
        joint_sets: Sequence[Sequence[str]] = (),
    ) -> None:
        self.names = list(variables)
        self.states = {n: list(variables[n]) for n in self.names}
        self.cards = {n: len(variables[n]) for n in self.names}
        self.parents = {n: tuple(parents.get(n, ())) for n in self.names}
        self.cpts = {n: np.asarray(cpts[n], dtype=float) for n in self.names}
        self.joint_sets = [tuple(s) for s in joint_sets]
        self._build_tree()
        self._base_potentials = {c: self._potential(c, {}) for c in range(len(self.cliques))}

    # ---- compilation -------------------------------------------------------------------
    def _build_tree(self) -> None:
        moral = nx.Graph()
        moral.add_nodes_from(self.names)
        for n in self.names:
            fam = (n, *self.parents[n])
            moral.add_edges_from((a, b) for i, a in enumerate(fam) for b in fam[i + 1 :])
        for s in self.joint_sets:
            moral.add_edges_from((a, b) for i, a in enumerate(s) for b in s[i + 1 :])
        cliques = _triangulate(moral, self.cards)
        self.cliques: list[tuple[str, ...]] = [tuple(sorted(c, key=self.names.index)) for c in cliques]
        tree = nx.Graph()
        tree.add_nodes_from(range(len(self.cliques)))
        for i in range(len(self.cliques)):
            for j in range(i + 1, len(self.cliques)):
                sep = set(self.cliques[i]) & set(self.cliques[j])
                # ties broken towards small cliques keeps messages cheap; components stay
                # joined through empty separators so disconnected networks work too
                tree.add_edge(i, j, weight=len(sep) * 1000 - len(self.cliques[j]))
        tree = nx.maximum_spanning_tree(tree)
        self.root = max(range(len(self.cliques)), key=lambda c: len(self.cliques[c]))
        order = list(nx.dfs_preorder_nodes(tree, self.root))
        self.parent_of = {c: p for p, c in nx.dfs_edges(tree, self.root)}
        self.children = {c: [k for k, p in self.parent_of.items() if p == c] for c in order}
        self.neighbors = {c: list(tree.neighbors(c)) for c in order}
        self.collect_order = list(reversed(order[1:]))
        self.distribute_order = order[1:]

        def smallest_holding(nodes: Sequence[str]) -> int:
            holders = [c for c, cl in enumerate(self.cliques) if set(nodes) <= set(cl)]
            return min(holders, key=lambda c: np.prod([self.cards[v] for v in self.cliques[c]]))

        self.family_home = {n: smallest_holding((n, *self.parents[n])) for n in self.names}
        self.evidence_home = {n: smallest_holding((n,)) for n in self.names}
        self.joint_home = {s: smallest_holding(s) for s in self.joint_sets}
        self.assigned = {
            c: [n for n in self.names if self.family_home[n] == c] for c in range(len(self.cliques))
        }
        self.evidence_at = {
            c: [n for n in self.names if self.evidence_home[n] == c]
            for c in range(len(self.cliques))
        }
        self.marginal_at = self.evidence_at
        self.letters = {}
        for c, clique in enumerate(self.cliques):
            if len(clique) > len(_LETTERS):
                raise ValueError(f"clique of {len(clique)} variables is too large to compile")
            self.letters[c] = {v: _LETTERS[i] for i, v in enumerate(clique)}

    def _potential(self, c: int, overrides: Mapping[str, np.ndarray]) -> np.ndarray:
        clique = self.cliques[c]
        letters = self.letters[c]
        ops: list[np.ndarray] = []
        subs: list[str] = []
        batched = False
        for n in self.assigned[c]:
            fam = (*self.parents[n], n)
            table = overrides.get(n, self.cpts[n])
            if table.ndim == len(fam) + 1:
                batched = True
                subs.append(BATCH + _local(fam, letters))
            else:
                subs.append(_local(fam, letters))
            ops.append(table)
        out = (BATCH if batched else "") + _local(clique, letters)
        if not ops:
            shape = tuple(self.cards[v] for v in clique)
            return np.ones(shape)
        for v in clique:  # variables carried by no assigned table still need their axis
            if not any(letters[v] in s for s in subs):
                subs.append(letters[v])
                ops.append(np.ones(self.cards[v]))
        return np.einsum(",".join(subs) + "->" + out, *ops)

    # ---- queries -----------------------------------------------------------------------
    @lru_cache(maxsize=4096)  # noqa: B019 — plans are per compiled network and immutable
    def _plan(
        self, observed: frozenset[str], batched_cliques: frozenset[int]
    ) -> list[tuple[str, tuple, tuple]]:
        """Einsum subscripts and operand references for one evidence pattern."""
        steps: list[tuple[str, tuple, tuple]] = []

        def operands(c: int, exclude: int | None) -> tuple[list[str], tuple]:
            letters = self.letters[c]
            pot = (BATCH if c in batched_cliques else "") + _local(self.cliques[c], letters)
            # the batch carrier keeps the batch axis on every result, evidence or not
            subs = [pot, BATCH]
            refs: list[tuple] = [("pot", c), ("batch",)]
            for n in self.evidence_at[c]:
                if n in observed:
                    subs.append(BATCH + letters[n])
                    refs.append(("ev", n))
            for k in self.neighbors[c]:
                if k != exclude:
                    sep = [v for v in self.cliques[c] if v in self.cliques[k]]
                    subs.append(BATCH + _local(sep, letters))
                    refs.append(("msg", k, c))
            return subs, tuple(refs)

        for c in self.collect_order:
            target = self.parent_of[c]
            subs, refs = operands(c, target)
            sep = [v for v in self.cliques[c] if v in self.cliques[target]]
            out = BATCH + _local(sep, self.letters[c])
            steps.append((",".join(subs) + "->" + out, ("msg", c, target), refs))
        for c in self.distribute_order:
            p = self.parent_of[c]
            subs, refs = operands(p, c)
            sep = [v for v in self.cliques[p] if v in self.cliques[c]]
            out = BATCH + _local(sep, self.letters[p])
            steps.append((",".join(subs) + "->" + out, ("msg", p, c), refs))
        for c in range(len(self.cliques)):
            if not self.marginal_at[c] and c not in self.joint_home.values() and c != self.root:
                continue
            subs, refs = operands(c, None)
            out = BATCH + _local(self.cliques[c], self.letters[c])
            steps.append((",".join(subs) + "->" + out, ("belief", c), refs))
        return steps

    def query(
        self,
        evidence: Mapping[str, np.ndarray],
        overrides: Mapping[str, np.ndarray] | None = None,
        raise_on_impossible: bool = True,
    ) -> BatchResult:
        """Posterior marginals of every node for a batch of evidence rows.

        ``evidence[node]`` is a likelihood array of shape ``(B, card)`` (or ``(card,)``);
        ``overrides[node]`` a replacement table, shape ``(*parent_cards, card)`` or with a
        leading batch axis. Rows whose evidence is impossible raise
        :class:`ImpossibleEvidenceError` (or come back as NaN when not raising).
        """
        ev = {n: (a if a.ndim == 2 else a[None, :]) for n, a in evidence.items()}
        overrides = overrides or {}
        potentials = dict(self._base_potentials)
        batched = set()
        for c in {self.family_home[n] for n in overrides}:
            potentials[c] = self._potential(c, overrides)
            if potentials[c].ndim > len(self.cliques[c]):
                batched.add(c)
        plan = self._plan(frozenset(ev), frozenset(batched))
        sizes = [a.shape[0] for a in ev.values()] + [potentials[c].shape[0] for c in batched]
        carrier = np.ones(max(sizes, default=1))
        messages: dict[tuple[int, int], np.ndarray] = {}
        beliefs: dict[int, np.ndarray] = {}
        for subs, out, refs in plan:
            ops = []
            for ref in refs:
                if ref[0] == "pot":
                    ops.append(potentials[ref[1]])
                elif ref[0] == "ev":
                    ops.append(ev[ref[1]])
                elif ref[0] == "batch":
                    ops.append(carrier)
                else:
                    ops.append(messages[(ref[1], ref[2])])
            result = np.einsum(subs, *ops)
            if out[0] == "msg":
                messages[(out[1], out[2])] = result
            else:
                beliefs[out[1]] = result
        root_belief = beliefs[self.root]
        p_e = root_belief.reshape(root_belief.shape[0], -1).sum(axis=1)
        bad = ~(p_e > 0) | ~np.isfinite(p_e)
        if bad.any() and raise_on_impossible:
            raise ImpossibleEvidenceError(np.flatnonzero(bad).tolist())
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(bad, np.nan, 1.0 / np.where(bad, 1.0, p_e))
        marginals: dict[str, np.ndarray] = {}
        for c, nodes in self.marginal_at.items():
            if not nodes:
                continue
            belief = beliefs[c]
            axes = tuple(range(1, belief.ndim))
            for n in nodes:
                pos = self.cliques[c].index(n) + 1
                m = belief.sum(axis=tuple(a for a in axes if a != pos)) * scale[:, None]
                marginals[n] = _tidy(m)
        joints = {}
        for s, c in self.joint_home.items():
            belief = beliefs[c]
            keep = [self.cliques[c].index(v) + 1 for v in s]
            drop = tuple(a for a in range(1, belief.ndim) if a not in keep)
            j = belief.sum(axis=drop) if drop else belief
            # reorder the kept axes to the requested order
            current = sorted(keep)
            j = np.moveaxis(j, [1 + current.index(k) for k in keep], list(range(1, len(s) + 1)))
            joints[s] = j * scale.reshape((-1,) + (1,) * len(s))
        return BatchResult(marginals=marginals, joints=joints, evidence_probability=p_e)


def _tidy(m: np.ndarray) -> np.ndarray:
    """Clip rounding noise and renormalise so every row lies in [0, 1] and sums to 1."""
    m = np.clip(m, 0.0, 1.0)
    return m / m.sum(axis=1, keepdims=True)


def _triangulate(graph: nx.Graph, cards: Mapping[str, int]) -> list[set[str]]:
    """Greedy min-fill elimination (ties: smallest clique weight); returns maximal cliques."""
    g = graph.copy()
    cliques: list[set[str]] = []
    while g.number_of_nodes():
        best = None
        for v in g.nodes:
            nbrs = list(g.neighbors(v))
            fill = sum(
                1 for i, a in enumerate(nbrs) for b in nbrs[i + 1 :] if not g.has_edge(a, b)
            )
            weight = int(np.prod([cards[u] for u in nbrs])) * cards[v]
            key = (fill, weight)
            if best is None or key < best[0]:
                best = (key, v, nbrs)
        _, v, nbrs = best
        clique = {v, *nbrs}
        if not any(clique <= c for c in cliques):
            cliques.append(clique)
        g.add_edges_from((a, b) for i, a in enumerate(nbrs) for b in nbrs[i + 1 :])
        g.remove_node(v)
    return [c for c in cliques if not any(c < d for d in cliques)]
