"""Writing a calibration back to TOML (the inverse of :mod:`calibration.loader`)."""

from __future__ import annotations

from typing import Any

import tomli_w

from calibration.schema import Calibration, NodeSpec


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
    doc["rationale"] = node.rationale
    doc["source"] = node.source
    if node.notes:
        doc["notes"] = dict(node.notes)
    doc["cpt"] = node.cpt
    if node.leak is not None:
        doc["leak"] = node.leak
    if node.cpt == "table" and not node.parents:
        doc["table"] = list(node.params[""])
    else:
        doc[node.cpt] = {k: v for k, v in node.params.items()}
    return doc


def to_document(cal: Calibration) -> dict[str, Any]:
    """The calibration as a plain TOML-ready mapping (network and nodes only)."""
    network: dict[str, Any] = {"name": cal.name, "version": cal.version}
    if cal.description:
        network["description"] = cal.description
    if cal.outcome:
        network["outcome"] = cal.outcome
        network["outcome_absent"] = cal.outcome_absent
    if cal.companions:
        network["companions"] = list(cal.companions)
    return {"network": network, "nodes": {n: _node_doc(node) for n, node in cal.nodes.items()}}


def to_toml(cal: Calibration) -> str:
    """TOML text that :func:`calibration.loader.parse_calibration` reads back unchanged."""
    return tomli_w.dumps(to_document(cal))
