"""Learning speed, side by side with pgmpy, as ratios from one run (issue 5). Not a test.

Rows:
* Dirichlet refit of 100 000 complete cases of the shipped network: ours against pgmpy's
  ``DiscreteBayesianNetwork.fit`` with ``DiscreteMLE`` and with ``DiscreteBayesianEstimator``
  given the same Dirichlet pseudo-counts (N·p); the largest difference is printed.
* EM with the three causes and ``technique_breakdown`` hidden in every case: ours on 10 000
  cases to convergence (accelerated, and textbook EM for reference); pgmpy's ``DiscreteEM``
  expands every distinct row over all 16 hidden combinations in pandas and needs ~4 s per
  iteration on 1 000 rows here, so it is capped: both run exactly 3 plain EM iterations on
  the same 1 000 cases, and a 10 000-case iteration of pgmpy is extrapolated linearly in the
  number of distinct rows (marked *).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import Table, machine, median_time  # noqa: E402

from calibration.loader import load_calibration  # noqa: E402
from model.inference.pgmpy_adapter import cpd_table  # noqa: E402
from model.learning.refit import DirichletRefit, EMRefit  # noqa: E402
from model.learning.sampling import sample_cases, with_missing  # noqa: E402

HIDDEN = ["technique_breakdown", "stabilizer_overload", "wrong_prime_mover", "other_cause"]




def once(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out




def main() -> None:
    warnings.simplefilter("ignore", FutureWarning)
    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    from pgmpy.models import DiscreteBayesianNetwork
    from pgmpy.parameter_estimator import DiscreteBayesianEstimator, DiscreteEM, DiscreteMLE

    cal = load_calibration()
    edges = [(p, n) for n, node in cal.nodes.items() for p in node.parents]
    state_names = {n: list(node.states) for n, node in cal.nodes.items()}
    table = Table("Learning (issue 5)")

    # ---- Dirichlet refit, complete data ---------------------------------------------------
    rows = 100_000
    data = sample_cases(cal, rows, seed=1)
    t_ours = median_time(lambda: DirichletRefit(cal).fit(data), 5)
    t_mle_ours = median_time(lambda: DirichletRefit(cal, confidence=0.0).fit(data), 5)
    t_mle, mle = once(
        lambda: DiscreteBayesianNetwork(edges).fit(
            data, estimator=DiscreteMLE(state_names=state_names)
        )
    )
    pseudo = {}
    for n, node in cal.nodes.items():
        parents = list(node.parents)
        order = [parents.index(p) for p in sorted(parents)] + [len(parents)]
        alpha = node.confidence * cal.cpt(n)
        pseudo[n] = np.transpose(alpha, order).reshape(-1, node.card).T
    t_bayes, bayes = once(
        lambda: DiscreteBayesianNetwork(edges).fit(
            data,
            estimator=DiscreteBayesianEstimator(
                state_names=state_names, prior_type="dirichlet", pseudo_counts=pseudo
            ),
        )
    )
    ours = DirichletRefit(cal).fit(data).calibration_
    ours_mle = DirichletRefit(cal, confidence=0.0).fit(data)
    diff_bayes = max(
        float(np.abs(ours.cpt(n) - cpd_table(bayes.get_cpds(n), cal.nodes[n].parents,
                                             cal.variables)).max())
        for n in cal.nodes
    )
    diff_mle = 0.0
    for n in cal.nodes:
        seen = ours_mle.counts_[n].sum(axis=-1) > 0
        theirs = cpd_table(mle.get_cpds(n), cal.nodes[n].parents, cal.variables)
        diff_mle = max(diff_mle, float(np.abs(ours_mle.calibration_.cpt(n) - theirs)[seen].max()))
    table.add(f"Dirichlet refit, {rows:,} cases", t_ours, "pgmpy Bayesian (same prior)", t_bayes,
              "≤ 1 s", None, f"max abs diff {diff_bayes:.1e}", max_seconds=1.0)
    table.add(f"ML refit (confidence 0), {rows:,} cases", t_mle_ours, "pgmpy DiscreteMLE", t_mle,
              "", None, f"max abs diff {diff_mle:.1e}")

    # ---- EM with hidden causes --------------------------------------------------------------
    n_em = 10_000
    cases = with_missing(sample_cases(cal, n_em, seed=2), dict.fromkeys(HIDDEN, 1.0), seed=3)
    t_em, em = once(lambda: EMRefit(cal).fit(cases))
    t_plain, plain = once(lambda: EMRefit(cal, accelerate=False).fit(cases))
    table.add(f"EM to convergence, {n_em:,} cases, 4 hidden", t_em, "", None, "≤ 10 s", None,
              f"{em.n_iter_} M-steps, {em.n_patterns_:,} distinct rows, "
              f"converged={em.converged_}", max_seconds=10.0)
    table.add("  same, textbook EM (no SQUAREM)", t_plain, "", None, "", None,
              f"{plain.n_iter_} M-steps, converged={plain.converged_}, log-lik "
              f"{plain.log_likelihood_:.1f} vs {em.log_likelihood_:.1f}")

    small_rows, iters = 1_000, 3
    small = cases.head(small_rows)
    t_small = median_time(
        lambda: EMRefit(cal, max_iter=iters, tol=0.0, accelerate=False).fit(small), 3
    )
    observed = small.drop(columns=HIDDEN)
    latent_net = DiscreteBayesianNetwork(edges, latents=set(HIDDEN))
    t_pg_small, _ = once(
        lambda: latent_net.copy().fit(
            observed,
            estimator=DiscreteEM(
                state_names={n: s for n, s in state_names.items() if n not in HIDDEN},
                latent_card=dict.fromkeys(HIDDEN, 2),
                max_iter=iters,
                atol=0.0,
                show_progress=False,
                seed=0,
            ),
        )
    )
    table.add(f"EM, {iters} plain iterations, {small_rows:,} cases", t_small, "pgmpy DiscreteEM",
              t_pg_small, "", None, f"capped: {iters} iterations, {small_rows:,} rows")
    small_patterns = len(observed.drop_duplicates())
    per_iter_ours = t_plain / max(plain.n_iter_ + 1, 1)
    per_iter_pg = t_pg_small / iters * em.n_patterns_ / small_patterns
    table.add(f"one EM iteration, {n_em:,} cases", per_iter_ours, "pgmpy DiscreteEM*",
              per_iter_pg, "", None, "*extrapolated from 1 000 rows by distinct rows")
    table.print()


if __name__ == "__main__":
    print(machine())
    main()
