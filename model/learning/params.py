"""One node's parameters as a learner sees them: a full table, or a leaky noisy-OR / noisy-MAX
in its own parameters — each with its Dirichlet prior, its M-step and its way back into the
calibration.

Both kinds keep their parameters as a tuple of arrays whose last axis is a probability
distribution, so the EM in :mod:`model.learning.refit` can extrapolate (SQUAREM) over any mix
of them without knowing which is which.

Tables
------
One distribution per column (parent configuration). The expert's column ``p`` with
confidence ``N_x`` (:meth:`NodeSpec.confidence_of`) is the prior Dirichlet(N_x·p); after
(expected) counts ``n`` the M-step gives ``(N_x·p + n) / (N_x + Σn)``.

Canonical models (noisy-OR, noisy-MAX)
--------------------------------------
A leaky noisy-MAX node ``Y`` (states ordered, the first one "absent") is the largest of
hidden *activations*: one from the leak, ``Z_0 ~ λ``, and one per parent, ``Z_i ~ A_i[x_i]``,
where ``A_i[off]`` is "absent" for sure. So ``P(Y ≤ y | x) = λ(≤y) · Π_i A_i[x_i](≤y)``.
The file keeps the Díez (observable) parameters: the distribution of ``Y`` when only parent
``i`` is in state ``s``, ``P_i[s](≤y) = λ(≤y) · A_i[s](≤y)``; noisy-OR is the two-state case
(``A_i[s] = (1 - c, c)`` with link probability ``c``).

The prior is Dirichlet on the hidden distributions: ``Dirichlet(N·λ₀)`` on the leak and
``Dirichlet(N_{i,s}·A₀_i[s])`` on each link, where ``λ₀`` and ``A₀`` are the expert's numbers
and the confidences come from :meth:`NodeSpec.confidence_of` with keys ``"leak"`` and
``"<parent>=<state>"``. The M-step is itself an EM over the hidden activations, on the
node's (expected) family counts ``n[x, y]``: the E-step gives for every column ``x`` and
outcome ``y`` the posterior of each activation,

    P(Z_j = z, Y = y | x) = A_j(z) · P(max of the others = y)   for z < y
                          = A_j(y) · P(max of the others ≤ y)   for z = y   (0 for z > y),

and the update is the Dirichlet posterior mean of the expected activation counts. Every
cycle raises ``Σ n·log P(y | x) + log prior``; the result stays a noisy-OR / noisy-MAX and is
written back in Díez parameters.

Confidence after a fit
----------------------
Each column's (parameter's) confidence becomes the prior's plus the cases behind it: a table
column ``N_x + Σ_y n[x, y]``; a link ``N_{i,s}`` plus the cases with parent ``i`` in state
``s``; the leak ``N`` plus every case of the family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from calibration.schema import Calibration, NodeSpec, column_key

__all__ = ["CanonicalParams", "NodeParams", "TableParams", "node_params"]

Params = tuple[np.ndarray, ...]

#: Inner (activation) EM: most cycles per M-step, and the parameter change that ends it.
INNER_MAX_ITER = 500
INNER_TOL = 1e-10


def _dirichlet_mean(alpha: np.ndarray, counts: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(α + n) / Σ(α + n) along the last axis; a row with nothing at all keeps ``fallback``."""
    total = alpha + counts
    sums = total.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / sums
    return np.where(sums > 0, out, fallback)


def _dirichlet_draws(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws of every row of ``alpha`` (last axis: one Dirichlet), shape
    ``(size, *alpha.shape)``; entries with weight 0 stay 0, and a row of all zeros (it
    carries no parameter) is one-hot on its first entry."""
    g = rng.standard_gamma(np.where(alpha > 0, alpha, 1.0), size=(size, *alpha.shape))
    g = np.where(alpha > 0, g, 0.0)
    sums = g.sum(axis=-1, keepdims=True)
    first = np.zeros_like(g)
    first[..., 0] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, g / sums, first)


def _log_prior(alpha: np.ndarray, dist: np.ndarray) -> float:
    mask = alpha > 0
    return float((alpha[mask] * np.log(np.maximum(dist[mask], 1e-300))).sum())


class NodeParams:
    """The learnable parameters of one node (see the module docstring)."""

    name: str
    kind: str

    def initial(self) -> Params:
        """The expert's parameters (the prior's centre and EM's starting point)."""
        raise NotImplementedError

    def table(self, params: Params) -> np.ndarray:
        """The full table, columns layout ``(*parent_cards, card)``."""
        raise NotImplementedError

    def m_step(self, counts: np.ndarray, params: Params, max_iter: int = INNER_MAX_ITER
               ) -> Params:
        """Parameters maximising ``Σ n·log P(y | x) + log prior`` (canonical models: up to
        ``max_iter`` activation-EM cycles from ``params``)."""
        raise NotImplementedError

    def log_prior(self, params: Params) -> float:
        """``Σ α·log θ`` of the Dirichlet prior (constants left out)."""
        raise NotImplementedError

    def confidence(self, counts: np.ndarray) -> dict[str, float]:
        """Each column's confidence after the fit: the prior's plus the cases behind it."""
        raise NotImplementedError

    def write(self, cal: Calibration, params: Params, confidence: Mapping[str, float]
              ) -> Calibration:
        """``cal`` with this node's numbers (and per-column confidence) replaced."""
        raise NotImplementedError

    def posterior(self, counts: np.ndarray, params: Params) -> Params:
        """Dirichlet parameters of the posterior given (expected) counts at ``params``."""
        raise NotImplementedError

    def draw(self, counts: np.ndarray, params: Params, size: int,
             rng: np.random.Generator) -> np.ndarray:
        """``size`` tables drawn from the (approximate) Dirichlet posterior, shape
        ``(size, *parent_cards, card)``. With hidden family members or hidden activations
        the expected counts are treated as observed, which makes the draws somewhat
        narrower than the exact posterior."""
        post = self.posterior(counts, params)
        drawn = tuple(_dirichlet_draws(a, size, rng) for a in post)
        return np.stack([self.table(tuple(d[m] for d in drawn)) for m in range(size)])


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


@dataclass
class TableParams(NodeParams):
    """A full table; ``weights`` is each column's prior confidence (shape ``parent_cards``)."""

    name: str
    prior: np.ndarray
    weights: np.ndarray
    keys: tuple[str, ...]
    kind: str = "table"

    @classmethod
    def of(cls, cal: Calibration, name: str, confidence: float | None = None) -> TableParams:
        node = cal.nodes[name]
        prior = cal.cpt(name)
        keys = tuple(column_key(c) for c in cal.columns(name))
        conf = [confidence if confidence is not None else node.confidence_of(k) for k in keys]
        weights = np.asarray(conf, dtype=float).reshape(prior.shape[:-1])
        return cls(name, prior, weights, keys)

    @property
    def alpha(self) -> np.ndarray:
        return self.weights[..., None] * self.prior

    def initial(self) -> Params:
        return (self.prior,)

    def table(self, params: Params) -> np.ndarray:
        return params[0]

    def m_step(self, counts: np.ndarray, params: Params, max_iter: int = INNER_MAX_ITER
               ) -> Params:
        return (_dirichlet_mean(self.alpha, counts, self.prior),)

    def log_prior(self, params: Params) -> float:
        return _log_prior(self.alpha, params[0])

    def posterior(self, counts: np.ndarray, params: Params) -> Params:
        return (self.alpha + counts,)

    def confidence(self, counts: np.ndarray) -> dict[str, float]:
        total = (self.weights + counts.sum(axis=-1)).ravel()
        return {k: float(v) for k, v in zip(self.keys, total, strict=True)}

    def write(self, cal: Calibration, params: Params, confidence: Mapping[str, float]
              ) -> Calibration:
        return cal.with_table(self.name, params[0], column_confidence=dict(confidence))


# ---------------------------------------------------------------------------------------------
# noisy-OR / noisy-MAX
# ---------------------------------------------------------------------------------------------


def _cumulative(dist: np.ndarray) -> np.ndarray:
    out = np.cumsum(dist, axis=-1)
    out[..., -1] = 1.0
    return out


def canonical_table(leak: np.ndarray, links: Sequence[np.ndarray]) -> np.ndarray:
    """The full table of a noisy-MAX with leak distribution ``leak`` (K,) and hidden link
    distributions ``links[i]`` (card_i, K), columns layout."""
    shape = tuple(a.shape[0] for a in links)
    cum = np.broadcast_to(_cumulative(leak), (*shape, leak.shape[-1])).copy()
    for i, a in enumerate(links):
        view = [1] * len(shape) + [leak.shape[-1]]
        view[i] = a.shape[0]
        cum = cum * _cumulative(a).reshape(view)
    return np.clip(np.diff(cum, axis=-1, prepend=0.0), 0.0, 1.0)


@dataclass
class CanonicalParams(NodeParams):
    """A leaky noisy-OR / noisy-MAX kept in its own parameters (module docstring).

    ``params`` are ``(λ, A_1, …, A_n)``: the leak distribution (K,) and one hidden link
    distribution per parent state, shape (card_i, K), whose off state is "absent" for sure.
    """

    name: str
    kind: str
    parents: tuple[str, ...]
    parent_states: tuple[tuple[str, ...], ...]
    on: tuple[np.ndarray, ...]  # per parent: bool mask of the states that have a parameter
    start: Params
    alpha: Params  # Dirichlet weights, same shapes as the parameters (0 on the off rows)
    leak_weight: float
    link_weights: tuple[np.ndarray, ...]  # per parent (card_i,), 0 on the off state

    @classmethod
    def of(cls, cal: Calibration, name: str, confidence: float | None = None
           ) -> CanonicalParams:
        node = cal.nodes[name]
        k = node.card
        leak = (np.array([1.0 - float(node.leak), float(node.leak)]) if node.cpt == "noisy_or"
                else np.asarray(node.leak, dtype=float))
        leak_cum = _cumulative(leak)

        def conf(key: str) -> float:
            return float(confidence) if confidence is not None else node.confidence_of(key)

        links, on, weights = [], [], []
        for parent in node.parents:
            states = cal.nodes[parent].states
            given = node.params[parent]
            a = np.zeros((len(states), k))
            a[:, 0] = 1.0
            mask = np.zeros(len(states), dtype=bool)
            w = np.zeros(len(states))
            for s_idx, state in enumerate(states):
                if state not in given:
                    continue
                value = given[state]
                dist = (np.array([1.0 - float(value), float(value)]) if node.cpt == "noisy_or"
                        else np.asarray(value, dtype=float))
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = np.where(leak_cum > 0, _cumulative(dist) / leak_cum, 1.0)
                ratio = np.minimum(np.maximum.accumulate(np.clip(ratio, 0.0, 1.0)), 1.0)
                ratio[-1] = 1.0
                a[s_idx] = np.diff(ratio, prepend=0.0)
                mask[s_idx] = True
                w[s_idx] = conf(f"{parent}={state}")
            links.append(a)
            on.append(mask)
            weights.append(w)
        start = (leak, *links)
        leak_weight = conf("leak")
        alpha = (leak_weight * leak, *(w[:, None] * a for w, a in zip(weights, links,
                                                                        strict=True)))
        return cls(name, node.cpt, tuple(node.parents),
                   tuple(cal.nodes[p].states for p in node.parents), tuple(on), start, alpha,
                   leak_weight, tuple(weights))

    def initial(self) -> Params:
        return self.start

    def table(self, params: Params) -> np.ndarray:
        return canonical_table(params[0], params[1:])

    def log_prior(self, params: Params) -> float:
        return sum(_log_prior(a, p) for a, p in zip(self.alpha, params, strict=True))

    def posterior(self, counts: np.ndarray, params: Params) -> Params:
        expected = self.activation_counts(counts, params)
        out = [self.alpha[0] + expected[0]]
        for i, e in enumerate(expected[1:]):
            # off rows carry no parameter: they stay "absent" (one-hot on the first state)
            out.append(np.where(self.on[i][:, None], self.alpha[i + 1] + e, 0.0))
        return tuple(out)

    def activation_counts(self, counts: np.ndarray, params: Params) -> list[np.ndarray]:
        """Expected activation counts: leak (K,), and per parent (card_i, K)."""
        leak, links = params[0], params[1:]
        n_par = len(links)
        k = leak.shape[-1]
        shape = counts.shape[:-1]
        cums = [_cumulative(leak).reshape((1,) * n_par + (k,))]
        for i, a in enumerate(links):
            view = [1] * n_par + [k]
            view[i] = a.shape[0]
            cums.append(_cumulative(a).reshape(view))
        dists = [leak.reshape((1,) * n_par + (k,))]
        for i, a in enumerate(links):
            view = [1] * n_par + [k]
            view[i] = a.shape[0]
            dists.append(a.reshape(view))
        total = np.ones((*shape, k))
        for c in cums:
            total = total * c
        p_y = np.diff(total, axis=-1, prepend=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(p_y > 0, counts / p_y, 0.0)  # n[x, y] / P(y | x)
        z_le_y = np.tril(np.ones((k, k)))  # [y, z]: z <= y
        out = []
        for j in range(n_par + 1):
            others = np.ones((*shape, k))
            for m, c in enumerate(cums):
                if m != j:
                    others = others * c
            others_pmf = np.diff(others, axis=-1, prepend=0.0)
            dist = np.broadcast_to(dists[j], (*shape, k))
            # joint[x, y, z] = P(Z_j = z, Y = y | x)
            joint = dist[..., None, :] * others_pmf[..., :, None] * np.tril(z_le_y, -1)
            diag = dist * others  # z = y
            joint = joint + np.einsum("...y,yz->...yz", diag, np.eye(k))
            weighted = (scale[..., :, None] * joint).sum(axis=-2)  # (*shape, K) over z
            if j == 0:
                out.append(weighted.reshape(-1, k).sum(axis=0))
            else:
                axes = tuple(a for a in range(n_par) if a != j - 1)
                out.append(weighted.sum(axis=axes))
        return out

    def m_step(self, counts: np.ndarray, params: Params, max_iter: int = INNER_MAX_ITER
               ) -> Params:
        current = tuple(np.asarray(p, dtype=float) for p in params)
        if counts.sum() <= 0:
            return self.start
        # EM never leaves an exact zero (a link equal to the leak, c = 0): start such rows a
        # hair inside, so that the cases can still move them
        lifted = [_lift(current[0], np.ones(1, dtype=bool))]
        for i, a in enumerate(current[1:]):
            lifted.append(_lift(a, self.on[i]))
        current = tuple(lifted)
        for _ in range(max(1, max_iter)):
            expected = self.activation_counts(counts, current)
            leak = _dirichlet_mean(self.alpha[0], expected[0], self.start[0])
            links = []
            for i, (a, e) in enumerate(zip(current[1:], expected[1:], strict=True)):
                new = _dirichlet_mean(self.alpha[i + 1], e, a)
                new = np.where(self.on[i][:, None], new, a)  # off rows stay "absent"
                links.append(new)
            step = (leak, *links)
            change = max(float(np.abs(s - c).max()) for s, c in zip(step, current, strict=True))
            current = step
            if change < INNER_TOL:
                break
        return current

    def confidence(self, counts: np.ndarray) -> dict[str, float]:
        per_column = counts.sum(axis=-1)
        out = {"leak": self.leak_weight + float(per_column.sum())}
        for i, parent in enumerate(self.parents):
            axes = tuple(a for a in range(len(self.parents)) if a != i)
            by_state = per_column.sum(axis=axes) if axes else per_column
            for s_idx, state in enumerate(self.parent_states[i]):
                if self.on[i][s_idx]:
                    out[f"{parent}={state}"] = float(self.link_weights[i][s_idx]
                                                     + by_state[s_idx])
        return out

    def diez(self, params: Params) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
        """The Díez (observable) parameters: leak distribution and, per parent and on-state,
        the child's distribution when only that parent is on."""
        leak = params[0]
        leak_cum = _cumulative(leak)
        out: dict[str, dict[str, np.ndarray]] = {}
        for i, parent in enumerate(self.parents):
            out[parent] = {}
            for s_idx, state in enumerate(self.parent_states[i]):
                if self.on[i][s_idx]:
                    cum = leak_cum * _cumulative(params[i + 1][s_idx])
                    out[parent][state] = np.clip(np.diff(cum, prepend=0.0), 0.0, 1.0)
        return leak, out

    def links(self, params: Params) -> dict[str, float]:
        """Link probabilities ``c`` of a noisy-OR, keyed ``"<parent>=<state>"`` (and the leak)."""
        out = {"leak": float(params[0][-1])}
        for i, parent in enumerate(self.parents):
            for s_idx, state in enumerate(self.parent_states[i]):
                if self.on[i][s_idx]:
                    out[f"{parent}={state}"] = float(1.0 - params[i + 1][s_idx][0])
        return out

    def write(self, cal: Calibration, params: Params, confidence: Mapping[str, float]
              ) -> Calibration:
        node = cal.nodes[self.name]
        leak, by_parent = self.diez(params)
        if self.kind == "noisy_or":
            new_params = {p: {s: _clean(float(d[1])) for s, d in by.items()}
                          for p, by in by_parent.items()}
            new_leak: object = _clean(float(leak[1]))
        else:
            new_params = {p: {s: _distribution(d) for s, d in by.items()}
                          for p, by in by_parent.items()}
            new_leak = _distribution(leak)
        return cal.with_node(replace(node, params=new_params, leak=new_leak,
                                     column_confidence=dict(confidence)))


def _lift(dist: np.ndarray, rows: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Rows (where ``rows`` is true) with an exact zero mixed with ``eps`` of uniform."""
    arr = np.atleast_2d(dist)
    zero = (arr <= 0).any(axis=-1) & np.broadcast_to(rows, arr.shape[:-1])
    if not zero.any():
        return dist
    out = arr.copy()
    out[zero] = (1 - eps) * out[zero] + eps / arr.shape[-1]
    return out.reshape(dist.shape)


def _clean(x: float) -> float:
    """A probability rounded to 12 decimals (keeps the TOML readable; far below any tolerance)."""
    return float(round(min(max(x, 0.0), 1.0), 12))


def _distribution(d: np.ndarray) -> list[float]:
    """A distribution rounded to 12 decimals whose entries still sum to 1 exactly enough."""
    vals = [_clean(float(x)) for x in d]
    vals[0] = _clean(1.0 - math.fsum(vals[1:]))
    return vals


def node_params(cal: Calibration, name: str, *, keep_form: bool = True,
                confidence: float | None = None) -> NodeParams:
    """The learner's view of ``name``: canonical models keep their form unless
    ``keep_form=False`` (then every node is learned as a full table). ``confidence``
    overrides every column's prior confidence."""
    node: NodeSpec = cal.nodes[name]
    if keep_form and node.cpt in ("noisy_or", "noisy_max"):
        return CanonicalParams.of(cal, name, confidence)
    if node.cpt != "table":
        # a canonical node learned as a table: its column priors are the node's confidence
        cal = cal.with_table(name, cal.cpt(name))
    return TableParams.of(cal, name, confidence)
