"""Exact inference for any discrete Bayesian network: a junction tree per evidence pattern.

How a query runs:

* **Hard evidence is sliced out, not multiplied in.** A node observed in one state (the same
  state in every row of the batch) is removed from the graph: every table that mentions it
  is indexed at that state, so cliques shrink the way they do in lazy propagation. Soft
  evidence (and hard evidence that differs between rows) is a likelihood factor with a
  batch axis.
* **One junction tree per evidence pattern**, cached: the moral graph of the remaining
  factors is triangulated greedily (min-fill and min-weight, each with the other as the
  tie-break, and on big graphs weighted min-fill per eliminated state too; the ordering
  with the smallest total clique size wins) and the tree is read
  straight off the elimination order (each clique hangs under the clique of its earliest
  eliminated neighbour), O(n·w²) rather than a spanning tree over all clique pairs.
* **Messages are einsum contractions** compiled into a flat program of numpy calls; where a
  contraction is wide, its order comes from ``opt_einsum`` (computed once per pattern), so a
  message never materialises a table larger than it must. Cliques with many neighbours use
  Hugin-style division instead of Shafer–Shenoy products.
* **Nothing underflows silently.** A query first runs without rescaling; if the evidence
  probability comes out tiny (or zero / not finite) the same pattern runs again with every
  message normalised and its scale kept in log space. Evidence that still has probability
  zero raises :class:`ImpossibleEvidenceError` (or gives NaN rows, when asked).
* **Batches**: every quantity may carry a batch axis (evidence rows and parameter draws
  alike); big batches put it last, go through in blocks, and write into one preallocated
  array.

The most probable explanation is max-product on the same tree (:meth:`CompiledNetwork.mpe`),
or, over a subset of nodes, an exact batched search over that subset's configurations.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from string import ascii_letters

import numpy as np

from calibration.limits import MAX_EXPLANATION_STATES, MAX_NETWORK_CLIQUE_ENTRIES
from model.errors import ImpossibleEvidenceError, InputError

# numpy's C einsum without the Python dispatch layer: at 2-3 µs a call that layer is a
# third of a small query's time. Falls back to the public function if numpy moves it.
_einsum = getattr(getattr(np, "_core", np).multiarray, "c_einsum", np.einsum)

BATCH = "Z"
BLOCK = 1024  # rows per block for big batches: each block's arrays stay in cache
BIG = 64  # from this many rows on, arithmetic outweighs call overhead
MAX_PROGRAMS = 256  # compiled evidence patterns kept per network
WIDE = 1 << 15  # a contraction touching more entries than this gets an opt_einsum order
LOG_TINY = math.log(1e-200)  # below this P(e), rerun with rescaled messages
TABULATE = 256  # most code combinations a tabulated message may cover
ROW_BY_ROW = 1 << 16  # coded batches on wider trees go row by row (see query_codes)
HUGIN_DEGREE = 4  # cliques with more neighbours send messages by division
MAX_MAP_CONFIGURATIONS = MAX_EXPLANATION_STATES  # marginal MAP enumerates at most this many
MAP_BLOCK = 4096  # configurations scored per query when enumerating them
_LETTERS = ascii_letters.replace(BATCH, "")


@dataclass(frozen=True)
class BatchResult:
    """Posterior marginals ``(B, card)`` per node, the joint over requested sets, and P(e)."""

    marginals: dict[str, np.ndarray]
    joints: dict[tuple[str, ...], np.ndarray]
    evidence_probability: np.ndarray


# ---- triangulation and the junction tree ---------------------------------------------------
TRIANGULATIONS = ("fill", "weight")  # always tried; the smallest total clique size wins
# also tried when the best of those still has this many clique states (or a tenth of it
# on graphs of at most SMALL_GRAPH nodes, where it costs next to nothing): min-fill and
# min-weight can miss by a factor of several (munin1's largest clique: 1.8M vs 375k
# states), while on a 1000-node graph the weighted rule costs 50-200 ms
WEIGHTED_TRIANGULATIONS = ("weighted-fill-per-state",)
WEIGHTED_FROM = 1e6
SMALL_GRAPH = 100


def _eliminate(
    adj: dict[int, set[int]], logcard: Sequence[float], rule: str, limit: float = math.inf
) -> tuple[list[int], list[set[int]], float]:
    """Greedy elimination by ``rule``; ties go to the smaller clique (or fewer fill edges).

    ``fill``: fewest fill edges; ``weight``: smallest clique; ``weighted-fill``: smallest sum
    over fill edges of the product of their ends' state counts; ``weighted-fill-per-state``:
    that sum divided by the eliminated node's state count. Returns the order, each
    eliminated node's neighbours at its elimination, and the total clique size. Scores are
    kept in a heap and refreshed only around what changed. Gives up (total ``inf``) as soon
    as the total passes ``limit``: a graph far too wide costs little to refuse.
    """
    adj = {v: set(n) for v, n in adj.items()}
    weighted = rule.startswith("weighted")
    card = [math.exp(x) for x in logcard]

    def score(v: int) -> tuple[float, float]:
        nb = adj[v]
        fill = 0.0
        if len(nb) > 1:
            seen = set()
            for a in nb:
                seen.add(a)
                if weighted:
                    fill += card[a] * sum(map(card.__getitem__, nb - adj[a] - seen))
                else:
                    fill += len(nb) - len(seen) - len((adj[a] & nb) - seen)
        weight = logcard[v] + sum(logcard[u] for u in nb)
        if rule == "weight":
            return (weight, fill)
        if rule == "weighted-fill-per-state":
            fill /= card[v]
        return (fill, weight)

    heap = [(score(v), v) for v in adj]
    heapq.heapify(heap)
    current = {v: s for s, v in heap}
    order: list[int] = []
    neighbours: list[set[int]] = []
    total = 0.0
    while heap:
        s, v = heapq.heappop(heap)
        if v not in adj or current.get(v) != s:
            continue
        nb = adj.pop(v)
        del current[v]
        order.append(v)
        neighbours.append(nb)
        total += math.exp(logcard[v] + sum(logcard[u] for u in nb))
        if total > limit:
            return order, neighbours, math.inf
        touched = set(nb)
        for a in nb:
            adj[a].discard(v)
            missing = nb - adj[a] - {a}
            if missing:
                adj[a] |= missing
                touched |= adj[a]
        for u in touched:
            if u in adj:
                new = score(u)
                if current.get(u) != new:
                    current[u] = new
                    heapq.heappush(heap, (new, u))
    return order, neighbours, total


@dataclass
class _Tree:
    """A junction forest over the free nodes of one evidence pattern."""

    cliques: list[tuple[int, ...]]
    parent: list[int]  # -1 at a root
    children: list[list[int]]
    collect: list[int]  # every clique after its children
    home: dict[int, int]  # free node -> clique whose belief gives its marginal
    factor_home: dict[int, int]  # node whose table is a factor -> clique holding its scope
    joint_home: dict[tuple[int, ...], int]


def _junction_tree(
    free: Sequence[int],
    scopes: Mapping[int, tuple[int, ...]],
    joint_scopes: Sequence[tuple[int, ...]],
    logcard: Sequence[float],
    limit: float = MAX_NETWORK_CLIQUE_ENTRIES,
) -> _Tree:
    adj: dict[int, set[int]] = {v: set() for v in free}
    for scope in (*scopes.values(), *joint_scopes):
        for a in scope:
            adj[a].update(scope)
    for v in free:
        adj[v].discard(v)
    def tried(rules: Sequence[str], best: tuple | None) -> tuple:
        for rule in rules:  # a rule gives up once it cannot beat the best (ties keep the first)
            found = _eliminate(adj, logcard, rule, limit if best is None else min(limit, best[2]))
            if best is None or found[2] < best[2]:
                best = found
        return best

    best = tried(TRIANGULATIONS, None)
    if best[2] >= (WEIGHTED_FROM if len(free) > SMALL_GRAPH else WEIGHTED_FROM / 10):
        best = tried(WEIGHTED_TRIANGULATIONS, best)
    order, neighbours, total = best
    if math.isinf(total):  # checked before any table is built
        raise InputError(
            f"exact inference on this network would need clique tables of more than "
            f"{limit:,.0f} entries together (MAX_NETWORK_CLIQUE_ENTRIES; the bnlearn networks "
            "need at most 128 million): its graph is too densely connected for a junction "
            "tree; observe some nodes for certain or use approximate inference"
        )
    pos = {v: i for i, v in enumerate(order)}
    n = len(order)
    # elimination clique i = {order[i]} | neighbours[i]; its parent is the clique of the
    # earliest eliminated neighbour (which holds all of neighbours[i])
    parent = [min((pos[u] for u in neighbours[i]), default=-1) for i in range(n)]
    rep = list(range(n))  # clique i merged into rep[i] when it is not maximal
    kids: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        if parent[i] >= 0:
            kids[parent[i]].append(i)
    for j in range(n):  # children come before parents in elimination order
        size_j = len(neighbours[j]) + 1
        for i in kids[j]:
            if len(neighbours[i]) == size_j:  # clique j == separator of i: j is not maximal
                rep[j] = rep[i]
                break
    alive = [i for i in range(n) if rep[i] == i]

    def find(i: int) -> int:
        while rep[i] != i:
            rep[i] = rep[rep[i]]
            i = rep[i]
        return i

    index = {c: k for k, c in enumerate(alive)}
    par = []
    for c in alive:
        # walk up past merged cliques to the first live ancestor that is not c itself
        q = parent[c]
        while q >= 0 and find(q) == c:
            q = parent[q]
        par.append(index[find(q)] if q >= 0 else -1)
    cliques = [tuple(sorted({order[c], *neighbours[c]})) for c in alive]
    children: list[list[int]] = [[] for _ in alive]
    for k, p in enumerate(par):
        if p >= 0:
            children[p].append(k)
    # collect order: every clique after its children (reversed breadth-first from the roots)
    walk = [k for k, p in enumerate(par) if p < 0]
    for k in walk:
        walk.extend(children[k])
    collect = walk[::-1]
    home = {order[i]: index[find(i)] for i in range(n)}

    def holder(scope: tuple[int, ...]) -> int:
        first = min(scope, key=pos.__getitem__)
        return home[first]

    factor_home = {node: holder(scope) for node, scope in scopes.items() if scope}
    joint_home = {s: holder(s) for s in joint_scopes if s}
    # a node's marginal comes from the smallest clique holding it
    sizes = [sum(logcard[v] for v in c) for c in cliques]
    best_home: dict[int, int] = {}
    for k, c in enumerate(cliques):
        for v in c:
            if v not in best_home or sizes[k] < sizes[best_home[v]]:
                best_home[v] = k
    return _Tree(cliques, par, children, collect, best_home, factor_home, joint_home)


# ---- compiled programs -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Tab:
    """An up message that depends on few coded findings: computed for all their codes."""

    slot: int  # the message's slot
    steps: range  # the steps it replaces
    nodes: tuple[int, ...]  # the coded findings below it, in mixed-radix order
    own: tuple[tuple[int, tuple[int, ...]], ...]  # the clique's own operands (slot, scope)
    children: tuple[tuple[int, int, tuple[int, ...]], ...]  # (clique, slot, separator)
    sep: tuple[int, ...]


@dataclass
class _Program:
    """The flat list of numpy calls answering one evidence pattern.

    ``steps`` are ``(function, out_slot, in_slots)``; slots ``0..F-1`` hold the factors in
    ``factors`` order, then evidence, then results.
    """

    hard: tuple[int, ...]
    soft: tuple[int, ...]
    factors: tuple[tuple[int, tuple[int, ...], bool], ...]  # (node, hard axes, batched)
    n_inputs: int
    steps: list
    n_slots: int
    marginal_slots: dict[int, int]  # free node -> slot (unnormalised marginal)
    joint_slots: dict[tuple[int, ...], int]
    total_slots: list[int]  # pieces of P(e): root totals, or message scales (log-summed)
    constant_nodes: tuple[int, ...]
    constants: list[tuple[int, np.ndarray]]
    einsum_out: dict[int, tuple[str, tuple[int, ...]]]  # big batches: slot -> (subs, shape)
    node_total: dict[int, int]  # unscaled: free node -> its component's total slot
    tabulated: dict[int, _Tab]  # big coded batches: clique -> its tabulated up message
    batched: dict[int, bool]  # slot -> carries the batch axis
    big: bool
    scaled: bool
    cliques: list[tuple[int, ...]]


def _greedy_path(
    subs: Sequence[str], out: str, sizes: Mapping[str, int]
) -> list[tuple[int, int]]:
    """Pairwise order for a narrow contraction: always the pair with the smallest result.

    Same convention as ``opt_einsum``: each pair is removed and its result appended.
    """
    live = [set(x) for x in subs]
    path = []
    while len(live) > 1:
        best = None
        for i in range(len(live)):
            for j in range(i + 1, len(live)):
                rest = set(out).union(*(live[k] for k in range(len(live)) if k not in (i, j)))
                keep = (live[i] | live[j]) & rest
                cost = (math.prod(sizes[c] for c in keep),
                        math.prod(sizes[c] for c in live[i] | live[j]))
                if best is None or cost < best[0]:
                    best = (cost, i, j, keep)
        _, i, j, keep = best
        path.append((i, j))
        live = [x for k, x in enumerate(live) if k not in (i, j)] + [keep]
    return path


PAIR_MIN = 1 << 12  # a pairwise product touching fewer entries than this stays an einsum
# OpenBLAS runs a matrix product with m·n·k above about 2**19 on several threads; while other
# processes keep the cores busy those threads wait on each other (a 0.1 ms product took
# 16 ms), so bigger products go as a stack of smaller ones, each on one thread
GEMM_PIECE = 1 << 18
# a stack of products, one per batch row, each smaller than this: einsum is faster
BATCH_MATMUL_MIN = 1 << 12


def _pair_step(a: str, b: str, keep: str, sizes: Mapping[str, int]):
    """A pairwise contraction as one batched matrix product (or broadcast product).

    numpy's einsum loops over the whole iteration space, slowly when its operands are
    strided views; ``np.matmul`` (BLAS) over views of the operands costs little more than
    reading them. Letters shared and kept are matmul's batch axes (any strides will do); each
    operand's other letters are merged into its two matrix axes, which copies it only when
    they are not already adjacent in memory. Returns the step function and its natural
    output letters (shared kept letters, then ``a``'s own, then ``b``'s own), or None when
    the product is too small to be worth it.
    """
    if math.prod(sizes[c] for c in set(a + b)) < PAIR_MIN:
        return None
    # the larger operand sets the order of the letters both share, so it is the one
    # most likely to need no copy
    big = a if math.prod(sizes[c] for c in a) >= math.prod(sizes[c] for c in b) else b
    batch = [c for c in big if c in a and c in b and c in keep]
    inner = [c for c in big if c in a and c in b and c not in keep]
    left = [c for c in a if c not in b and c in keep]
    right = [c for c in b if c not in a and c in keep]
    if BATCH in batch and _per_matrix(sizes, left, inner, right) < BATCH_MATMUL_MIN:
        return None
    natural = "".join(batch + left + right)

    def prep(s: str, order: list[str]) -> tuple:
        idle = tuple(k for k, c in enumerate(s) if c not in order)  # summed out alone
        rest = [c for c in s if c in order]
        perm = tuple(rest.index(c) for c in order)
        return idle, None if perm == tuple(range(len(perm))) else perm

    def dim(c: str) -> int:  # -1: the batch axis, its length known at run time
        return -1 if c == BATCH else sizes[c]

    def size(letters: list[str]) -> int:
        return -1 if BATCH in letters else math.prod(sizes[c] for c in letters)

    x_idle, x_perm = prep(a, batch + left + inner)
    y_idle, y_perm = prep(b, batch + inner + right)
    heads = tuple(dim(c) for c in batch)
    nl, nk, nr = size(left), size(inner), size(right)
    mode, piece = "matmul", 0
    if not inner:  # nothing summed: a broadcast product, no axis merged
        mode = "outer"
        x_shape = (*heads, *map(dim, left), *(1 for _ in right))
        y_shape = (*heads, *(1 for _ in left), *map(dim, right))
    else:
        x_shape, y_shape = (*heads, nl, nk), (*heads, nk, nr)
        if min(nl, nr) > 0 and nl * nk * nr > GEMM_PIECE:
            # the most rows (of x) or columns (of y) per piece that stay under GEMM_PIECE
            rows = _divisor_at_most(nl, GEMM_PIECE // (nk * nr))
            cols = _divisor_at_most(nr, GEMM_PIECE // (nl * nk))
            if rows or cols:
                mode, piece = ("rows", rows) if rows * nr >= cols * nl else ("cols", cols)
    fn = partial(
        _pair_product,
        x_idle=x_idle, x_perm=x_perm, x_shape=x_shape,
        y_idle=y_idle, y_perm=y_perm, y_shape=y_shape,
        shape=tuple(map(dim, natural)), mode=mode, piece=piece,
    )
    return fn, natural


def _per_matrix(sizes: Mapping[str, int], *groups: list[str]) -> int:
    return math.prod(sizes[c] for g in groups for c in g if c != BATCH)


def _divisor_at_most(n: int, bound: int) -> int:
    """The largest divisor of ``n`` from 2 to ``bound``, or 0."""
    return next((d for d in range(min(n, bound), 1, -1) if n % d == 0), 0)


def _matrix(x: np.ndarray) -> np.ndarray:
    """``x`` as BLAS takes it: one of its two last axes of unit stride (numpy's matmul
    falls back to a slow loop of its own otherwise)."""
    if x.strides[-1] == x.itemsize or x.strides[-2] == x.itemsize:
        return x
    return np.ascontiguousarray(x)


def _pair_product(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_idle: tuple[int, ...],
    x_perm: tuple[int, ...] | None,
    x_shape: tuple[int, ...],
    y_idle: tuple[int, ...],
    y_perm: tuple[int, ...] | None,
    y_shape: tuple[int, ...],
    shape: tuple[int, ...],
    mode: str,
    piece: int,
) -> np.ndarray:
    """``x`` times ``y`` as laid out by :func:`_pair_step`: ``mode`` is "outer" (nothing
    summed), "matmul", or "rows" / "cols" (split into products of ``piece`` rows of ``x`` or
    columns of ``y``)."""
    if x_idle:
        x = x.sum(axis=x_idle)
    if y_idle:
        y = y.sum(axis=y_idle)
    if x_perm is not None:
        x = x.transpose(x_perm)
    if y_perm is not None:
        y = y.transpose(y_perm)
    x = x.reshape(x_shape)
    y = y.reshape(y_shape)
    if mode == "outer":
        return np.multiply(x, y).reshape(shape)
    x, y = _matrix(x), _matrix(y)
    if mode == "matmul":
        return np.matmul(x, y).reshape(shape)
    if mode == "rows":  # (..., c, piece, nk) @ (..., 1, nk, nr): already in output order
        x = x.reshape((*x.shape[:-2], -1, piece, x.shape[-1]))
        return np.matmul(x, y[..., None, :, :]).reshape(shape)
    y = np.moveaxis(y.reshape((*y.shape[:-1], -1, piece)), -2, -3)  # (..., c, nk, piece)
    out = np.matmul(x[..., None, :, :], y)  # (..., c, nl, piece)
    return np.moveaxis(out, -3, -2).reshape(shape)


def _then_transpose(fn, perm: tuple[int, ...], *args: np.ndarray) -> np.ndarray:
    return fn(*args).transpose(perm)


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with 0 where ``b`` is 0 (callers run under ``np.errstate``)."""
    out = a / b
    out[~np.isfinite(out)] = 0.0
    return out


def _safe_divide_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_safe_divide` when only one side has the (last) batch axis."""
    if a.ndim < b.ndim:
        a = a[..., None]
    elif b.ndim < a.ndim:
        b = b[..., None]
    return _safe_divide(a, b)


def _normalise(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    return a / np.where(s > 0, s, 1.0)


class CompiledNetwork:
    """A discrete network compiled for repeated exact queries.

    ``cpts[node]`` has shape ``(*parent_cards, card)``. ``joint_sets`` are node sets whose
    joint posterior will be asked for (kept small: they are forced into a common clique).
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
        self._index = {n: i for i, n in enumerate(self.names)}
        for n in self.names:
            if self.cards[n] < 1:
                raise InputError(f"variable {n!r} has no states; it needs at least one")
            want = (*(self.cards[p] for p in self.parents[n]), self.cards[n])
            if self.cpts[n].shape != want:
                raise InputError(f"table of {n!r} has shape {self.cpts[n].shape}, needs {want}")
        self._card = [self.cards[n] for n in self.names]
        self._logcard = [math.log(c) for c in self._card]
        self._family = [
            (*(self._index[p] for p in self.parents[n]), i) for i, n in enumerate(self.names)
        ]
        self._joint_idx = [tuple(self._index[v] for v in s) for s in self.joint_sets]
        self._offsets = np.cumsum([0, *self._card[:-1]])
        self._spans = [(int(o), k) for o, k in zip(self._offsets, self._card, strict=True)]
        # shared by cardinality: a thousand yes/no nodes hold one 2 x 2 identity
        eyes = {k: np.eye(k) for k in set(self._card)}
        codes = {k: np.hstack([eyes[k], np.ones((k, 1))]) for k in eyes}
        self._eye = [eyes[k] for k in self._card]
        self._code_tables = [codes[k] for k in self._card]
        self._total_states = int(sum(self._card))
        self._programs: dict[tuple, _Program] = {}
        self._trees: dict[tuple[int, ...], _Tree] = {}
        self.tree = self._tree(())  # the no-evidence tree: compiled up front

    # ---- structure ---------------------------------------------------------------------
    @property
    def cliques(self) -> list[tuple[str, ...]]:
        """The cliques of the junction tree used when no node is observed for certain."""
        return [tuple(self.names[v] for v in c) for c in self.tree.cliques]

    def largest_clique_states(self, hard: Sequence[str] = ()) -> int:
        """Entries of the largest clique table, with ``hard`` nodes observed."""
        tree = self._tree(tuple(sorted(self._index[n] for n in hard)))
        return max((int(np.prod([self._card[v] for v in c])) for c in tree.cliques), default=1)

    def _tree(self, hard: tuple[int, ...]) -> _Tree:
        tree = self._trees.get(hard)
        if tree is None:
            hs = set(hard)
            free = [v for v in range(len(self.names)) if v not in hs]
            scopes = {v: tuple(u for u in self._family[v] if u not in hs) for v in free}
            for v in hard:
                scopes[v] = tuple(u for u in self._family[v] if u not in hs)
            joints = [tuple(u for u in s if u not in hs) for s in self._joint_idx]
            tree = _junction_tree(free, scopes, joints, self._logcard)
            if len(self._trees) >= MAX_PROGRAMS:
                self._trees.clear()
            self._trees[hard] = tree
        return tree

    # ---- compiling one pattern ----------------------------------------------------------
    def _program(
        self,
        hard: tuple[int, ...],
        soft: tuple[int, ...],
        batched_nodes: frozenset[int],
        big: bool,
        scaled: bool,
    ) -> _Program:
        key = (hard, soft, batched_nodes, big, scaled)
        program = self._programs.get(key)
        if program is None:
            if len(self._programs) >= MAX_PROGRAMS:
                self._programs.clear()
            program = self._programs[key] = self._compile(*key)
        return program

    def _compile(
        self,
        hard: tuple[int, ...],
        soft: tuple[int, ...],
        batched_nodes: frozenset[int],
        big: bool,
        scaled: bool,
    ) -> _Program:
        tree = self._tree(hard)
        hs = set(hard)
        card = self._card
        # inputs: one factor per node table, then the soft evidence vectors
        factors = []
        constant_nodes = []
        scope_of: dict[int, tuple[int, ...]] = {}
        for v in range(len(self.names)):
            fam = self._family[v]
            axes = tuple(k for k, u in enumerate(fam) if u in hs)
            scope = tuple(u for u in fam if u not in hs)
            factors.append((v, axes, v in batched_nodes))
            scope_of[v] = scope
            if not scope:
                constant_nodes.append(v)
        n_factors = len(factors)
        slots_batched: dict[int, bool] = {i: f[2] for i, f in enumerate(factors)}
        operands: dict[int, list[tuple[int, tuple[int, ...]]]] = {
            k: [] for k in range(len(tree.cliques))
        }  # clique -> (slot, scope)
        for v in range(len(self.names)):
            if scope_of[v]:
                operands[tree.factor_home[v]].append((v, scope_of[v]))
        for i, v in enumerate(soft):
            slot = n_factors + i
            slots_batched[slot] = True
            operands[tree.home[v]].append((slot, (v,)))
        n_inputs = n_factors + len(soft)
        steps: list = []
        einsum_out: dict[int, tuple[str, tuple[int, ...]]] = {}  # big: reusable outputs
        constants: list[tuple[int, np.ndarray]] = []
        next_slot = n_inputs
        # the same product of the same slots is computed once: messages out of one clique
        # share most of their operands, and often the first pairs of their paths (not in big
        # batches, whose tabulated messages skip steps)
        made: dict[tuple, int] = {}

        def letters(vars_: Sequence[int], table: dict[int, str]) -> str:
            return "".join(table[u] for u in vars_)

        def contract(
            ins: list[tuple[int, tuple[int, ...]]], out_vars: tuple[int, ...]
        ) -> int:
            """Emit the steps computing sum over everything but ``out_vars``; returns slot."""
            nonlocal next_slot
            carried = {u for _, sc in ins for u in sc}
            for u in out_vars:
                if u not in carried:  # an axis no operand has (joint sets): a ones vector
                    constants.append((next_slot, np.ones(card[u])))
                    slots_batched[next_slot] = False
                    ins = [*ins, (next_slot, (u,))]
                    next_slot += 1
            involved = sorted({u for _, sc in ins for u in sc} | set(out_vars))
            if len(involved) > len(_LETTERS):
                raise InputError(
                    f"a clique of {len(involved)} variables is too large for this engine"
                )
            table = {u: _LETTERS[k] for k, u in enumerate(involved)}
            any_batched = any(slots_batched[s] for s, _ in ins)

            def sub(vars_: Sequence[int], batched: bool) -> str:
                s = letters(vars_, table)
                if batched:
                    return s + BATCH if big else BATCH + s
                return s

            out = sub(out_vars, any_batched)
            width = math.prod(card[u] for u in involved) * max(len(ins), 1)
            sizes = {**{table[u]: card[u] for u in involved}, BATCH: BLOCK if big else 1}
            if (width <= WIDE and not (any_batched and big)) or len(ins) == 1:
                subs = ",".join(sub(sc, slots_batched[s]) for s, sc in ins) + "->" + out
                key = (subs, tuple(s for s, _ in ins))
                if key in made:
                    return made[key]
                if not big:
                    made[key] = next_slot
                steps.append((partial(_einsum, subs), next_slot, tuple(s for s, _ in ins)))
                if big:
                    einsum_out[next_slot] = (subs, tuple(sizes[c] for c in out))
                slots_batched[next_slot] = any_batched
                next_slot += 1
                return next_slot - 1
            # wide (or a big batch): pairwise order, one call per pair

            in_subs = [sub(sc, slots_batched[s]) for s, sc in ins]
            shapes = [tuple(sizes[c] for c in s) for s in in_subs]
            path = [(0, 1)]
            if len(ins) > 2 and width <= WIDE:  # a big batch over a narrow clique
                path = _greedy_path(in_subs, out, sizes)
            elif len(ins) > 2:
                import opt_einsum

                path, _ = opt_einsum.contract_path(
                    ",".join(in_subs) + "->" + out, *shapes, shapes=True, optimize="auto"
                )
            live = list(zip(in_subs, (s for s, _ in ins), strict=True))
            for pair in path:
                picked = [live[k] for k in pair]
                for k in sorted(pair, reverse=True):
                    del live[k]
                rest = set(out) | {c for s, _ in live for c in s}
                keep = "".join(
                    dict.fromkeys(c for s, _ in picked for c in s if c in rest and c != BATCH)
                )
                has_b = any(BATCH in s for s, _ in picked)
                if has_b:
                    keep = keep + BATCH if big else BATCH + keep
                if not live:
                    keep = out
                fn = (
                    _pair_step(picked[0][0], picked[1][0], keep, sizes)
                    if len(picked) == 2 and width > WIDE  # narrow: einsum loops faster
                    else None
                )
                if fn is None:
                    subs = ",".join(s for s, _ in picked) + "->" + keep
                    fn = partial(_einsum, subs)
                    if big:
                        einsum_out[next_slot] = (subs, tuple(sizes[c] for c in keep))
                else:
                    fn, natural = fn
                    if live:  # an intermediate: keep the product's own axis order
                        keep = natural
                    else:
                        perm = tuple(natural.index(c) for c in keep)
                        if perm != tuple(range(len(perm))):
                            fn = partial(_then_transpose, fn, perm)
                key = (",".join(s for s, _ in picked) + "->" + keep, tuple(s for _, s in picked))
                if key in made:
                    live.append((keep, made[key]))
                    continue
                if not big:
                    made[key] = next_slot
                steps.append((fn, next_slot, tuple(s for _, s in picked)))
                slots_batched[next_slot] = has_b
                live.append((keep, next_slot))
                next_slot += 1
            return live[-1][1]

        def emit(fn, ins: tuple[int, ...], batched: bool) -> int:
            nonlocal next_slot
            steps.append((fn, next_slot, ins))
            slots_batched[next_slot] = batched
            next_slot += 1
            return next_slot - 1

        def reduce_axes(vars_: tuple[int, ...], keep: tuple[int, ...], batched: bool):
            axes = tuple(k for k, u in enumerate(vars_) if u not in keep)
            if batched and not big:
                axes = tuple(a + 1 for a in axes)
            return axes

        def normalise(slot: int, vars_: tuple[int, ...]) -> tuple[int, int]:
            """Scale a table to sum 1 per row; returns (scaled slot, scale slot)."""
            b = slots_batched[slot]
            axes = reduce_axes(vars_, (), b)
            s = emit(partial(np.sum, axis=axes, keepdims=True), (slot,), b)
            return emit(_normalise, (slot, s), b), s

        sep = {}
        for k, p in enumerate(tree.parent):
            if p >= 0:
                sep[k] = tuple(u for u in tree.cliques[k] if u in set(tree.cliques[p]))
        up: dict[int, int] = {}
        down: dict[int, int] = {}
        total_slots: list[int] = []
        # big coded batches: a message whose subtree holds few coded findings is tabulated
        # once per query over their joint codes, then gathered per block
        tabulated: dict[int, _Tab] = {}
        soft_below: dict[int, tuple[int, ...]] = {}
        for k in tree.collect:
            p = tree.parent[k]
            if p < 0:
                continue
            ins = operands[k] + [(up[c], sep[c]) for c in tree.children[k]]
            first_step = len(steps)
            slot = contract(ins, sep[k])
            if big and not batched_nodes and not scaled:
                mine = [soft[sl - n_factors] for sl, _ in operands[k] if sl >= n_factors]
                below = sorted({*mine, *(u for c in tree.children[k] for u in soft_below[c])})
                soft_below[k] = tuple(below)
                combos = math.prod(card[u] + 1 for u in below)
                if 1 < combos <= TABULATE and all(
                    c in tabulated or not soft_below[c] for c in tree.children[k]
                ):
                    tabulated[k] = _Tab(
                        slot=slot,
                        steps=range(first_step, len(steps)),
                        nodes=tuple(below),
                        own=tuple(operands[k]),
                        children=tuple((c, up[c], sep[c]) for c in tree.children[k]),
                        sep=sep[k],
                    )
            if scaled:
                slot, s = normalise(slot, sep[k])
                total_slots.append(s)
            up[k] = slot
        marginal_slots: dict[int, int] = {}
        joint_slots: dict[tuple[int, ...], int] = {}
        root_total: dict[int, int] = {}
        homed: dict[int, list[int]] = {k: [] for k in range(len(tree.cliques))}
        for v, k in tree.home.items():
            homed[k].append(v)
        joints_at: dict[int, list[tuple[int, ...]]] = {k: [] for k in range(len(tree.cliques))}
        for s, k in tree.joint_home.items():
            joints_at[k].append(s)
        for k in reversed(tree.collect):  # parents before children
            clique = tree.cliques[k]
            p = tree.parent[k]
            incoming = [(up[c], sep[c]) for c in tree.children[k]]
            if p >= 0:
                incoming.append((down[k], sep[k]))
            base = operands[k]
            kids = tree.children[k]
            # a wide clique's table is never built: each message and marginal is its own
            # contraction of the clique's factors and messages, in opt_einsum's order
            wide = math.prod(card[u] for u in clique) > WIDE
            hugin = not wide and len(kids) + (p >= 0) > HUGIN_DEGREE
            need_belief = not wide and (
                p < 0 or hugin or len(homed[k]) + len(joints_at[k]) > 1 or bool(joints_at[k])
            )
            belief = None
            if need_belief:
                belief = contract(base + incoming, clique)
                if p < 0:
                    if scaled:
                        belief, s = normalise(belief, clique)
                        total_slots.append(s)
                    else:
                        b = slots_batched[belief]
                        total_slots.append(
                            emit(partial(np.sum, axis=reduce_axes(clique, (), b)), (belief,), b)
                        )
                elif scaled:
                    belief, _ = normalise(belief, clique)
            for c in kids:
                if hugin:
                    assert belief is not None
                    m = contract([(belief, clique)], sep[c])
                    b_m, b_up = slots_batched[m], slots_batched[up[c]]
                    divide = _safe_divide_last if big and b_m != b_up else _safe_divide
                    down[c] = emit(divide, (m, up[c]), b_m or b_up)
                else:
                    ins = base + [(s, sc) for s, sc in incoming if s != up[c]]
                    down[c] = contract(ins, sep[c])
                    if scaled:
                        down[c], _ = normalise(down[c], sep[c])
            source = [(belief, clique)] if belief is not None else base + incoming
            for v in homed[k]:
                marginal_slots[v] = contract(source, (v,))
            for s in joints_at[k]:
                joint_slots[s] = contract(source, s)
            if p < 0 and belief is None:
                # P(e) of this component: any of its marginals sums to it
                total_slots.append(
                    marginal_slots[homed[k][0]] if homed[k] else contract(source, ())
                )
            if p < 0:
                root_total[k] = total_slots[-1]
        node_total: dict[int, int] = {}
        if not scaled:  # every marginal of a component sums to that component's total
            for v, k in tree.home.items():
                while tree.parent[k] >= 0:
                    k = tree.parent[k]
                node_total[v] = root_total[k]
        return _Program(
            hard=hard,
            soft=soft,
            factors=tuple(factors),
            n_inputs=n_inputs,
            steps=steps,
            n_slots=next_slot,
            marginal_slots=marginal_slots,
            joint_slots=joint_slots,
            total_slots=total_slots,
            constant_nodes=tuple(constant_nodes),
            constants=constants,
            einsum_out=einsum_out,
            node_total=node_total,
            tabulated=tabulated,
            batched=slots_batched,
            big=big,
            scaled=scaled,
            cliques=list(tree.cliques),
        )

    # ---- queries -------------------------------------------------------------------------
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
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return self._query(evidence, overrides, raise_on_impossible)

    def _query(
        self,
        evidence: Mapping[str, np.ndarray],
        overrides: Mapping[str, np.ndarray] | None,
        raise_on_impossible: bool,
    ) -> BatchResult:
        tables = list(self.cpts.values())
        batched_nodes = set()
        size = 1
        for n, t in (overrides or {}).items():
            i = self._index[n]
            t = np.asarray(t, dtype=float)
            tables[i] = t
            if t.ndim == len(self._family[i]) + 1:
                batched_nodes.add(i)
                size = max(size, t.shape[0])
        hard: dict[int, int] = {}
        hard_weight = 1.0
        soft: dict[int, np.ndarray] = {}
        soft_logs: list[np.ndarray] = []
        for n, a in evidence.items():
            i = self._index[n]
            a = np.asarray(a, dtype=float)
            if a.ndim == 1:
                a = a[None, :]
            if a.shape[-1] != self._card[i]:
                raise InputError(f"evidence for {n!r} has {a.shape[-1]} entries, needs "
                                 f"{self._card[i]}")
            first = a[0]
            same = a.shape[0] == 1 or bool((a == first).all())
            if same:
                nz = first.nonzero()[0]
                if len(nz) == 1:
                    hard[i] = int(nz[0])
                    hard_weight *= float(first[nz[0]])
                    continue
                if len(nz) == len(first) and (first == first[0]).all():
                    hard_weight *= float(first[0])  # flat likelihood: no information
                    continue
            size = max(size, a.shape[0])
            # scaling a likelihood row changes nothing but P(e): keep its max at 1
            peak = a[:, 0].copy()
            for j in range(1, a.shape[1]):  # column by column: faster than max(axis=1)
                np.maximum(peak, a[:, j], out=peak)
            ok = peak > 0
            soft[i] = a / np.where(ok, peak, 1.0)[:, None]
            soft_logs.append(np.where(ok, np.log(np.where(ok, peak, 1.0)), -np.inf))
        log_extra = (math.log(hard_weight) if hard_weight > 0 else -math.inf) + sum(
            soft_logs, np.zeros(1)
        )
        hard_key = tuple(sorted(hard))
        soft_key = tuple(sorted(soft))
        big = size >= BIG
        out = np.empty((size, self._total_states))
        joints = {
            s: np.empty((size, *(self._card[u] for u in s))) for s in self._joint_idx
        }
        log_pe = np.empty(size)
        blocks = range(0, size, BLOCK) if big and not batched_nodes else [0]
        step = BLOCK if big and not batched_nodes else size
        frozen = frozenset(batched_nodes)

        buffers: dict[int, np.ndarray] | None = {} if big and not batched_nodes else None

        def run(start: int) -> None:
            stop = min(size, start + step)
            ev = {i: (a[start:stop] if a.shape[0] > 1 else a) for i, a in soft.items()}
            if buffers is not None and stop - start < step:
                # the last block is padded to full size, so every block reuses the buffers
                pad = step - (stop - start)
                ev = {i: np.concatenate([a, np.ones((pad, a.shape[1]))]) for i, a in ev.items()}
                o = np.empty((step, out.shape[1]))
                js = {s: np.empty((step, *j.shape[1:])) for s, j in joints.items()}
                lp = np.empty(step)
                self._run_block(hard, ev, tables, frozen, big, step, o, js, lp, hard_key,
                                soft_key, buffers)
                out[start:stop] = o[: stop - start]
                for s, j in joints.items():
                    j[start:stop] = js[s][: stop - start]
                log_pe[start:stop] = lp[: stop - start]
                return
            self._run_block(
                hard, ev, tables, frozen, big, stop - start,
                out[start:stop], {s: j[start:stop] for s, j in joints.items()},
                log_pe[start:stop], hard_key, soft_key, buffers,
            )

        for start in blocks:
            run(start)
        log_pe += log_extra
        return self._finish(out, joints, log_pe, raise_on_impossible)

    def query_codes(
        self,
        codes: Mapping[str, np.ndarray],
        raise_on_impossible: bool = True,
        out: np.ndarray | None = None,
    ) -> BatchResult:
        """Like :meth:`query` for hard evidence given as state indices per row (-1: unknown).

        The fast path for big tables of findings: each block's likelihoods are gathered
        straight into the engine's layout from the integer codes, so no ``(rows, states)``
        float arrays are built for the evidence. ``out`` (``(rows, all states)``, nodes in
        network order) receives the marginals when given.
        """
        codes = {n: np.asarray(c) for n, c in codes.items()}
        size = len(next(iter(codes.values()))) if codes else 1
        hard: dict[int, int] = {}
        varying: dict[int, np.ndarray] = {}
        for n, c in codes.items():
            i = self._index[n]
            lo, hi = (int(c.min()), int(c.max())) if c.size else (-1, -1)
            if hi >= self._card[i] or lo < -1:
                raise InputError(f"codes for {n!r} must be -1 or below {self._card[i]}")
            if hi < 0:
                continue  # never observed
            if lo == hi:
                hard[i] = lo  # the same state in every row
            else:
                varying[i] = c
        tree = self._tree(tuple(sorted(hard)))
        width = sum(math.prod(self._card[u] for u in c) for c in tree.cliques)
        if size >= BIG and varying and width > ROW_BY_ROW:
            return self._codes_row_by_row(codes, raise_on_impossible, out)
        if size < BIG or not varying:
            lik = {}
            for i, c in varying.items():
                lik[self.names[i]] = self._code_table(i)[:, c].T
            for i, k in hard.items():
                lik[self.names[i]] = self._eye[i][k]
            res = self.query(lik, raise_on_impossible=raise_on_impossible)
            if out is not None:
                for n, (o, k) in zip(self.names, self._spans):  # noqa: B905
                    out[:, o : o + k] = res.marginals[n]
            return res
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            hard_key = tuple(sorted(hard))
            soft_key = tuple(sorted(varying))
            if out is None:  # column-major: each block writes contiguous state rows
                out = np.empty((self._total_states, size)).T
            joints = {s: np.empty((size, *(self._card[u] for u in s))) for s in self._joint_idx}
            log_pe = np.empty(size)
            buffers: dict[int, np.ndarray] = {}
            tables = list(self.cpts.values())
            pad_to = BLOCK
            # each tabulated message's combined code, for all rows at once (padded)
            program = self._program(hard_key, soft_key, frozenset(), True, False)
            padded = -(-size // BLOCK) * BLOCK
            # codes as column indices of the code tables (-1 -> the ones column), padded
            prime: dict[int, np.ndarray] = {}
            for u, c in varying.items():
                prime[u] = np.full(padded, self._card[u], dtype=np.intp)
                prime[u][:size] = np.where(c < 0, self._card[u], c)
            tab_codes: dict[int, np.ndarray] = {}
            for k, tab in program.tabulated.items():
                code = np.zeros(padded, dtype=np.intp)
                radix = 1
                for u in tab.nodes:
                    code += prime[u] * radix
                    radix *= self._card[u] + 1
                tab_codes[k] = code
            for start in range(0, size, BLOCK):
                stop = min(size, start + BLOCK)
                n_rows = stop - start
                # (card, rows): the big layout, gathered straight from the codes
                ev = {i: self._code_tables[i].take(c[start : start + pad_to], axis=1)
                      for i, c in prime.items()}
                o = (np.empty((self._total_states, pad_to)).T if n_rows < pad_to
                     else out[start:stop])
                js = {s: np.empty((pad_to, *j.shape[1:])) for s, j in joints.items()}
                lp = np.empty(pad_to)
                parts = {k: c[start : start + pad_to] for k, c in tab_codes.items()}
                self._run_block(hard, ev, tables, frozenset(), True, pad_to, o, js, lp,
                                hard_key, soft_key, buffers, transposed=True,
                                block_codes=parts)
                if n_rows < pad_to:
                    out[start:stop] = o[:n_rows]
                for s, j in joints.items():
                    j[start:stop] = js[s][:n_rows]
                log_pe[start:stop] = lp[:n_rows]
            return self._finish(out, joints, log_pe, raise_on_impossible)

    def _codes_row_by_row(
        self, codes: Mapping[str, np.ndarray], raise_on_impossible: bool, out: np.ndarray | None
    ) -> BatchResult:
        """Wide networks: one query per distinct row, each slicing its own findings out.

        A batch shares one junction tree, so rows observed on different nodes all pay for
        the unobserved network's cliques; alone, each row's findings shrink its tree.
        """
        names = list(codes)
        matrix = np.column_stack([codes[n] for n in names]) if names else np.zeros((1, 0))
        size = matrix.shape[0]
        distinct, inverse = np.unique(matrix, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        marg = np.empty((len(distinct), self._total_states))
        joints = {s: np.empty((len(distinct), *(self._card[u] for u in s)))
                  for s in self._joint_idx}
        log_pe = np.empty(len(distinct))
        for r, row in enumerate(distinct):
            ev = {n: self._eye[self._index[n]][k] for n, k in zip(names, row) if k >= 0}  # noqa: B905
            res = self.query(ev, raise_on_impossible=False)
            for n, (o, k) in zip(self.names, self._spans):  # noqa: B905
                marg[r, o : o + k] = res.marginals[n][0]
            for j, s in enumerate(self._joint_idx):
                joints[s][r] = res.joints[self.joint_sets[j]][0]
            p = res.evidence_probability[0]
            log_pe[r] = math.log(p) if p > 0 else -math.inf
        if out is None:
            out = np.empty((size, self._total_states))
        out[...] = marg[inverse]
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._finish(out, {s: j[inverse] for s, j in joints.items()},
                                log_pe[inverse], raise_on_impossible)

    def _tab_plan(
        self,
        program: _Program,
        slots: list,
        buffers: dict,
        block_codes: Mapping[int, np.ndarray] | None,
    ) -> tuple[set[int], dict[int, object]]:
        """Steps to skip and, at each tabulated message's last step, its gather.

        ``block_codes[k]`` is the block's combined code of tabulated message ``k``.
        """
        if block_codes is None or not program.tabulated:
            return set(), {}
        plan = buffers.get("tab-plan")
        if plan is None:
            skip = {i for tab in program.tabulated.values() for i in tab.steps}
            plan = buffers["tab-plan"] = ({}, skip)
        tables, skip = plan
        gathers: dict[int, object] = {}
        for k, tab in program.tabulated.items():
            code = block_codes[k]

            def gather(k: int = k, tab: _Tab = tab, code: np.ndarray = code) -> np.ndarray:
                table = tables.get(k)
                if table is None:  # once per query, when its inputs are ready
                    table = tables[k] = self._tabulate(program, tab, slots, tables)
                return np.take(table, code, axis=-1)

            gathers[tab.steps[-1]] = gather
        return skip, gathers

    def _tabulate(
        self, program: _Program, tab: _Tab, slots: list, tables: Mapping[int, np.ndarray]
    ) -> np.ndarray:
        """The message for every combination of its findings' codes: ``(*sep, combos)``."""
        combos = math.prod(self._card[u] + 1 for u in tab.nodes)
        digit = {}
        radix = 1
        for u in tab.nodes:
            digit[u] = (np.arange(combos) // radix) % (self._card[u] + 1)
            radix *= self._card[u] + 1
        involved = sorted({u for _, sc in tab.own for u in sc}
                          | {u for _, _, sc in tab.children for u in sc} | set(tab.sep))
        letter = {u: _LETTERS[i] for i, u in enumerate(involved)}
        n_factors = len(program.factors)
        subs, ops = [], []
        for sl, sc in tab.own:
            if sl >= n_factors:  # a coded finding: its code table, one column per combination
                u = program.soft[sl - n_factors]
                subs.append(letter[u] + BATCH)
                ops.append(self._code_tables[u][:, digit[u]])
            else:
                subs.append("".join(letter[u] for u in sc))
                ops.append(slots[sl])
        for c, sl, sc in tab.children:
            if c in tables:  # its own table, re-indexed by this message's combinations
                child = program.tabulated[c]
                idx = np.zeros(combos, dtype=np.intp)
                r = 1
                for u in child.nodes:
                    idx += digit[u] * r
                    r *= self._card[u] + 1
                subs.append("".join(letter[u] for u in sc) + BATCH)
                ops.append(np.take(tables[c], idx, axis=-1))
            else:  # no finding below it: the same for every row
                subs.append("".join(letter[u] for u in sc))
                ops.append(slots[sl])
        out = "".join(letter[u] for u in tab.sep) + BATCH
        return np.einsum(",".join(subs) + "->" + out, *ops, optimize=True)

    def _code_table(self, i: int) -> np.ndarray:
        """``(card, card + 1)``: column k is state k's one-hot, the last column all ones."""
        return self._code_tables[i]

    def _finish(
        self,
        out: np.ndarray,
        joints: dict[tuple[int, ...], np.ndarray],
        log_pe: np.ndarray,
        raise_on_impossible: bool,
    ) -> BatchResult:
        p_e = np.exp(log_pe)
        bad = ~np.isfinite(log_pe) | np.isnan(out).any(axis=1)
        if bad.any():
            if raise_on_impossible:
                raise ImpossibleEvidenceError(np.flatnonzero(bad).tolist())
            out[bad] = np.nan
            p_e[bad] = 0.0
            for j in joints.values():
                j[bad] = np.nan
        marginals = {n: out[:, o : o + k] for n, (o, k) in zip(self.names, self._spans)}  # noqa: B905
        return BatchResult(
            marginals=marginals,
            joints={self.joint_sets[k]: joints[s] for k, s in enumerate(self._joint_idx)},
            evidence_probability=p_e,
        )

    def _run_block(
        self,
        hard: Mapping[int, int],
        ev: Mapping[int, np.ndarray],
        tables: list[np.ndarray],
        batched_nodes: frozenset[int],
        big: bool,
        size: int,
        out: np.ndarray,
        joints: Mapping[tuple[int, ...], np.ndarray],
        log_pe: np.ndarray,
        hard_key: tuple[int, ...],
        soft_key: tuple[int, ...],
        buffers: dict[int, np.ndarray] | None = None,
        transposed: bool = False,
        block_codes: Mapping[int, np.ndarray] | None = None,
    ) -> None:
        """Run one block of rows, filling ``out`` (normalised marginals), joints and log P(e).

        ``buffers`` (big batches) keeps each einsum's output array from block to block: no
        allocation, no page faults, and the memory stays in cache.
        """
        for scaled in (False, True):
            program = self._program(hard_key, soft_key, batched_nodes, big, scaled)
            slots = self._inputs(program, hard, ev, tables, transposed)
            logs = np.zeros(size)
            if scaled:  # every table at peak 1 too: products of tiny entries stay in range
                for k, (v, _, batched) in enumerate(program.factors):
                    if v in program.constant_nodes:
                        continue
                    t = slots[k]
                    if batched:
                        axes = tuple(range(t.ndim - 1)) if program.big else tuple(
                            range(1, t.ndim)
                        )
                        peak = t.max(axis=axes, keepdims=True)
                        slots[k] = t / np.where(peak > 0, peak, 1.0)
                        logs += np.log(peak.reshape(-1))
                    else:
                        peak = float(t.max())
                        if peak > 0:
                            slots[k] = t / peak
                        logs += math.log(peak) if peak > 0 else -math.inf
            if buffers is not None and not scaled:
                spec = program.einsum_out
                skip, gathers = self._tab_plan(program, slots, buffers, block_codes)
                for idx, (fn, o, ins) in enumerate(program.steps):
                    if idx in skip:
                        if idx in gathers:
                            slots[o] = gathers[idx]()
                        continue
                    at = spec.get(o)
                    if at is None:
                        slots[o] = fn(*[slots[i] for i in ins])
                        continue
                    buf = buffers.get(o)
                    if buf is None:
                        buf = buffers[o] = np.empty(at[1])
                    slots[o] = _einsum(at[0], *[slots[i] for i in ins], out=buf)
            else:
                for fn, o, ins in program.steps:
                    slots[o] = fn(*[slots[i] for i in ins])
            if size == 1:  # one row: plain floats, no array bookkeeping
                lg = 0.0
                for v in program.constant_nodes:
                    c = float(slots[v]) if slots[v].ndim == 0 else float(slots[v].sum())
                    lg += math.log(c) if c > 0 else -math.inf
                for s in program.total_slots:
                    c = float(slots[s].sum())
                    lg += math.log(c) if c > 0 else (-math.inf if c == 0 else math.nan)
                logs += lg
            else:
                for v in program.constant_nodes:
                    logs += np.log(np.reshape(slots[v], (-1,)))
                for s in program.total_slots:
                    t = self._shape_rows(program, s, slots[s], size)
                    logs += np.log(t.reshape(size, -1).sum(axis=1))
            if scaled or bool(np.all(logs > LOG_TINY)):
                break
        log_pe[:] = logs
        self._write(program, slots, hard, size, out, joints)

    def _inputs(
        self,
        program: _Program,
        hard: Mapping[int, int],
        ev: Mapping[int, np.ndarray],
        tables: list[np.ndarray],
        transposed: bool = False,
    ) -> list:
        slots: list = [None] * program.n_slots
        for k, c in program.constants:
            slots[k] = c
        for k, (v, axes, batched) in enumerate(program.factors):
            t = tables[v]
            if axes:
                fam = self._family[v]
                idx = [slice(None)] * (len(fam) + batched)
                for a in axes:
                    idx[a + batched] = hard[fam[a]]
                t = t[tuple(idx)]
            if batched and program.big:
                t = np.ascontiguousarray(np.moveaxis(t, 0, -1))
            slots[k] = t
        base = len(program.factors)
        for k, v in enumerate(program.soft):
            a = ev[v]
            slots[base + k] = np.ascontiguousarray(a.T) if program.big and not transposed else a
        return slots

    def _write(
        self,
        program: _Program,
        slots: list,
        hard: Mapping[int, int],
        size: int,
        out: np.ndarray,
        joints: Mapping[tuple[int, ...], np.ndarray],
    ) -> None:
        batched = program.batched
        big = program.big
        if big:  # state-major: contiguous rows when ``out`` is a column-major (F-order) array
            block = out.T
            totals = program.node_total
            inverse = {}
            for t in set(totals.values()):  # one division per component, not per state
                a = slots[t]
                a = a.reshape(-1, size).sum(axis=0) if batched[t] else float(np.sum(a))
                inverse[t] = 1.0 / a
            for v, (o, k) in enumerate(self._spans):
                slot = program.marginal_slots.get(v)
                if slot is None:
                    block[o : o + k] = self._eye[v][hard[v]][:, None]
                elif totals:
                    a = slots[slot]
                    np.multiply(a if batched[slot] else a[:, None], inverse[totals[v]],
                                out=block[o : o + k])
                else:
                    a = slots[slot]
                    block[o : o + k] = a if batched[slot] else a[:, None]
            if not totals:
                block /= np.repeat(
                    np.add.reduceat(block, self._offsets, axis=0), self._card, axis=0
                )
        for v, (o, k) in enumerate(self._spans if not big else ()):
            slot = program.marginal_slots.get(v)
            if slot is None:
                out[:, o : o + k] = self._eye[v][hard[v]]
            else:
                a = slots[slot]
                out[:, o : o + k] = a.T if big and batched[slot] else a
        if not big:  # all marginals side by side: one reduction and one division for the lot
            out /= np.repeat(np.add.reduceat(out, self._offsets, axis=1), self._card, axis=1)
        for js, target in joints.items():
            free = tuple(u for u in js if u not in hard)
            target[:] = 0.0
            if free:
                slot = program.joint_slots[free]
                j = self._shape_rows(program, slot, slots[slot], size)
                j = j / j.reshape(size, -1).sum(axis=1).reshape((-1,) + (1,) * len(free))
            else:
                j = np.ones((size,))
            idx: list = [slice(None)]
            for u in js:
                idx.append(hard[u] if u in hard else slice(None))
            target[tuple(idx)] = j

    def _shape_rows(self, program: _Program, slot: int, a: np.ndarray, size: int) -> np.ndarray:
        if program.batched.get(slot):
            return np.moveaxis(a, -1, 0) if program.big else a
        return np.broadcast_to(a, (size, *np.shape(a)))

    # ---- most probable explanation ------------------------------------------------------
    def mpe(
        self, evidence: Mapping[str, np.ndarray], nodes: Sequence[str] | None = None
    ) -> tuple[dict[str, int], float]:
        """The jointly most probable states given one evidence row, and their posterior.

        With ``nodes=None`` this is the most probable explanation over every unobserved
        node, by max-product on the junction tree. With a subset of nodes it is the most
        probable configuration of that subset with the others summed out (marginal MAP),
        found exactly by one batched query over the subset's configurations. Returns state
        indices and P(states | evidence).
        """
        lik = {n: np.asarray(a, dtype=float).reshape(-1) for n, a in evidence.items()}
        if nodes is None:
            return self._max_product(lik)
        nodes = list(nodes)
        free = [n for n in nodes if n not in lik or np.count_nonzero(lik[n]) > 1]
        fixed = {n: int(np.argmax(lik[n])) for n in nodes if n not in free}
        if not free:
            return fixed, 1.0
        count = math.prod(self.cards[n] for n in free)  # counted before any is built
        if count > MAX_MAP_CONFIGURATIONS:
            raise InputError(
                f"the most probable states of {len(free)} nodes together would mean scoring "
                f"{count:,} configurations; at most {MAX_MAP_CONFIGURATIONS:,} are allowed "
                "(pass nodes=None for the most probable explanation of every unobserved node)"
            )
        shape = tuple(self.cards[n] for n in free)
        pe = self.query(lik).evidence_probability[0]
        best, best_p = 0, -1.0
        for start in range(0, count, MAP_BLOCK):  # in blocks: memory stays small at the limit
            flat = np.arange(start, min(start + MAP_BLOCK, count))
            codes = np.unravel_index(flat, shape)
            batch = {n: np.broadcast_to(a, (len(flat), len(a))) for n, a in lik.items()}
            for k, n in enumerate(free):
                col = np.eye(self.cards[n])[codes[k]]
                batch[n] = col * batch[n] if n in batch else col
            joint = self.query(batch, raise_on_impossible=False).evidence_probability
            if np.isnan(joint).all():
                continue
            i = int(np.nanargmax(joint))
            if joint[i] > best_p:
                best, best_p = start + i, float(joint[i])
        state = np.unravel_index(best, shape)
        out = {n: int(state[k]) for k, n in enumerate(free)}
        out.update(fixed)
        return out, best_p / pe

    def _max_product(self, lik: Mapping[str, np.ndarray]) -> tuple[dict[str, int], float]:
        hard = {self._index[n]: int(np.argmax(a)) for n, a in lik.items()
                if np.count_nonzero(a) == 1}
        soft = {self._index[n]: a / a.max() for n, a in lik.items()
                if self._index[n] not in hard}
        tree = self._tree(tuple(sorted(hard)))
        hs = set(hard)
        # clique tables: product of their factors (tables sliced at hard evidence)
        table_of = []
        for k, clique in enumerate(tree.cliques):
            pos = {u: i for i, u in enumerate(clique)}
            t = np.ones(tuple(self._card[u] for u in clique))
            for v, h in tree.factor_home.items():
                if h != k:
                    continue
                fam = self._family[v]
                f = self.cpts[self.names[v]][tuple(hard[u] if u in hs else slice(None)
                                                   for u in fam)]
                scope = [u for u in fam if u not in hs]
                t = t * _expand(f, scope, pos)
            for v, a in soft.items():
                if tree.home[v] == k:
                    t = t * _expand(a, [v], pos)
            table_of.append(t)
        const = 1.0
        for v in hard:
            if all(u in hs for u in self._family[v]):
                const *= float(self.cpts[self.names[v]][tuple(hard[u] for u in self._family[v])])
        # collect: max-marginals towards the roots, each normalised (log scale kept)
        logscale = math.log(const) if const > 0 else -math.inf
        up: dict[int, np.ndarray] = {}
        seps: dict[int, list[int]] = {}
        for k in tree.collect:
            clique = tree.cliques[k]
            pos = {u: i for i, u in enumerate(clique)}
            t = table_of[k]
            for c in tree.children[k]:
                t = t * _expand(up[c], seps[c], pos)
            table_of[k] = t
            p = tree.parent[k]
            if p >= 0:
                sep = [u for u in clique if u in set(tree.cliques[p])]
                seps[k] = sep
                axes = tuple(i for i, u in enumerate(clique) if u not in sep)
                m = t.max(axis=axes) if axes else t
                top = float(m.max())
                if top <= 0:
                    raise ImpossibleEvidenceError([0])
                up[k] = m / top
                logscale += math.log(top)
        assign: dict[int, int] = dict(hard)
        for k in reversed(tree.collect):
            clique = tree.cliques[k]
            t = table_of[k]
            idx = tuple(assign[u] if u in assign else slice(None) for u in clique)
            sub = t[idx]
            if tree.parent[k] < 0:
                top = float(sub.max())
                if top <= 0:
                    raise ImpossibleEvidenceError([0])
                logscale += math.log(top)
            free = [u for u in clique if u not in assign]
            if free:
                at = np.unravel_index(int(np.argmax(sub)), sub.shape)
                assign.update(zip(free, map(int, at), strict=True))
        p_e = self.query(lik).evidence_probability[0]
        states = {self.names[u]: s for u, s in assign.items()}
        return states, float(math.exp(logscale) / p_e) if p_e > 0 else math.nan


def _expand(f: np.ndarray, scope: Sequence[int], pos: Mapping[int, int]) -> np.ndarray:
    """Reshape a factor over ``scope`` to broadcast against a clique table laid out by ``pos``."""
    order = sorted(range(len(scope)), key=lambda i: pos[scope[i]])
    f = np.transpose(f, order) if order != list(range(len(scope))) else f
    shape = [1] * len(pos)
    for i in order:
        shape[pos[scope[i]]] = f.shape[order.index(i)]
    return f.reshape(shape)
