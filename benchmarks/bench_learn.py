"""Learning: speed side by side with pgmpy (issue 5), the recovery curve and the import and
page timings of issue 11. Not a test.

Speed rows (pgmpy learns full tables, so these rows do too: ``keep_form=False``):
* Dirichlet refit of 100 000 complete cases of the shipped network: ours against pgmpy's
  ``DiscreteBayesianNetwork.fit`` with ``DiscreteMLE`` and with ``DiscreteBayesianEstimator``
  given the same Dirichlet pseudo-counts (N·p); the largest difference is printed.
* EM with the three causes and ``technique_breakdown`` hidden in every case: ours on 10 000
  cases to convergence (accelerated, and textbook EM for reference); pgmpy's ``DiscreteEM``
  expands every distinct row over all 16 hidden combinations in pandas and needs ~4 s per
  iteration on 1 000 rows here, so it is capped: both run exactly 3 plain EM iterations on
  the same 1 000 cases, and a 10 000-case iteration of pgmpy is extrapolated linearly in the
  number of distinct rows (marked *).

Recovery (issue 11): the shipped default with perturbed numbers (still passing every
behaviour check) is the truth; N cases are sampled from it, with 0 % or 20 % of the symptom
answers blank, and the *default* is refitted from them through the service's refit (canonical
forms kept, behaviour-check hold-back on). Printed per N: the weighted mean absolute error of
the tables (columns weighted by how often they occur under the truth), the mean and largest
noisy-OR link error, and how many of the seeds were held back. Means over 3 seeds.

Scale (issue 11): importing 200,000 cases through ``Clinic.import_cases`` (median of 3), and
a rerun of the Cases page with 200,000 cases stored (AppTest, median of 5).
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

from common import Table, fmt_time, machine, median_time  # noqa: E402

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
    t_ours = median_time(lambda: DirichletRefit(cal, keep_form=False).fit(data), 5)
    t_mle_ours = median_time(
        lambda: DirichletRefit(cal, confidence=0.0, keep_form=False).fit(data), 5)
    t_canonical = median_time(lambda: DirichletRefit(cal).fit(data), 3)
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
    ours = DirichletRefit(cal, keep_form=False).fit(data).calibration_
    ours_mle = DirichletRefit(cal, confidence=0.0, keep_form=False).fit(data)
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
    table.add(f"  same prior, noisy-OR/MAX kept canonical, {rows:,} cases", t_canonical, "",
              None, "", None, "activation EM per canonical node")

    # ---- EM with hidden causes --------------------------------------------------------------
    n_em = 10_000
    cases = with_missing(sample_cases(cal, n_em, seed=2), dict.fromkeys(HIDDEN, 1.0), seed=3)
    t_em, em = once(lambda: EMRefit(cal, keep_form=False).fit(cases))
    t_plain, plain = once(lambda: EMRefit(cal, accelerate=False, keep_form=False).fit(cases))
    t_canon, canon = once(lambda: EMRefit(cal).fit(cases))
    table.add(f"EM to convergence, {n_em:,} cases, 4 hidden", t_em, "", None, "≤ 10 s", None,
              f"{em.n_iter_} M-steps, {em.n_patterns_:,} distinct rows, "
              f"converged={em.converged_}", max_seconds=10.0)
    table.add("  same, textbook EM (no SQUAREM)", t_plain, "", None, "", None,
              f"{plain.n_iter_} M-steps, converged={plain.converged_}, log-lik "
              f"{plain.log_likelihood_:.1f} vs {em.log_likelihood_:.1f}")
    table.add("  same, noisy-OR/MAX kept canonical", t_canon, "", None, "", None,
              f"{canon.n_iter_} M-steps, converged={canon.converged_}")

    small_rows, iters = 1_000, 3
    small = cases.head(small_rows)
    t_small = median_time(
        lambda: EMRefit(cal, max_iter=iters, tol=0.0, accelerate=False,
                        keep_form=False).fit(small), 3
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
    recovery()
    scale()


# ---- issue 11: the recovery curve ------------------------------------------------------------
RECOVERY_N = (100, 300, 1_000, 2_000, 3_000, 10_000)
RECOVERY_SEEDS = 3


def recovery() -> None:
    """Print the recovery table (see the module docstring)."""
    from model.learning.recovery import column_weights, link_errors, perturbed, weighted_mae
    from model.service.behaviour import CheckEvaluator
    from model.service.refit import refit

    base = load_calibration()
    evaluator = CheckEvaluator(base)

    def plausible(cal) -> bool:
        values = evaluator.values({n: cal.cpt(n) for n in cal.nodes})
        return bool((evaluator.gaps(values)[0] > 0).all())

    truth = perturbed(base, 0, accept=plausible)
    weights = column_weights(truth)
    symptoms = [n for n, node in base.nodes.items() if node.role == "symptom"]
    start_links = list(link_errors(base, truth).values())
    print("\n## Recovery of a known network (issue 11)\n")
    print(f"Truth: the default with perturbed numbers; before any case the default is "
          f"{weighted_mae(base, truth, weights):.3f} off (weighted MAE) and its noisy-OR "
          f"links {np.mean(start_links):.3f} on average ({max(start_links):.3f} at most). "
          f"Means over {RECOVERY_SEEDS} seeds.\n")
    print("| N | weighted MAE, complete | weighted MAE, 20 % symptoms blank | noisy-OR link "
          "error mean / max (complete) | held back (of seeds) | refit time |")
    print("|---|---|---|---|---|---|")
    for n in RECOVERY_N:
        full, blank, means, maxes, held, times = [], [], [], [], 0, []
        for seed in range(RECOVERY_SEEDS):
            cases = sample_cases(truth, n, seed=seed)
            t0 = time.perf_counter()
            result = refit(base, cases, folds=0)
            times.append(time.perf_counter() - t0)
            full.append(weighted_mae(result.calibration, truth, weights))
            links = list(link_errors(result.calibration, truth).values())
            means.append(float(np.mean(links)))
            maxes.append(max(links))
            held += result.held_back is not None
            blanked = with_missing(cases, dict.fromkeys(symptoms, 0.2), seed=seed + 100)
            blank.append(weighted_mae(refit(base, blanked, folds=0).calibration, truth,
                                      weights))
        print(f"| {n:,} | {np.mean(full):.4f} | {np.mean(blank):.4f} | {np.mean(means):.4f} / "
              f"{np.mean(maxes):.4f} | {held} | {fmt_time(float(np.median(times)))} |")
    print("\nTargets: weighted MAE ≤ 0.02 at 2,000 complete cases, ≤ 0.03 with 20 % blanks; "
          "noisy-OR links within 0.03 at 3,000 cases (asserted on the mean link error).")


# ---- issue 11: import and page timings -------------------------------------------------------
def scale() -> None:
    """Import 200,000 cases and rerun the Cases page with them stored."""
    import os
    import statistics
    import tempfile

    from model.service.clinic import Clinic, unlock
    from model.service.settings import Settings

    cal = load_calibration()
    frame = sample_cases(cal, 200_000, seed=1).drop(columns=["technique_breakdown"])
    frame = with_missing(frame, {n: 0.2 for n, node in cal.nodes.items()
                                 if node.role == "symptom"}, seed=2)
    frame = frame.rename(columns={c: f"cause:{c}" for c in cal.causes})
    table = Table("Cases at scale (issue 11)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.csv"
        frame.to_csv(path, index=False)
        times = []
        for i in range(3):
            conf = Settings(store_path=Path(folder) / f"s{i}.sqlite", passcode="p")
            with Clinic.open(conf, unlock(conf, "p")) as clinic:
                t0 = time.perf_counter()
                clinic.import_cases(path, "bench")
                times.append(time.perf_counter() - t0)
        size = path.stat().st_size / 1e6
        table.add("import 200,000 cases (CSV → store)", float(np.median(times)), "", None,
                  "≤ 10 s", None, f"{size:.0f} MB file, median of 3", max_seconds=10.0)
        # the Cases page with the last store
        from streamlit.testing.v1 import AppTest

        os.environ["KNOWPAIN_HOME"] = folder
        os.environ["KNOWPAIN_THERAPIST_PASSCODE"] = "p"
        (Path(folder) / "s2.sqlite").rename(Path(folder) / "knowpain.sqlite")
        at = AppTest.from_file(str(ROOT / "app_pages" / "cases.py"), default_timeout=60)
        at.run()
        at.text_input(key="kp_gate_passcode").input("p")
        next(b for b in at.button if b.label == "Unlock").click()
        at.run()
        reruns = []
        for page in (2, 100, 4000, 3, 1):
            t0 = time.perf_counter()
            at.number_input(key="kp_cases_page").set_value(page).run()
            reruns.append(time.perf_counter() - t0)
        table.add("Cases page rerun, 200,000 cases stored", statistics.median(reruns), "",
                  None, "≤ 1 s", None, "AppTest, median of 5 page changes", max_seconds=1.0)
    table.print()


if __name__ == "__main__":
    print(machine())
    main()
