"""The :class:`Model`: one calibrated network and every question you can ask of it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from calibration.loader import load_calibration
from calibration.schema import OBSERVABLE_ROLES, Calibration
from calibration.verbal_scale import describe
from model import decide, explain, uncertainty
from model.backends import Backend, make_backend
from model.evidence import EvidenceError, EvidenceInput, check_state, likelihoods
from model.evidence import normalise as normalise_evidence
from model.inference.engine import ImpossibleEvidenceError
from model.results import Diagnosis, Posterior, SensitivityItem
from model.triage import check_flags, screen
from model.twin import TwinNetwork, build_twin

if TYPE_CHECKING:
    import pandas as pd

DRAWS = 200


class Model:
    """A calibrated discrete Bayesian network with fast exact queries and analyses.

    Build one with :func:`load_model`. Instances are read-only: recalibrating makes a new one.
    """

    def __init__(self, calibration: Calibration, backend: str = "compiled") -> None:
        self.calibration = calibration
        nodes = calibration.nodes
        self.variables: dict[str, list[str]] = calibration.variables
        self.causes: list[str] = calibration.causes
        self.cards = {n: len(s) for n, s in self.variables.items()}
        self.parents = {n: list(node.parents) for n, node in nodes.items()}
        self.latents = [n for n, node in nodes.items() if node.role in ("latent", "cause")]
        self.observable = [n for n, node in nodes.items() if node.role in OBSERVABLE_ROLES]
        self.cpts = calibration.cpts()
        self.backend_name = backend
        # the compiled engine finds the MPE by itself (CompiledNetwork.mpe); only the pgmpy
        # reference needs the latents' joint for it
        wanted = (self.causes,) if backend == "compiled" else (self.causes, self.latents)
        joint_sets = [tuple(s) for s in wanted if s]
        self.backend: Backend = make_backend(
            backend, self.variables, self.parents, self.cpts, joint_sets
        )

    # ---- lazily built pieces -------------------------------------------------------------
    @cached_property
    def network(self) -> Any:
        """The calibration as a pgmpy ``DiscreteBayesianNetwork`` (imports pgmpy on first use)."""
        from model.pgmpy_adapter import build_network

        return build_network(self.variables, self.parents, self.cpts)

    @cached_property
    def skeleton(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(self.variables)
        g.add_edges_from((p, n) for n, ps in self.parents.items() for p in ps)
        return g

    def descendants(self, node: str) -> set[str]:
        """Every node downstream of ``node``."""
        return self._descendants[node]

    @cached_property
    def _descendants(self) -> dict[str, set[str]]:
        g = nx.DiGraph()
        g.add_nodes_from(self.variables)
        g.add_edges_from((p, n) for n, ps in self.parents.items() for p in ps)
        return {n: nx.descendants(g, n) for n in self.variables}

    @cached_property
    def twin(self) -> TwinNetwork:
        return build_twin(self.variables, self.parents, self.cpts, self.calibration.fixes)

    @cached_property
    def twin_backend(self) -> Backend:
        t = self.twin
        return make_backend(self.backend_name, t.variables, t.parents, t.cpts)

    @cached_property
    def draws(self) -> dict[str, np.ndarray]:
        confidence = {n: node.confidence for n, node in self.calibration.nodes.items()}
        return uncertainty.dirichlet_draws(self.cpts, confidence, DRAWS)

    @cached_property
    def prior_causes(self) -> dict[str, float]:
        return self._cause_probabilities(self.backend.query({}).marginals)

    # ---- helpers ---------------------------------------------------------------------------
    def present_index(self, node: str) -> int:
        """Index of the "present" state of a cause-like node: ``yes`` if it has one, else last."""
        states = self.variables[node]
        return states.index("yes") if "yes" in states else len(states) - 1

    def _cause_probabilities(self, marginals: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {c: float(marginals[c][0, self.present_index(c)]) for c in self.causes}

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
        node, _, state = target.partition("=")
        check_state(node, state, self.variables)
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
        causes = self._cause_probabilities(res.marginals)
        joint = res.joints.get(tuple(self.latents))
        if joint is not None:
            mpe, mpe_p = explain.most_probable_explanation(self, joint[0])
        elif self.latents:
            found, mpe_p = self.backend.engine.mpe(lik, self.latents)
            mpe = {n: self.variables[n][found[n]] for n in self.latents}
        else:
            mpe, mpe_p = {}, 1.0
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
            fixes=decide.rank_fixes(self, lik, hard),
            next_questions=decide.next_questions(
                self, lik, {n: m[0] for n, m in res.marginals.items()}
            ),
            explanation=explain.contributions(self, lik, hard, shapley=shapley),
            most_probable_explanation=mpe,
            mpe_probability=mpe_p,
            best_guess=self._best_guess(causes),
        )

    def _best_guess(self, causes: Mapping[str, float]) -> str:
        if not causes:
            return ""
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
        """Parameters that move P(target | evidence) most under a ±``delta`` shift."""
        node, _, state = target.partition("=")
        check_state(node, state, self.variables)
        _, lik = self._evidence(evidence)
        return uncertainty.sensitivity(self, (node, state), lik, delta, top)

    def posterior_batch(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score many evidence rows at once; NaN or "" mean unknown.

        Returns one column ``node=state`` per node and state, one row per input row.
        """
        from model.inference.frames import FrameEvidenceError, posterior_frame

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


def load_model(path: str | Path | None = None, backend: str = "compiled") -> Model:
    """Load a calibration (the shipped default when ``path`` is None) into a :class:`Model`."""
    return Model(load_calibration(path), backend=backend)
