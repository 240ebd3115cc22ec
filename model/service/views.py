"""What the therapist doors show about calibrations and cases (read-only, no policy).

* :func:`scenario_preview` / :func:`scenario_sensitivity` — the reference lifters' cause
  posteriors before → after, and the table entries they depend on most;
* :func:`compare` — two calibrations, number by number as a therapist sets them, table entry
  by table entry, plus structure, settings and rationale changes;
* :func:`case_table`, :func:`metrics_table`, :func:`reliability_table` — cases and held-out
  metrics as frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from calibration.diff import CalibrationDiff, diff_calibrations
from calibration.editing import NumberChange, number_changes
from calibration.schema import Calibration
from calibration.store import Case
from model.errors import EvidenceError, ImpossibleEvidenceError
from model.learning.evaluate import Comparison
from model.network_model import Model

# ---------------------------------------------------------------------------------------------
# previews
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioChange:
    """P(cause present | a reference scenario) before and after (NaN when impossible)."""

    scenario: str
    label: str
    cause: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


def _cause_posteriors(m: Model, evidence: Mapping[str, str]) -> dict[str, float]:
    try:
        post = m.posterior(dict(evidence))
    except (EvidenceError, ImpossibleEvidenceError):
        return {c: math.nan for c in m.causes}
    return {c: post[c][m.variables[c][m.present_index(c)]] for c in m.causes}


def scenario_preview(before: Model, after: Model) -> list[ScenarioChange]:
    """Every reference scenario's cause posteriors under ``before`` and ``after``.

    Scenarios come from ``after``'s calibration; causes are ``after``'s cause nodes.
    """
    rows = []
    for sc in after.calibration.scenarios:
        a = _cause_posteriors(before, sc.evidence)
        b = _cause_posteriors(after, sc.evidence)
        for cause in after.causes:
            rows.append(ScenarioChange(sc.id, sc.label, cause, a.get(cause, math.nan), b[cause]))
    return rows


@dataclass(frozen=True)
class SensitiveParameter:
    """A table entry P(node = state | column) and the largest swing it causes in a scenario.

    ``swing`` is how far P(cause present | scenario) moves when the entry is shifted by
    ±delta (the rest of its column rescaled); ``scenario`` and ``cause`` are where it
    moves most.
    """

    node: str
    column: str
    state: str
    value: float
    swing: float
    scenario: str
    cause: str


def scenario_sensitivity(m: Model, top: int = 10, delta: float = 0.05) -> list[SensitiveParameter]:
    """The parameters the reference scenarios' cause posteriors depend on most.

    Uses :meth:`Model.sensitivity` for every scenario and cause; for two-state nodes the
    mirror entry of the same column (which swings exactly as much) is left out.
    """
    best: dict[tuple[str, str, str], SensitiveParameter] = {}
    for sc in m.calibration.scenarios:
        for cause in m.causes:
            target = f"{cause}={m.variables[cause][m.present_index(cause)]}"
            try:
                items = m.sensitivity(target, dict(sc.evidence), delta=delta, top=None)
            except (EvidenceError, ImpossibleEvidenceError):
                continue
            for it in items:
                if m.cards[it.node] == 2 and it.state == m.variables[it.node][0]:
                    continue
                if not math.isfinite(it.swing):
                    continue
                key = (it.node, it.column, it.state)
                if key not in best or it.swing > best[key].swing:
                    best[key] = SensitiveParameter(it.node, it.column, it.state, it.value,
                                                   it.swing, sc.id, cause)
    return sorted(best.values(), key=lambda p: -p.swing)[:top]


@dataclass(frozen=True)
class VersionDiff:
    """Two calibrations compared: ``numbers`` as a therapist sets them (largest change
    first), ``other_form`` the nodes written differently (compare their table entries), and
    ``entries`` every table entry, structure, setting and rationale difference."""

    numbers: tuple[NumberChange, ...]
    other_form: tuple[str, ...]
    entries: CalibrationDiff

    @property
    def identical(self) -> bool:
        return self.entries.identical

    def __str__(self) -> str:
        if self.identical:
            return "No differences."
        lines = []
        if self.numbers:
            lines.append(f"Numbers as set ({len(self.numbers)} differ, largest first):")
            lines += [f"  {c.node} [{c.group}] {c.state}: {c.a:.4f} -> {c.b:.4f} "
                      f"({c.change:+.4f})" for c in self.numbers]
        if self.other_form:
            lines.append("Written differently (compare the table entries): "
                         + ", ".join(self.other_form))
        lines.append(str(self.entries))
        return "\n".join(lines)


def compare(a: Calibration, b: Calibration) -> VersionDiff:
    """Everything that differs from ``a`` to ``b`` (see :class:`VersionDiff`)."""
    numbers, other = number_changes(a, b)
    return VersionDiff(tuple(numbers), tuple(other), diff_calibrations(a, b))


# ---------------------------------------------------------------------------------------------
# cases and refits
# ---------------------------------------------------------------------------------------------


def case_table(cases: Iterable[Case], cal: Calibration) -> pd.DataFrame:
    """Stored cases as a frame: id, therapist, date, answers, adjudicated causes, outcome."""
    rows = []
    for c in cases:
        row: dict[str, Any] = {"case": c.id, "therapist": c.therapist,
                               "recorded": c.created_at.strftime("%Y-%m-%d %H:%M")}
        row.update({n: c.evidence.get(n, "") for n in cal.nodes if cal.nodes[n].observable})
        row.update({f"cause:{k}": c.adjudicated.get(k, "") for k in cal.causes})
        row["outcome"] = c.outcome or ""
        rows.append(row)
    columns = ["case", "therapist", "recorded",
               *(n for n in cal.nodes if cal.nodes[n].observable),
               *(f"cause:{k}" for k in cal.causes), "outcome"]
    return pd.DataFrame(rows, columns=columns)


#: Held-out metrics shown to therapists, with how to read them.
METRICS: dict[str, str] = {
    "log_loss": "Log loss (lower is better)",
    "brier": "Brier score (lower is better)",
    "brier_skill": "Brier skill vs base rate (higher is better)",
    "calibration_slope": "Calibration slope (1 is ideal)",
    "calibration_intercept": "Calibration intercept (0 is ideal)",
}


def metrics_table(comparison: Comparison) -> pd.DataFrame:
    """Held-out metrics per cause, before vs after, for :data:`METRICS` only."""
    table = comparison.table()
    table = table[table["metric"].isin(list(METRICS))].copy()
    table["metric"] = table["metric"].map(METRICS)
    return table[["cause", "metric", "before", "after", "better"]].reset_index(drop=True)


def reliability_table(comparison: Comparison) -> pd.DataFrame:
    """Reliability-curve points: cause, version (before/after), predicted, observed, count."""
    rows = []
    for version, ev in (("before", comparison.before), ("after", comparison.after)):
        for cause, metrics in ev.metrics.items():
            for pt in metrics.reliability:
                rows.append({"cause": cause, "version": version,
                             "predicted": pt.mean_predicted, "observed": pt.observed,
                             "count": pt.count})
    return pd.DataFrame(rows, columns=["cause", "version", "predicted", "observed", "count"])
