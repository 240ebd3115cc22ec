"""How well a refit recovers a known network: the yardstick of the recovery curve.

The experiment (used by the tests and by ``benchmarks/bench_learn.py``): take a calibration,
perturb its numbers into a known "truth" (:func:`perturbed`), sample cases from the truth,
refit the *original* calibration from them, and measure how far the refit is from the truth:

* :func:`weighted_mae` — the mean absolute error of the table entries, each column weighted by
  how often its parent configuration occurs under the truth (a column no lifter ever reaches
  cannot be learned and does not matter), averaged over nodes;
* :func:`link_errors` — for every noisy-OR node, the error of each link probability ``c``
  (the chance that one parent state alone switches the node on, leak excluded) and of the
  leak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from calibration.schema import Calibration
from model.inference.engine import CompiledNetwork
from model.learning.params import CanonicalParams, node_params

__all__ = ["column_weights", "link_errors", "perturbed", "weighted_mae"]


def perturbed(cal: Calibration, seed: int, *, mix: float = 0.3, logit_sd: float = 0.5,
              accept: Callable[[Calibration], bool] | None = None,
              attempts: int = 50) -> Calibration:
    """A copy of ``cal`` with every number moved, structure and forms kept.

    Table columns are mixed with a random distribution (``(1 - mix)·p + mix·u``, ``u`` from
    Dirichlet(2)); a canonical model's leak and links are shifted in logit space by
    ``N(0, logit_sd²)``, so a noisy-OR stays a noisy-OR with plausible sizes. With ``accept``
    the first draw (seeds ``seed``, ``seed + 1000``, …) it accepts is returned — e.g. one
    that still passes every behaviour check, as any plausible calibration of the domain must.
    """
    for attempt in range(attempts):
        rng = np.random.default_rng(seed + 1000 * attempt)
        out = cal
        for name, node in cal.nodes.items():
            model = node_params(cal, name)
            params = model.initial()
            if isinstance(model, CanonicalParams):
                new = []
                for k, a in enumerate(params):
                    z = (np.log(np.clip(a[..., 1:], 1e-9, 1.0))
                         - np.log(np.clip(a[..., :1], 1e-9, 1.0)))
                    z = z + rng.normal(0.0, logit_sd, size=z.shape)
                    e = np.concatenate([np.ones((*a.shape[:-1], 1)), np.exp(z)], axis=-1)
                    b = e / e.sum(axis=-1, keepdims=True)
                    if k > 0:  # off states stay "absent"
                        b = np.where(model.on[k - 1][:, None], b, a)
                    new.append(b)
                new_params = tuple(new)
            else:
                t = params[0]
                u = rng.dirichlet(np.full(node.card, 2.0), size=t.shape[:-1])
                new_params = ((1.0 - mix) * t + mix * u,)
            out = model.write(out, new_params, {})
            out = out.with_node(replace(out.nodes[name], column_confidence={}))
        if accept is None or accept(out):
            return out
    raise RuntimeError(f"no accepted perturbation in {attempts} attempts")


def column_weights(truth: Calibration) -> dict[str, np.ndarray]:
    """P(parent configuration) of every node under ``truth`` (shape: parent cards)."""
    parents = {n: node.parents for n, node in truth.nodes.items()}
    sets = [tuple(p) for p in parents.values() if p]
    net = CompiledNetwork(truth.variables, parents, truth.cpts(), joint_sets=sets)
    res = net.query({})
    return {n: res.joints[tuple(p)][0] if p else np.ones(()) for n, p in parents.items()}


def weighted_mae(estimate: Calibration, truth: Calibration,
                 weights: dict[str, np.ndarray] | None = None) -> float:
    """Mean over nodes of Σ_columns P(column) · mean_state |estimate - truth|."""
    weights = weights or column_weights(truth)
    per_node = []
    for n in truth.nodes:
        diff = np.abs(estimate.cpt(n) - truth.cpt(n)).mean(axis=-1)
        per_node.append(float((weights[n] * diff).sum()))
    return float(np.mean(per_node))


def link_errors(estimate: Calibration, truth: Calibration) -> dict[str, float]:
    """``{"node: parent=state" | "node: leak": |c_estimate - c_truth|}`` over the noisy-OR
    nodes of ``truth`` (an estimate whose node is no longer a noisy-OR is refused)."""
    out: dict[str, float] = {}
    for n, node in truth.nodes.items():
        if node.cpt != "noisy_or":
            continue
        if estimate.nodes[n].cpt != "noisy_or":
            raise ValueError(f"{n} is no longer a noisy-OR in the estimate")
        est = node_params(estimate, n)
        tru = node_params(truth, n)
        assert isinstance(est, CanonicalParams) and isinstance(tru, CanonicalParams)
        a, b = est.links(est.initial()), tru.links(tru.initial())
        out.update({f"{n}: {k}": abs(a[k] - b[k]) for k in b})
    return out
