"""A diagnosis as the command line shows it: plain text, or JSON for scripts.

Behind a red flag nothing but the routing goes out — no cause percentages, fixes or
questions — in the text and in the JSON alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from calibration.schema import Calibration
from model.results import Diagnosis
from model.text.verbal import describe

__all__ = ["diagnosis_json", "diagnosis_text"]


def diagnosis_text(d: Diagnosis, cal: Calibration) -> str:
    """The diagnosis in words, warning signs first, the disclaimer last."""
    lines = []
    if d.triage.level != "none":
        lines.append(f"WARNING ({d.triage.level.upper()}): {d.triage.message}")
        lines += [f"  - {r}" for r in d.triage.reasons]
        lines.append("")
    if d.triage.blocks_results:
        lines.append("Cause estimates are withheld: see a clinician about the warning sign first.")
    else:
        if d.triage.level == "amber":
            lines.append("The estimates below are less reliable until you have been assessed.")
        lines.append("Likely causes:")
        for c, p in sorted(d.causes.items(), key=lambda kv: -kv[1]):
            iv = d.cause_intervals.get(c)
            band = f", 90 % interval {iv.low:.0%}–{iv.high:.0%}" if iv else ""
            lines.append(
                f"  {cal.nodes[c].title}: {describe(p)}{band}  "
                f"(before your answers: {describe(d.prior_causes[c])})"
            )
        lines.append(d.best_guess)
        if d.fixes:
            lines.append("")
            lines.append("What to change, most helpful first:")
            for f in d.fixes:
                lines.append(
                    f"  {f.title}: chance of soreness next session "
                    f"{describe(f.outcome_before)} -> {describe(f.outcome_after)}"
                )
                if f.cues:
                    lines.append(f"    cues: {'; '.join(f.cues)}")
        if d.next_questions:
            lines.append("")
            lines.append("Worth answering next:")
            for q in d.next_questions[:3]:
                lines.append(f"  {cal.nodes[q.node].question or q.node}  ({q.gain:.2f} bits)")
    lines.append("")
    lines.append(cal.messages.disclaimer)
    return "\n".join(lines)


def diagnosis_json(d: Diagnosis, cal: Calibration) -> dict[str, Any]:
    """The diagnosis as plain data; behind a red flag only the evidence and the routing."""
    if d.triage.blocks_results:
        payload: dict[str, Any] = {
            "evidence": d.evidence,
            "triage": asdict(d.triage),
            "withheld": "cause estimates, fixes and questions are withheld: a warning "
            "sign needs a clinician first",
        }
    else:
        payload = asdict(d)
    payload["disclaimer"] = cal.messages.disclaimer
    return payload
