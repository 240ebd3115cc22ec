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
from string import ascii_letters

import networkx as nx
import numpy as np

# numpy's C einsum without the Python dispatch layer: at 2-3 µs a call that layer is a
# third of a small query's time. Falls back to the public function if numpy moves it.
_einsum = getattr(getattr(np, "_core", np).multiarray, "c_einsum", np.einsum)

BATCH = "Z"
BLOCK = 16384  # rows per block for big batches: keeps each block's arrays in cache
BIG = 64  # from this many rows on, arithmetic outweighs call overhead
MAX_PROGRAMS = 4096  # compiled evidence patterns kept per network
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
        self._base_potentials_list = [self._potential(c, {}) for c in range(len(self.cliques))]
        self._card_list = [self.cards[n] for n in self.names]
        self._offsets = np.cumsum([0, *self._card_list[:-1]])
        self._carriers: dict[int, np.ndarray] = {}
        self._programs: dict[tuple, _Program] = {}

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
        order = {n: i for i, n in enumerate(self.names)}
        self.cliques: list[tuple[str, ...]] = [tuple(sorted(c, key=order.get)) for c in cliques]
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
    def _program(
        self, observed: tuple[str, ...], batched_cliques: frozenset[int], big: bool = False
    ) -> _Program:
        """The cached program for one evidence pattern (compiled on first use)."""
        key = (observed, batched_cliques, big)
        program = self._programs.get(key)
        if program is None:
            if len(self._programs) >= MAX_PROGRAMS:
                self._programs.clear()
            program = self._programs[key] = self._compile(observed, batched_cliques, big)
        return program

    def _compile(
        self, observed: tuple[str, ...], batched_cliques: frozenset[int], big: bool
    ) -> _Program:
        """Compile the einsum steps for one evidence pattern into a flat slot program.

        Slots ``0..C-1`` hold clique potentials, ``C`` the batch carrier, then one slot per
        observed node; every step writes one new slot.
        """
        n_cliques = len(self.cliques)

        def bz(sub: str) -> str:
            # big batches put the batch axis last: einsum's inner loop then runs along it
            return sub + BATCH if big else BATCH + sub

        ev_slot = {n: n_cliques + 1 + i for i, n in enumerate(observed)}
        next_slot = n_cliques + 1 + len(observed)
        steps: list[tuple[str, int, tuple[int, ...]]] = []
        msg_slot: dict[tuple[int, int], int] = {}

        def emit(subs: str, ins: tuple[int, ...]) -> int:
            nonlocal next_slot
            steps.append((subs, next_slot, ins))
            next_slot += 1
            return next_slot - 1

        def gather(c: int, exclude: int | None) -> tuple[list[str], tuple[int, ...]]:
            letters = self.letters[c]
            pot = _local(self.cliques[c], letters)
            pot = bz(pot) if c in batched_cliques else pot
            subs, ins = [pot], [c]
            for n in self.evidence_at[c]:
                if n in ev_slot:
                    subs.append(bz(letters[n]))
                    ins.append(ev_slot[n])
            for k in self.neighbors[c]:
                if k != exclude:
                    sep = [v for v in self.cliques[c] if v in self.cliques[k]]
                    subs.append(bz(_local(sep, letters)))
                    ins.append(msg_slot[(k, c)])
            if not any(BATCH in sub for sub in subs):
                # the batch carrier keeps the batch axis on results without evidence
                subs.append(BATCH)
                ins.append(n_cliques)
            return subs, tuple(ins)

        def send(src: int, dst: int) -> None:
            subs, ins = gather(src, dst)
            sep = [v for v in self.cliques[src] if v in self.cliques[dst]]
            out = bz(_local(sep, self.letters[src]))
            msg_slot[(src, dst)] = emit(",".join(subs) + "->" + out, ins)

        for c in self.collect_order:
            send(c, self.parent_of[c])
        for c in self.distribute_order:
            send(self.parent_of[c], c)
        # Small batches: each marginal (and joint) straight from its clique's operands, one
        # call apiece, since call overhead dominates. Big batches: each clique's belief once,
        # then cheap one-operand reductions, since arithmetic dominates.
        homes = {c: [] for c in range(n_cliques)}
        for n in self.names:
            homes[self.evidence_home[n]].append(n)
        targets: dict[int, list[str]] = {c: [] for c in range(n_cliques)}
        for js, c in self.joint_home.items():
            targets[c].append(js)
        belief: dict[int, int] = {}
        if big:
            for c in range(n_cliques):
                if homes[c] or targets[c]:
                    subs, ins = gather(c, None)
                    full = bz(_local(self.cliques[c], self.letters[c]))
                    belief[c] = emit(",".join(subs) + "->" + full, ins)

        def reduce_to(c: int, out: str) -> int:
            if c in belief:
                full = bz(_local(self.cliques[c], self.letters[c]))
                return emit(f"{full}->{out}", (belief[c],))
            subs, ins = gather(c, None)
            return emit(",".join(subs) + "->" + out, ins)

        marginal_slots = [
            reduce_to(self.evidence_home[n], bz(self.letters[self.evidence_home[n]][n]))
            for n in self.names
        ]
        joint_slots = {
            js: reduce_to(c, bz(_local(js, self.letters[c])))
            for js, c in self.joint_home.items()
        }
        return _Program(
            steps=tuple(steps),
            n_slots=next_slot,
            marginal_slots=tuple(marginal_slots),
            joint_slots=joint_slots,
            big=big,
        )

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
        observed = tuple(evidence)
        slots: list = list(self._base_potentials_list)
        batched = set()
        if overrides:
            for c in {self.family_home[n] for n in overrides}:
                slots[c] = self._potential(c, overrides)
                if slots[c].ndim > len(self.cliques[c]):
                    batched.add(c)
        ev = [a if a.ndim == 2 else a[None, :] for a in evidence.values()]
        size = max([a.shape[0] for a in ev] + [slots[c].shape[0] for c in batched], default=1)
        program = self._program(observed, frozenset(batched), size >= BIG)
        if size > BLOCK and not batched:
            outs = [
                self._run(program, slots, [a[s : s + BLOCK] if a.shape[0] > 1 else a for a in ev])
                for s in range(0, size, BLOCK)
            ]
            slots = [np.concatenate(parts) for parts in zip(*outs, strict=True)]
        else:
            slots = self._run(program, slots, ev)
        marginal_parts = slots[: len(self.names)]
        joint_parts = dict(zip(program.joint_slots, slots[len(self.names) :], strict=True))
        # every unnormalised marginal sums to P(evidence); the first one will do
        p_e = marginal_parts[0].sum(axis=1)
        bad = ~(p_e > 0) | ~np.isfinite(p_e)
        if bad.any() and raise_on_impossible:
            raise ImpossibleEvidenceError(np.flatnonzero(bad).tolist())
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(bad, np.nan, 1.0 / np.where(bad, 1.0, p_e))[:, None]
        # all marginals side by side: one clip and one renormalisation for the lot
        stacked = np.concatenate(marginal_parts, axis=1) * scale
        np.clip(stacked, 0.0, 1.0, out=stacked)
        if size < BIG:
            sums = np.add.reduceat(stacked, self._offsets, axis=1)
            stacked /= np.repeat(sums, self._card_list, axis=1)
        else:  # avoids a (rows × all states) temporary
            for o, k in zip(self._offsets, self._card_list, strict=True):
                block = stacked[:, o : o + k]
                block /= block.sum(axis=1, keepdims=True)
        marginals = {
            n: stacked[:, o : o + k]
            for n, o, k in zip(self.names, self._offsets, self._card_list, strict=True)
        }
        joints = {
            js: j * scale.reshape((-1,) + (1,) * (j.ndim - 1)) for js, j in joint_parts.items()
        }
        return BatchResult(marginals=marginals, joints=joints, evidence_probability=p_e)

    def _run(self, program: _Program, potentials: list, ev: list[np.ndarray]) -> list:
        """Execute a program on one block; returns the marginal then the joint slots."""
        size = max([a.shape[0] for a in ev] + [p.shape[0] for p in potentials[len(self.cliques) :]],
                   default=1)
        slots = list(potentials[: len(self.cliques)])
        slots.append(self._carrier(size))
        slots.extend(ev)
        slots.extend([None] * (program.n_slots - len(slots)))
        if program.big:
            for i in range(len(self.cliques) + 1, len(self.cliques) + 1 + len(ev)):
                slots[i] = np.ascontiguousarray(slots[i].T)
            for i in range(len(self.cliques)):
                if slots[i].ndim > len(self.cliques[i]):
                    slots[i] = np.ascontiguousarray(np.moveaxis(slots[i], 0, -1))
        for subs, out, ins in program.steps:
            slots[out] = _einsum(subs, *[slots[i] for i in ins])
        outs = [slots[i] for i in program.marginal_slots]
        outs += [slots[i] for i in program.joint_slots.values()]
        return [np.moveaxis(o, -1, 0) for o in outs] if program.big else outs

    def _carrier(self, size: int) -> np.ndarray:
        if size not in self._carriers:
            if len(self._carriers) > 64:
                self._carriers.clear()
            self._carriers[size] = np.ones(size)
        return self._carriers[size]


@dataclass(frozen=True)
class _Program:
    steps: tuple[tuple[str, int, tuple[int, ...]], ...]
    n_slots: int
    marginal_slots: tuple[int, ...]
    joint_slots: dict[tuple[str, ...], int]
    big: bool


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
