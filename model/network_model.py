"""The :class:`Model`: one calibrated network and every question you can ask of it."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.loader import load_calibration
from model.analysis import decide, explain, uncertainty
from model.analysis.network import CalibratedNetwork
from model.analysis.triage import check_flags, screen
from model.errors import EvidenceError, ImpossibleEvidenceError, UsageError, quote
from model.inference.evidence import EvidenceInput, check_batch_frame, check_state, likelihoods
from model.inference.evidence import normalise as normalise_evidence
from model.results import Diagnosis, Posterior, SensitivityItem, Triage
from model.text.verbal import describe

if TYPE_CHECKING:
    import pandas as pd


class Model(CalibratedNetwork):
    """A calibrated discrete Bayesian network with fast exact queries and analyses.

    Build one with :func:`load_model`. Instances are read-only: recalibrating makes a new one.
    """

    # ---- lazily built pieces -------------------------------------------------------------
    @cached_property
    def network(self) -> Any:
        """The calibration as a pgmpy ``DiscreteBayesianNetwork`` (imports pgmpy on first use)."""
        from model.inference.pgmpy_adapter import build_network

        return build_network(self.variables, self.parents, self.cpts)

    # ---- helpers ---------------------------------------------------------------------------
    def _target(self, target: object, argument: str = "target") -> tuple[str, str]:
        """``"node=state"`` split and checked (a UsageError names the argument if malformed)."""
        if not isinstance(target, str) or "=" not in target:
            raise UsageError(f"{argument} must be text written node=state, e.g. "
                             f"'stabilizer_overload=yes', not {quote(target)}")
        node, _, state = target.partition("=")
        check_state(node, state, self.variables)
        return node, state

    def _evidence(self, evidence: EvidenceInput | None) -> tuple[dict, dict]:
        hard, soft = normalise_evidence(evidence, self.variables)
        return hard, likelihoods(hard, soft, self.variables)

    def _query_one(self, lik: Mapping[str, np.ndarray], hard: Mapping[str, str]):
        try:
            return self.backend.query(lik)
        except ImpossibleEvidenceError:
            shown = ", ".join(f"{n}={s}" for n, s in hard.items()) or "the soft evidence"
            raise EvidenceError(
                f"impossible evidence: {shown} cannot all be true under this calibration "
                "(a table gives it probability zero)"
            ) from None

    # ---- the public API ------------------------------------------------------------------
    def posterior(self, evidence: EvidenceInput | None = None) -> Posterior:
        """``{node: {state: p}}`` for every node not fixed by hard evidence."""
        hard, lik = self._evidence(evidence)
        res = self._query_one(lik, hard)
        return {
            n: dict(zip(self.variables[n], map(float, res.marginals[n][0]), strict=True))
            for n in self.variables
            if n not in hard
        }

    def probability(self, target: str, evidence: EvidenceInput | None = None) -> float:
        """P(node=state | evidence) for a target written ``"node=state"``."""
        node, state = self._target(target)
        hard, lik = self._evidence(evidence)
        if node in hard:
            return float(hard[node] == state)
        res = self._query_one(lik, hard)
        return float(res.marginals[node][0, self.variables[node].index(state)])

    def diagnose(
        self,
        evidence: EvidenceInput | None = None,
        flags: Mapping[str, bool] | None = None,
        *,
        shapley: bool = False,
        intervals: bool = True,
    ) -> Diagnosis:
        """Triage, cause posteriors with intervals, explanation, next questions and fixes."""
        hard, lik = self._evidence(evidence)
        answered = check_flags(flags, self.calibration)
        triage = screen(hard, answered, self.calibration)
        res = self._query_one(lik, hard)
        causes = self.cause_probabilities(res.marginals)
        steps = decide.plan(self, lik, hard, triage.level, causes, intervals=intervals)
        joint = res.joints.get(tuple(self.latents))
        mpe, mpe_p = explain.most_probable_explanation(
            self, lik, None if joint is None else joint[0])
        posterior = {
            n: dict(zip(self.variables[n], map(float, res.marginals[n][0]), strict=True))
            for n in self.variables
            if n not in hard
        }
        return Diagnosis(
            evidence=dict(hard),
            triage=triage,
            causes=causes,
            prior_causes=dict(self.prior_causes),
            cause_intervals=uncertainty.cause_intervals(self, lik) if intervals else {},
            posterior=posterior,
            fixes=steps.fixes,
            forecast=steps.forecast,
            advice=steps.advice,
            next_questions=decide.next_questions(
                self, lik, {n: m[0] for n, m in res.marginals.items()}
            ),
            explanation=explain.contributions(self, lik, hard, shapley=shapley),
            most_probable_explanation=mpe,
            mpe_probability=mpe_p,
            best_guess=self._best_guess(causes, triage),
        )

    @property
    def warning_signs(self) -> list[str]:
        """The ids of the warning-sign questions, in screen order (answer each in ``flags``)."""
        return [f.id for f in self.calibration.red_flags]

    def _best_guess(self, causes: Mapping[str, float], triage: Triage) -> str:
        if not causes or triage.withhold_estimates:
            return ""
        if triage.level == "amber":
            return ("Get assessed before your next heavy session: a warning sign means the "
                    "estimates cannot tell a training cause from an injury.")
        top = max(causes, key=causes.__getitem__)
        label = self.calibration.nodes[top].title
        return f"The most likely explanation is {label.lower()}: {describe(causes[top])}."

    def sensitivity(
        self,
        target: str,
        evidence: EvidenceInput | None = None,
        delta: float = 0.05,
        top: int | None = 15,
    ) -> list[SensitivityItem]:
        """Parameters that move P(target | evidence) most under a ±``delta`` shift.

        ``delta`` is a number from 1e-6 to 0.5; ``top`` a whole number >= 1, or None for all.
        """
        node, state = self._target(target)
        _check_delta(delta)
        _check_top(top)
        _, lik = self._evidence(evidence)
        return uncertainty.sensitivity(self, (node, state), lik, delta, top)

    def posterior_batch(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score many evidence rows at once; NaN or "" mean unknown.

        Returns one column ``node=state`` per node and state, one row per input row.
        """
        from model.inference.frames import FrameEvidenceError, posterior_frame

        df = check_batch_frame(df, self.variables)  # argument checks (see evidence.py)
        try:
            engine = getattr(self.backend, "engine", None)  # the compiled engine takes codes
            return posterior_frame(
                df, self.variables, self.backend.query,
                codes_query=getattr(engine, "query_codes", None),
            )
        except FrameEvidenceError as exc:
            raise EvidenceError(str(exc)) from None
        except ImpossibleEvidenceError as exc:
            raise EvidenceError(f"impossible evidence in row(s) {exc.rows[:10]}") from None


#: Smallest shift sensitivity() takes: below it every swing rounds to nothing.
MIN_DELTA = 1e-6


def _check_delta(delta: object) -> None:
    if (isinstance(delta, bool) or not isinstance(delta, numbers.Real)
            or not MIN_DELTA <= delta <= 0.5):
        raise UsageError(f"sensitivity(delta=...): delta must be a number from {MIN_DELTA:g} to "
                         f"0.5, the shift of each probability; got {quote(delta)}")


def _check_top(top: object) -> None:
    if top is None:
        return
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise UsageError(f"sensitivity(top=...): top must be a whole number >= 1, or None for "
                         f"every parameter; got {quote(top)}")


def load_model(path: str | Path | None = None, backend: str = "compiled") -> Model:
    """Load a calibration (the shipped default when ``path`` is None) into a :class:`Model`."""
    return Model(load_calibration(path), backend=backend)
