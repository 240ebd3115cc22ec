"""Why the causes came out as they did: per-finding contributions, Shapley values, MPE."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from model.errors import UsageError
from model.inference.batching import logit, stack_rows
from model.inference.engine import MAX_MAP_CONFIGURATIONS
from model.results import Contribution

if TYPE_CHECKING:
    from model.analysis.network import CalibratedNetwork

MAX_SHAPLEY_FINDINGS = 12


def influence_path(
    net: CalibratedNetwork, finding: str, cause: str, observed: Collection[str] = ()
) -> tuple[str, ...]:
    """The shortest chain of nodes along which a finding can move a cause.

    Only active trails count (d-separation given the other ``observed`` nodes): a chain may
    pass a collider only when the collider or one of its descendants is observed, and may
    not pass any other observed node.
    """
    given = set(observed) - {finding, cause}
    try:
        for path in nx.shortest_simple_paths(net.skeleton, finding, cause):
            if _active(net, path, given):
                return tuple(path)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        pass
    return ()


def _active(net: CalibratedNetwork, path: list[str], given: set[str]) -> bool:
    for a, b, c in zip(path, path[1:], path[2:], strict=False):
        collider = a in net.parents[b] and c in net.parents[b]
        if collider:
            if b not in given and not (net.descendants(b) & given):
                return False
        elif b in given:
            return False
    return True


def contributions(
    net: CalibratedNetwork,
    likelihoods: Mapping[str, np.ndarray],
    hard: Mapping[str, str],
    shapley: bool = False,
) -> dict[str, tuple[Contribution, ...]]:
    """Per cause, each finding's push: logit P(cause | e) - logit P(cause | e without it)."""
    findings = list(likelihoods)
    if not net.causes:
        return {}
    rows = [dict(likelihoods)] + [
        {n: v for n, v in likelihoods.items() if n != f} for f in findings
    ]
    res = net.backend.query(stack_rows(rows, net.cards))
    yes = {c: res.marginals[c][:, net.present_index(c)] for c in net.causes}
    shap = _shapley(net, likelihoods) if shapley and findings else {}
    out: dict[str, tuple[Contribution, ...]] = {}
    for c in net.causes:
        items = []
        for i, f in enumerate(findings):
            if f == c:
                continue
            without = float(yes[c][i + 1])
            items.append(
                Contribution(
                    node=f,
                    state=hard.get(f, "soft evidence"),
                    log_odds=float(logit(yes[c][0]) - logit(without)),
                    without=without,
                    path=influence_path(net, f, c, findings),
                    shapley=shap.get(c, {}).get(f),
                )
            )
        items.sort(key=lambda x: -abs(x.log_odds))
        out[c] = tuple(items)
    return out


def _shapley(
    net: CalibratedNetwork, likelihoods: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Exact Shapley values of each finding on each cause's log-odds (2^k batched queries)."""
    findings = list(likelihoods)
    k = len(findings)
    if k > MAX_SHAPLEY_FINDINGS:
        raise UsageError(
            f"exact Shapley values need 2^k queries; {k} findings is over the limit of "
            f"{MAX_SHAPLEY_FINDINGS}"
        )
    subsets = list(itertools.product((0, 1), repeat=k))
    rows = [{f: likelihoods[f] for f, bit in zip(findings, s, strict=True) if bit} for s in subsets]
    res = net.backend.query(stack_rows(rows, net.cards))
    index = {s: i for i, s in enumerate(subsets)}
    weights = [math.factorial(m) * math.factorial(k - m - 1) / math.factorial(k) for m in range(k)]
    out: dict[str, dict[str, float]] = {}
    for c in net.causes:
        v = logit(res.marginals[c][:, net.present_index(c)])
        phi = dict.fromkeys(findings, 0.0)
        for s in subsets:
            for i, f in enumerate(findings):
                if s[i]:
                    continue
                with_i = (*s[:i], 1, *s[i + 1:])
                phi[f] += weights[sum(s)] * float(v[index[with_i]] - v[index[s]])
        out[c] = phi
    return out


def most_probable_explanation(
    net: CalibratedNetwork, lik: Mapping[str, np.ndarray], joint: np.ndarray | None = None
) -> tuple[dict[str, str], float]:
    """The jointly most probable states of the hidden nodes (``net.latents``) and their
    posterior probability.

    Exact marginal MAP — every other unobserved node summed out — from ``joint`` (the hidden
    nodes' joint posterior, which the pgmpy backend computes) or by scoring each joint state
    of the hidden nodes in the engine (at most ``MAX_MAP_CONFIGURATIONS``). Beyond that, the
    hidden nodes' part of the most probable state of *every* unobserved node, by max-product
    on the junction tree, and that state's probability: a different question, but one whose
    cost grows with the tree's width rather than with the number of hidden nodes.
    """
    if not net.latents:
        return {}, 1.0
    if joint is not None:
        idx = np.unravel_index(int(np.argmax(joint)), joint.shape)
        states = {n: net.variables[n][i] for n, i in zip(net.latents, idx, strict=True)}
        return states, float(joint[idx])
    engine = net.backend.engine
    free = [n for n in net.latents if n not in lik or np.count_nonzero(lik[n]) > 1]
    if math.prod(net.cards[n] for n in free) <= MAX_MAP_CONFIGURATIONS:
        found, p = engine.mpe(lik, net.latents)
    else:
        found, p = engine.mpe(lik)
    return {n: net.variables[n][found[n]] for n in net.latents}, p
