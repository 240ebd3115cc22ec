"""Reading the decision sections of a calibration: how each node carries over into the next
session, when fixes count, which advice goes with which picture, and the decision checks.

Every problem is appended to ``problems`` naming the section and field, like the rest of the
loader; nothing here raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from calibration.limits import PROBABILITY_FLOOR
from calibration.schema import (
    AdviceSpec,
    Carryover,
    DecisionCheck,
    FixPolicy,
    NodeSpec,
)

__all__ = ["parse_advice", "parse_decision_checks", "parse_fix_policy", "parse_next_session"]

TRIAGE_LEVELS = ("none", "amber", "red")
OUTCOME_CONDITIONS = ("present", "absent", "unanswered", "any")
_SUM_TOLERANCE = 1e-6


def _unit(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _probability(value: Any) -> bool:
    """In [0, 1], and 0 or at least the floor (a subnormal would vanish in the products)."""
    return _unit(value) and not 0.0 < value < PROBABILITY_FLOOR


def _binary_present(node: NodeSpec) -> bool:
    return node.card == 2


def parse_next_session(raw: Any, nodes: Mapping[str, NodeSpec], problems: list[str]
                       ) -> dict[str, Carryover]:
    """``[next_session.<node>]`` tables: ``table`` for roots, ``protection`` / ``persistence``
    for two-state nodes with parents."""
    out: dict[str, Carryover] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        problems.append("[next_session]: must be a table of [next_session.<node>] tables")
        return out
    for name, spec in raw.items():
        where = f"next_session.{name}"
        if name not in nodes:
            problems.append(f"{where}: unknown node {name!r}")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a table")
            continue
        node = nodes[name]
        unknown = sorted(set(spec) - {"table", "protection", "persistence", "rationale",
                                      "source"})
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: table, "
                            "protection, persistence, rationale, source)")
            continue
        table: dict[str, tuple[float, ...]] = {}
        if "table" in spec:
            if node.parents:
                problems.append(f"{where} field 'table': only a node without parents "
                                "carries over by a table; give protection/persistence instead")
                continue
            rows = spec["table"]
            if not isinstance(rows, dict) or set(rows) != set(node.states):
                problems.append(f"{where} field 'table': needs one row per current state "
                                f"({', '.join(node.states)})")
                continue
            ok = True
            for state, row in rows.items():
                if (not isinstance(row, list) or len(row) != node.card
                        or not all(_probability(x) for x in row)
                        or abs(sum(row) - 1.0) > _SUM_TOLERANCE):
                    problems.append(f"{where} field 'table' row {state!r}: needs {node.card} "
                                    "probabilities in [0, 1] that sum to 1 (each 0 or at "
                                    f"least {PROBABILITY_FLOOR:g})")
                    ok = False
            if not ok:
                continue
            table = {state: tuple(float(x) for x in row) for state, row in rows.items()}
        numbers = {}
        for key in ("protection", "persistence"):
            if key not in spec:
                continue
            if not node.parents or not _binary_present(node):
                problems.append(f"{where} field {key!r}: only for a two-state node with "
                                "parents")
            elif not _probability(spec[key]):
                problems.append(f"{where} field {key!r}: must be a number in [0, 1] (0 or at "
                                f"least {PROBABILITY_FLOOR:g})")
            else:
                numbers[key] = float(spec[key])
        out[name] = Carryover(node=name, table=table, rationale=str(spec.get("rationale", "")),
                              source=str(spec.get("source", "")), **numbers)
    return out


def parse_fix_policy(raw: Any, problems: list[str]) -> FixPolicy:
    """``[fix_policy]``: ``min_effect`` in [0, 1] and its ``rationale``."""
    if raw is None:
        return FixPolicy()
    if not isinstance(raw, dict):
        problems.append("[fix_policy]: must be a table")
        return FixPolicy()
    value = raw.get("min_effect", FixPolicy.min_effect)
    if not _unit(value):
        problems.append("[fix_policy] field 'min_effect': must be a number in [0, 1]")
        return FixPolicy()
    return FixPolicy(min_effect=float(value), rationale=str(raw.get("rationale", "")))


def parse_advice(raw: Any, nodes: Mapping[str, NodeSpec], causes: list[str],
                 problems: list[str]) -> tuple[AdviceSpec, ...]:
    """``[[advice]]`` entries with their conditions (see :class:`AdviceSpec`)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        problems.append("[advice]: must be a list of tables ([[advice]])")
        return ()
    out: list[AdviceSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"advice[{i}]"
        aid = item.get("id")
        if not isinstance(aid, str) or not aid or aid in seen:
            problems.append(f"{where} field 'id': needs a unique text id")
            continue
        seen.add(aid)
        where = f"advice {aid!r}"
        texts = {k: item.get(k) for k in ("title", "text")}
        if not all(isinstance(v, str) and v.strip() for v in texts.values()):
            problems.append(f"{where}: needs a 'title' and a 'text'")
            continue
        triage = item.get("triage", "none")
        if triage not in TRIAGE_LEVELS:
            problems.append(f"{where} field 'triage': {triage!r} unknown (allowed: "
                            f"{', '.join(TRIAGE_LEVELS)})")
            continue
        outcome = item.get("outcome", "present")
        if outcome not in OUTCOME_CONDITIONS:
            problems.append(f"{where} field 'outcome': {outcome!r} unknown (allowed: "
                            f"{', '.join(OUTCOME_CONDITIONS)})")
            continue
        cause = item.get("cause")
        if cause is not None and cause not in causes:
            problems.append(f"{where} field 'cause': {cause!r} is not a cause (causes: "
                            f"{', '.join(causes)})")
            continue
        min_p = item.get("min_probability", 0.0)
        max_other = item.get("max_other", {})
        if not _unit(min_p):
            problems.append(f"{where} field 'min_probability': must be a number in [0, 1]")
            continue
        if not isinstance(max_other, dict) or not all(
                c in causes and _unit(v) for c, v in max_other.items()):
            problems.append(f"{where} field 'max_other': must map causes to numbers in [0, 1]")
            continue
        out.append(AdviceSpec(
            id=aid, title=texts["title"], text=texts["text"],
            source=str(item.get("source", "")), triage=triage, outcome=outcome, cause=cause,
            min_probability=float(min_p), top=bool(item.get("top", False)),
            max_other={c: float(v) for c, v in max_other.items()},
        ))
    return tuple(out)


def parse_decision_checks(raw: Any, nodes: Mapping[str, NodeSpec], fixes: Mapping[str, Any],
                          problems: list[str]) -> tuple[DecisionCheck, ...]:
    """``[[decision_checks]]``: properties of the forecast and the fixes that must hold."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        problems.append("[decision_checks]: must be a list of tables ([[decision_checks]])")
        return ()
    out: list[DecisionCheck] = []
    for i, item in enumerate(raw):
        cid = item.get("id")
        where = f"decision_checks[{i}]" if not isinstance(cid, str) else f"decision check {cid!r}"
        if not isinstance(cid, str) or not cid:
            problems.append(f"{where} field 'id': needs a text id")
            continue
        evidence = item.get("evidence", {})
        bad = ([] if isinstance(evidence, dict) else ["evidence must map nodes to states"])
        if isinstance(evidence, dict):
            bad += [f"{n}={s}" for n, s in evidence.items()
                    if n not in nodes or s not in nodes[n].states]
        if bad:
            problems.append(f"{where} field 'evidence': not node=state: {', '.join(bad)}")
            continue
        asserts = {k: item[k] for k in ("max_forecast", "below_now", "not_top_fix", "top_fix",
                                        "no_fixes") if k in item}
        if not asserts:
            problems.append(f"{where}: says nothing to check (give max_forecast, below_now, "
                            "not_top_fix, top_fix or no_fixes)")
            continue
        if "max_forecast" in asserts and not _unit(asserts["max_forecast"]):
            problems.append(f"{where} field 'max_forecast': must be a number in [0, 1]")
            continue
        wrong = [k for k in ("not_top_fix", "top_fix") if k in asserts
                 and asserts[k] not in fixes]
        if wrong:
            problems.append(f"{where} field {wrong[0]!r}: {asserts[wrong[0]]!r} has no fix "
                            f"(fixes: {', '.join(fixes)})")
            continue
        out.append(DecisionCheck(
            id=cid, description=str(item.get("description", "")), evidence=dict(evidence),
            max_forecast=(float(asserts["max_forecast"]) if "max_forecast" in asserts
                          else None),
            below_now=bool(asserts.get("below_now", False)),
            not_top_fix=asserts.get("not_top_fix"), top_fix=asserts.get("top_fix"),
            no_fixes=bool(asserts.get("no_fixes", False)),
        ))
    return tuple(out)
