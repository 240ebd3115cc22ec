"""Writing a calibration back to TOML (the inverse of :mod:`calibration.loader`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import tomli_w

from calibration.schema import (
    AdviceSpec,
    Calibration,
    Carryover,
    DecisionCheck,
    FixPolicy,
    NodeSpec,
)


def _node_doc(node: NodeSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "label": node.label,
        "role": node.role,
        "question": node.question,
    }
    if node.help:
        doc["help"] = node.help
    doc["states"] = list(node.states)
    if node.state_labels:
        doc["state_labels"] = dict(node.state_labels)
    if node.ordinal:
        doc["ordinal"] = True
    doc["parents"] = list(node.parents)
    doc["confidence"] = node.confidence
    if node.column_confidence:
        doc["column_confidence"] = dict(node.column_confidence)
    doc["rationale"] = node.rationale
    doc["source"] = node.source
    if node.notes:
        doc["notes"] = dict(node.notes)
    if node.summary:
        doc["summary"] = node.summary
    doc["cpt"] = node.cpt
    if node.leak is not None:
        doc["leak"] = node.leak
    if node.cpt == "table" and not node.parents:
        doc["table"] = list(node.params[""])
    else:
        doc[node.cpt] = {k: v for k, v in node.params.items()}
    return doc


def to_document(cal: Calibration) -> dict[str, Any]:
    """The calibration as a plain TOML-ready mapping.

    Red flags, rules, fixes, checks and scenarios are written inline only when the
    calibration names no companion files (otherwise they live in, and come from, those).
    """
    network: dict[str, Any] = {"name": cal.name, "version": cal.version}
    if cal.description:
        network["description"] = cal.description
    if cal.outcome:
        network["outcome"] = cal.outcome
        network["outcome_absent"] = cal.outcome_absent
    if cal.companions:
        network["companions"] = list(cal.companions)
    doc: dict[str, Any] = {
        "network": network,
        "nodes": {n: _node_doc(node) for n, node in cal.nodes.items()},
    }
    if cal.next_session:
        doc["next_session"] = {n: _carryover_doc(c) for n, c in cal.next_session.items()}
    if not cal.companions:  # no companion files: the domain sections travel inline
        doc.update(_inline_sections(cal))
    return doc


def _inline_sections(cal: Calibration) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cal.red_flags:
        out["flags"] = [
            {k: v for k, v in vars(f).items() if v != ""} for f in cal.red_flags
        ]
    if cal.evidence_rules:
        out["evidence_rules"] = [
            {"id": r.id, "level": r.level, "reason": r.reason,
             **({"flags": list(r.flags)} if r.flags else {}),
             "when": {n: list(states) for n, states in r.when.items()}}
            for r in cal.evidence_rules
        ]
    if cal.fixes:
        out["fixes"] = {
            t: {"good_state": f.good_state, "title": f.title, "cues": list(f.cues),
                "drills": list(f.drills), "advice": f.advice, "source": f.source}
            for t, f in cal.fixes.items()
        }
    if cal.checks:
        out["checks"] = [
            {"id": c.id, "description": c.description, "margin": c.margin,
             "descending": [{"target": f"{i.target[0]}={i.target[1]}",
                             "evidence": dict(i.evidence)} for i in c.items]}
            for c in cal.checks
        ]
    if cal.scenarios:
        out["scenarios"] = [
            {"id": sc.id, "label": sc.label, "evidence": dict(sc.evidence)}
            for sc in cal.scenarios
        ]
    if cal.red_flags or cal.evidence_rules:
        out["messages"] = vars(cal.messages)
    if cal.fix_policy != FixPolicy():
        out["fix_policy"] = {k: v for k, v in vars(cal.fix_policy).items() if v != ""}
    if cal.advice:
        out["advice"] = [_without_defaults(a, AdviceSpec) for a in cal.advice]
    if cal.decision_checks:
        out["decision_checks"] = [_without_defaults(c, DecisionCheck)
                                  for c in cal.decision_checks]
    return out


def _without_defaults(item: Any, cls: type) -> dict[str, Any]:
    """A dataclass as a TOML table, leaving out fields at their default (and empty ones)."""
    defaults = {f.name: f.default for f in fields(cls)}
    kept = ("id", "title", "text", "description", "evidence")
    out: dict[str, Any] = {}
    for f in fields(cls):
        value = getattr(item, f.name)
        empty = value is None or value == defaults.get(f.name) or value in ("", {}, ())
        if empty and f.name not in kept:
            continue
        out[f.name] = dict(value) if isinstance(value, Mapping) else value
    return out


def _carryover_doc(c: Carryover) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if c.table:
        doc["table"] = {state: list(row) for state, row in c.table.items()}
    for key in ("protection", "persistence"):
        if getattr(c, key):
            doc[key] = getattr(c, key)
    for key in ("rationale", "source"):
        if getattr(c, key):
            doc[key] = getattr(c, key)
    return doc


def to_toml(cal: Calibration) -> str:
    """TOML text that :func:`calibration.loader.parse_calibration` reads back unchanged."""
    return tomli_w.dumps(to_document(cal))
