"""Reading and validating calibration files; every problem is reported at once.

Each problem names the node (or section) and the field, so that a therapist editing a file
by hand knows exactly where to look.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from calibration.domain import (
    parse_advice,
    parse_decision_checks,
    parse_fix_policy,
    parse_next_session,
)
from calibration.files import read_at_most
from calibration.limits import (
    MAX_CALIBRATION_BYTES,
    MAX_CLIQUE_ENTRIES,
    MAX_NESTING,
    MAX_NODES,
    MAX_PARENTS,
    MAX_STATES,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ENTRIES,
    PROBABILITY_FLOOR,
)
from calibration.schema import (
    FLAG_LEVELS,
    PARAMETERIZATIONS,
    ROLES,
    RULE_LEVELS,
    BehaviourCheck,
    Calibration,
    CheckItem,
    EvidenceRule,
    FixSpec,
    Messages,
    NodeSpec,
    RedFlag,
    Scenario,
    column_key,
)
from model.errors import CalibrationError, UsageError, listing, quote

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_PATH = DATA_DIR / "default.toml"
SUM_TOLERANCE = 1e-6
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_STATE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
#: A companion is named by a plain file name next to the calibration (no folders, no "..").
_COMPANION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.toml$")
# Control characters (tab and newline allowed) and bidirectional overrides in any text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_TEXT_FIELDS = ("label", "question", "help", "rationale", "source", "summary")


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Load and validate a calibration file (the shipped default when ``path`` is None).

    At most :data:`~calibration.limits.MAX_CALIBRATION_BYTES` (+1) bytes are read, so a huge
    file or a device such as ``/dev/zero`` is refused at once.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise UsageError(f"path must be a calibration file's path (text or a Path), not "
                         f"{type(path).__name__}")
    file = Path(path) if path is not None else DEFAULT_PATH
    text = read_text_limited(file, str(file))
    return parse_calibration(text, base_dir=file.parent, source=str(file), path=file)


def read_text_limited(file: Path, source: str, what: str = "file") -> str:
    """The UTF-8 text of ``file``, reading at most ``MAX_CALIBRATION_BYTES + 1`` bytes."""
    try:
        raw = read_at_most(file, MAX_CALIBRATION_BYTES)
    except FileNotFoundError:
        raise CalibrationError([f"{what} not found: {quote(str(file))}"], source) from None
    except IsADirectoryError:
        raise CalibrationError([f"{quote(str(file))} is a folder, not a calibration {what}"],
                               source) from None
    except OSError as exc:
        raise CalibrationError([f"cannot read {quote(str(file))}: {exc.strerror or exc}"],
                               source) from None
    if len(raw) > MAX_CALIBRATION_BYTES:
        raise CalibrationError([_too_big(what)], source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CalibrationError(
            [f"{what} is not UTF-8 text (undecodable byte at position {exc.start})"], source
        ) from None


def _too_big(what: str) -> str:
    return (f"{what} is larger than the limit of {MAX_CALIBRATION_BYTES:,} bytes "
            f"({MAX_CALIBRATION_BYTES / 1_048_576:.0f} MB); a calibration is a few KB")


def _load_toml(text: str, source: str, what: str = "calibration") -> dict[str, Any]:
    """Parse TOML text within the stated limits (size, nesting, control characters)."""
    if len(text) > MAX_CALIBRATION_BYTES or len(text.encode("utf-8")) > MAX_CALIBRATION_BYTES:
        raise CalibrationError([_too_big(what)], source)
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError([f"not valid TOML: {exc}"], source) from None
    except RecursionError:
        raise CalibrationError([_too_deep()], source) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits (Python's own limit)
        raise CalibrationError([f"not valid TOML: {str(exc).split(';')[0][:200]}"], source) \
            from None
    problems = _check_document(doc)
    if problems:
        raise CalibrationError(problems, source)
    return doc


def _too_deep() -> str:
    return (f"tables and lists are nested more than {MAX_NESTING} levels deep; the format "
            "needs about 6")


def _check_document(doc: dict[str, Any]) -> list[str]:
    """Nesting depth and text of a parsed document, walked without recursion."""
    problems: list[str] = []
    stack: list[tuple[Any, int, str]] = [(doc, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_NESTING:
            return [_too_deep()]
        if isinstance(value, dict):
            for key, item in value.items():
                if _CONTROL.search(key):
                    problems.append(f"key {quote(key)}{_at(where)}: contains a control character")
                stack.append((item, depth + 1, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str) and _CONTROL.search(value):
            code = ord(_CONTROL.search(value).group())
            problems.append(f"{quote(where, 60)}: the text contains a control character "
                            f"(U+{code:04X}); remove it")
    return problems


def _at(where: str) -> str:
    return f" in {quote(where, 60)}" if where else ""


def parse_calibration(
    text: str,
    base_dir: Path | None = None,
    source: str = "calibration",
    path: Path | None = None,
) -> Calibration:
    """Parse and validate calibration TOML text; raises :class:`CalibrationError`.

    The limits of :mod:`calibration.limits` are checked before anything is built from the text.
    """
    doc = _load_toml(text, source)
    problems: list[str] = []
    warnings: list[str] = []
    network = doc.get("network", {})
    if not isinstance(network, dict):
        problems.append("[network]: must be a table")
        network = {}
    nodes = _parse_nodes(doc.get("nodes"), problems)
    if not problems:
        _check_structure(nodes, problems)
    if not problems:
        _check_compilable(nodes, problems)
    if not problems:
        _check_parameters(nodes, problems, warnings)
    if not problems:
        _check_column_confidence(nodes, problems)

    companions_raw = network.get("companions", [])
    if not isinstance(companions_raw, list) or not all(
        isinstance(c, str) for c in companions_raw
    ):
        problems.append("[network] field 'companions': must be a list of file names")
        companions_raw = []
    bad_names = [c for c in companions_raw if not _COMPANION.match(c)]
    if bad_names:
        problems.append(f"[network] field 'companions': {quote(bad_names[0])} is not a plain "
                        "file name ending in .toml (companions live next to the calibration)")
        companions_raw = []
    companions = tuple(companions_raw)
    extra: dict[str, Any] = {}
    for name in companions:
        comp = _find_companion(name, base_dir)
        if comp is None:
            problems.append(f"[network] field 'companions': file {name!r} not found")
            continue
        try:
            comp_doc = _load_toml(read_text_limited(comp, name, "companion file"), name,
                                  "companion file")
        except CalibrationError as exc:
            problems += [f"companion {name}: {p}" for p in exc.problems]
            continue
        for key, value in comp_doc.items():
            extra.setdefault(key, value)
    for key in (*_SECTION_SHAPES, "next_session"):
        if key in doc:
            extra[key] = doc[key]
    known = {"network", "nodes", "next_session", *_SECTION_SHAPES}
    unknown = [k for k in doc if k not in known]
    if unknown:  # most likely a misspelt section, whose content would silently not count
        warnings.append(f"top-level section(s) {listing(map(quote, unknown), 5)} are not part "
                        f"of the format and were ignored (known: {', '.join(sorted(known))})")

    outcome = network.get("outcome")
    outcome_absent = network.get("outcome_absent")
    if outcome is not None and not isinstance(outcome, str):
        problems.append("[network] field 'outcome': must be a node name")
        outcome = None
    if outcome is not None and not problems:
        if outcome not in nodes:
            problems.append(f"[network] field 'outcome': unknown node {outcome!r}")
        elif outcome_absent not in nodes[outcome].states:
            problems.append(
                f"[network] field 'outcome_absent': {outcome_absent!r} is not a state of "
                f"{outcome!r} (allowed: {', '.join(nodes[outcome].states)})"
            )

    _check_section_shapes(extra, problems)
    red_flags, rules, fixes, checks, messages = _parse_companions(extra, nodes, problems)
    scenarios = _parse_scenarios(extra.get("scenarios", []), nodes, problems)
    causes = [n for n, spec in nodes.items() if spec.role == "cause"]
    next_session = parse_next_session(extra.get("next_session"), nodes, problems)
    fix_policy = parse_fix_policy(extra.get("fix_policy"), problems)
    advice = parse_advice(extra.get("advice"), nodes, causes, problems)
    decision_checks = parse_decision_checks(extra.get("decision_checks"), nodes, fixes,
                                            problems)
    if problems:
        raise CalibrationError(problems, source)
    return Calibration(
        nodes=nodes,
        name=str(network.get("name", "")),
        version=str(network.get("version", "")),
        description=str(network.get("description", "")),
        outcome=outcome,
        outcome_absent=outcome_absent,
        companions=companions,
        red_flags=red_flags,
        evidence_rules=rules,
        fixes=fixes,
        checks=checks,
        scenarios=scenarios,
        messages=messages,
        next_session=next_session,
        fix_policy=fix_policy,
        advice=advice,
        decision_checks=decision_checks,
        path=path,
        warnings=tuple(warnings),
    )


def _find_companion(name: str, base_dir: Path | None) -> Path | None:
    for folder in (base_dir, DATA_DIR):
        if folder is not None and (folder / name).is_file():
            return folder / name
    return None


def _parse_nodes(raw: Any, problems: list[str]) -> dict[str, NodeSpec]:
    if not isinstance(raw, dict) or not raw:
        problems.append("[nodes]: no nodes defined (expected [nodes.<name>] tables)")
        return {}
    if len(raw) > MAX_NODES:
        problems.append(f"[nodes]: {len(raw):,} nodes; the limit is {MAX_NODES:,}")
        return {}
    nodes: dict[str, NodeSpec] = {}
    for name, spec in raw.items():
        where = f"node {quote(name)}"
        if not _NAME.match(name):
            problems.append(f"{where}: name must match [a-z][a-z0-9_]*")
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a table")
            continue
        states = spec.get("states")
        if not isinstance(states, list) or len(states) < 2:
            problems.append(f"{where} field 'states': need a list of at least 2 states")
            continue
        if not all(isinstance(x, str) for x in states):
            problems.append(f"{where} field 'states': every state must be a name (a string)")
            continue
        if len(states) > MAX_STATES:
            problems.append(f"{where} field 'states': {len(states)} states; the limit is "
                            f"{MAX_STATES}")
            continue
        if len(set(states)) != len(states):
            dup = sorted({s for s in states if states.count(s) > 1})
            problems.append(f"{where} field 'states': duplicate state(s) {', '.join(dup)}")
        for s in states:
            if not isinstance(s, str) or not _STATE.match(s):
                problems.append(
                    f"{where} field 'states': {quote(s)} must match [a-z0-9][a-z0-9_]*")
        parents = spec.get("parents", [])
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            problems.append(f"{where} field 'parents': must be a list of node names")
            parents = []
        if len(set(parents)) != len(parents):
            problems.append(f"{where} field 'parents': a parent is listed twice")
        if len(parents) > MAX_PARENTS:
            problems.append(f"{where} field 'parents': {len(parents)} parents; the limit is "
                            f"{MAX_PARENTS} (a node with more parents cannot be calibrated by "
                            "hand; add an intermediate node)")
            continue
        for text_field in _TEXT_FIELDS:
            if not isinstance(spec.get(text_field, ""), str):
                problems.append(f"{where} field {text_field!r}: must be text")
        labels = spec.get("state_labels", {})
        notes = spec.get("notes", {})
        for mapping_field, mapping in (("state_labels", labels), ("notes", notes)):
            if not isinstance(mapping, dict) or not all(
                    isinstance(v, str) for v in mapping.values()):
                problems.append(f"{where} field {mapping_field!r}: must map names to text")
        role = spec.get("role", "latent")
        if not isinstance(role, str) or role not in ROLES:
            problems.append(f"{where} field 'role': {quote(role)} unknown "
                            f"(allowed: {', '.join(ROLES)})")
        cpt = spec.get("cpt")
        if cpt is None:
            problems.append(
                f"{where} field 'cpt': missing parameters (set cpt to one of "
                f"{', '.join(PARAMETERIZATIONS)})"
            )
            continue
        if not isinstance(cpt, str) or cpt not in PARAMETERIZATIONS:
            problems.append(
                f"{where} field 'cpt': unknown parameterisation {quote(cpt)} "
                f"(allowed: {', '.join(PARAMETERIZATIONS)})"
            )
            continue
        params = spec.get(cpt)
        if params is None:
            problems.append(f"{where} field {cpt!r}: missing parameters for cpt = {cpt!r}")
            continue
        if cpt == "table" and isinstance(params, list):
            params = {"": params}
        if not isinstance(params, dict):
            problems.append(f"{where} field {cpt!r}: must be a table of columns")
            continue
        confidence = spec.get("confidence", 10)
        if (not isinstance(confidence, (int, float)) or isinstance(confidence, bool)
                or not 0 < confidence < math.inf):
            problems.append(f"{where} field 'confidence': must be a positive number")
            confidence = 10
        column_conf = spec.get("column_confidence", {})
        if not isinstance(column_conf, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0 for v in column_conf.values()
        ):
            problems.append(f"{where} field 'column_confidence': must map columns to positive "
                            "numbers")
            column_conf = {}
        nodes[name] = NodeSpec(
            name=name,
            states=tuple(states),
            parents=tuple(parents),
            role=role,
            label=str(spec.get("label", "")),
            question=str(spec.get("question", "")),
            help=str(spec.get("help", "")),
            state_labels=dict(labels) if isinstance(labels, dict) else {},
            ordinal=bool(spec.get("ordinal", False)),
            cpt=cpt,
            params=params,
            leak=spec.get("leak"),
            confidence=float(confidence),
            rationale=str(spec.get("rationale", "")),
            source=str(spec.get("source", "")),
            notes=dict(notes) if isinstance(notes, dict) else {},
            summary=str(spec.get("summary", "")),
            column_confidence={k: float(v) for k, v in column_conf.items()},
        )
    return nodes


def _check_structure(nodes: dict[str, NodeSpec], problems: list[str]) -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for name, node in nodes.items():
        for parent in node.parents:
            if parent not in nodes:
                problems.append(
                    f"node {name!r} field 'parents': unknown parent {parent!r} "
                    f"(known nodes: {', '.join(nodes)})"
                )
            else:
                graph.add_edge(parent, name)
    if not problems and not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        path = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        problems.append(f"node {cycle[0][0]!r} field 'parents': cycle {path}")


def _check_compilable(nodes: dict[str, NodeSpec], problems: list[str]) -> None:
    """Refuse a network whose exact inference would need a table over the size limit.

    The causes' joint posterior (every diagnosis computes it) is counted first, a product
    with no graph; then the moral graph, with the causes tied together, is triangulated with
    networkx's min-degree heuristic and each clique's table size counted. The engine
    triangulates on its own, so this is an estimate of the same order, made before anything
    of that size exists.
    """
    causes = [n for n, node in nodes.items() if node.role == "cause"]
    size = 1
    for n in causes:
        size *= nodes[n].card
        if size > MAX_CLIQUE_ENTRIES:
            problems.append(
                f"[nodes]: the {len(causes)} causes (role cause) have more than "
                f"{MAX_CLIQUE_ENTRIES:,} combinations of states together, the limit for "
                "their joint posterior; use fewer causes, or role latent for hidden nodes "
                "that are not causes"
            )
            return
    from networkx.algorithms.approximation import treewidth_min_degree

    moral = nx.Graph()
    moral.add_nodes_from(nodes)
    for name, node in nodes.items():
        family = (name, *node.parents)
        moral.add_edges_from(itertools.combinations(family, 2))
    moral.add_edges_from(itertools.combinations(causes, 2))
    _, tree = treewidth_min_degree(moral)
    for bag in tree.nodes:
        size = 1
        for n in bag:
            size *= nodes[n].card
        if size > MAX_CLIQUE_ENTRIES:
            shown = ", ".join(sorted(bag)[:8]) + (", …" if len(bag) > 8 else "")
            problems.append(
                f"[nodes]: exact inference would need a table of more than "
                f"{MAX_CLIQUE_ENTRIES:,} numbers (the limit) over {len(bag)} nodes that the "
                f"structure ties together ({shown}); use fewer or less connected parents"
            )
            return


def _probability_list(
    value: Any, card: int, where: str, problems: list[str], warnings: list[str]
) -> list[float] | None:
    if not isinstance(value, list) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value
    ):
        problems.append(f"{where}: must be a list of {card} numbers")
        return None
    if len(value) != card:
        problems.append(f"{where}: has {len(value)} numbers, expected {card} (one per state)")
        return None
    bad = [x for x in value if not (0.0 <= x <= 1.0) or math.isnan(x)]
    if bad:
        problems.append(f"{where}: probability {bad[0]} is outside [0, 1]")
        return None
    tiny = [x for x in value if 0.0 < x < PROBABILITY_FLOOR]
    if tiny:
        problems.append(_below_floor(where, tiny[0]))
        return None
    total = float(sum(value))
    if abs(total - 1.0) > SUM_TOLERANCE:
        problems.append(f"{where}: sums to {total:.6g}, must sum to 1 (within 1e-6)")
        return None
    if any(x == 0.0 for x in value):
        warnings.append(f"{where}: has an exact zero, which makes some evidence impossible")
    return [float(x) for x in value]


def _below_floor(where: str, value: float) -> str:
    return (f"{where}: probability {value:g} is below the floor of {PROBABILITY_FLOOR:g}; "
            "write 0 if it is impossible, or a number of at least the floor")


def _table_size_problem(
    name: str, node: NodeSpec, nodes: Mapping[str, NodeSpec]
) -> str | None:
    """The columns and entries of ``name``'s full table, counted before any is enumerated."""
    columns = 1
    for p in node.parents:
        columns *= nodes[p].card
        if columns > MAX_TABLE_COLUMNS:
            return (f"node {name!r} field 'parents': the parents have more than "
                    f"{MAX_TABLE_COLUMNS:,} combinations of states (the limit); use fewer "
                    "parents or fewer states")
    if columns * node.card > MAX_TABLE_ENTRIES:
        return (f"node {name!r}: its full table would hold {columns * node.card:,} numbers; "
                f"the limit is {MAX_TABLE_ENTRIES:,}")
    return None


def _check_parameters(
    nodes: dict[str, NodeSpec], problems: list[str], warnings: list[str]
) -> None:
    for name, node in nodes.items():
        where = f"node {name!r} field {node.cpt!r}"
        size_problem = _table_size_problem(name, node, nodes)
        if size_problem is not None:
            problems.append(size_problem)
            continue
        parent_states = [nodes[p].states for p in node.parents]
        if node.cpt == "table":
            expected = {column_key(c) for c in itertools.product(*parent_states)}
            got = set(node.params)
            if got != expected:
                missing = sorted(expected - got)
                unknown = sorted(got - expected)
                msg = f"{where}: table has {len(got)} column(s), expected {len(expected)}"
                if missing:
                    msg += f"; missing {', '.join(repr(m) for m in missing[:6])}"
                if unknown:
                    msg += f"; unknown {', '.join(repr(u) for u in unknown[:6])}"
                if not node.parents:
                    msg += "; a node without parents takes one list: table = [..]"
                problems.append(msg)
                continue
            for key, col in node.params.items():
                label = f"{where} column {key!r}" if node.parents else where
                _probability_list(col, node.card, label, problems, warnings)
            continue
        if not node.parents:
            problems.append(f"{where}: a canonical model needs parents; use cpt = 'table'")
            continue
        if node.cpt == "noisy_or" and node.card != 2:
            problems.append(f"{where}: noisy_or needs exactly 2 states (absent, present)")
            continue
        leak_where = f"node {name!r} field 'leak'"
        if node.cpt == "noisy_or":
            leak_ok = (isinstance(node.leak, (int, float)) and not isinstance(node.leak, bool)
                       and 0 <= node.leak < 1)
            if not leak_ok:
                problems.append(f"{leak_where}: noisy_or needs a leak in [0, 1)")
                continue
            if 0 < node.leak < PROBABILITY_FLOOR or 0 < 1 - node.leak < PROBABILITY_FLOOR:
                problems.append(_below_floor(leak_where, min(node.leak, 1 - node.leak)))
                continue
            leak_dist = [1 - float(node.leak), float(node.leak)]
        else:
            leak_dist = _probability_list(node.leak, node.card, leak_where, problems, warnings)
            if leak_dist is None:
                continue
            if leak_dist[0] <= 0:
                problems.append(
                    f"{leak_where}: the first (absent) state needs some weight; with 0 the "
                    "node could never be absent and the canonical model is undefined"
                )
                continue
        leak_cum = np.cumsum(leak_dist)
        for parent, by_state in node.params.items():
            pwhere = f"node {name!r} field '{node.cpt}.{parent}'"
            if parent not in node.parents:
                problems.append(
                    f"{pwhere}: {parent!r} is not a parent (parents: {', '.join(node.parents)})"
                )
                continue
            states = nodes[parent].states
            if not isinstance(by_state, dict):
                problems.append(f"{pwhere}: must map parent states to parameters")
                continue
            unknown = [s for s in by_state if s not in states]
            if unknown:
                problems.append(
                    f"{pwhere}: unknown state {unknown[0]!r} (allowed: {', '.join(states)})"
                )
                continue
            if len(states) - len(by_state) != 1:
                problems.append(
                    f"{pwhere}: list every state but exactly one (the off state); "
                    f"{len(by_state)} of {len(states)} listed"
                )
            for state, value in by_state.items():
                swhere = f"node {name!r} field '{node.cpt}.{parent}.{state}'"
                if node.cpt == "noisy_or":
                    if (not isinstance(value, (int, float)) or isinstance(value, bool)
                            or not 0 <= value <= 1):
                        problems.append(f"{swhere}: probability {quote(value)} is outside "
                                        "[0, 1]")
                    elif 0 < value < PROBABILITY_FLOOR or 0 < 1 - value < PROBABILITY_FLOOR:
                        problems.append(_below_floor(swhere, min(value, 1 - value)))
                    elif value < leak_dist[1] - 1e-12:
                        problems.append(
                            f"{swhere}: {value} is below the leak {leak_dist[1]}; a parent "
                            "state can only raise the probability"
                        )
                    elif value >= 1:
                        warnings.append(f"{swhere}: probability 1 makes 'absent' impossible")
                    continue
                dist = _probability_list(value, node.card, swhere, problems, warnings)
                if dist is None:
                    continue
                if np.any(np.cumsum(dist) > leak_cum + 1e-9):
                    problems.append(
                        f"{swhere}: puts more weight on the low states than the leak does; "
                        "a parent state can only push the node up"
                    )
                elif leak_cum[0] > 0 and np.any(np.diff(np.cumsum(dist) / leak_cum) < -1e-9):
                    # Díez: P_i(<= y) / L(<= y) must itself be a cumulative distribution
                    problems.append(
                        f"{swhere}: relative to the leak it shifts weight down between two "
                        "higher states, so combined columns would not sum to 1; raise it on "
                        "the higher states or lower the leak there"
                    )
        missing = [p for p in node.parents if p not in node.params]
        if missing:
            problems.append(
                f"node {name!r} field {node.cpt!r}: missing parameters for parent(s) "
                f"{', '.join(missing)}"
            )


def _check_column_confidence(nodes: dict[str, NodeSpec], problems: list[str]) -> None:
    """Keys of ``column_confidence``: table column keys, or ``leak`` / ``parent=state``."""
    for name, node in nodes.items():
        if not node.column_confidence:
            continue
        if node.cpt == "table":
            allowed = [column_key(c) for c in
                       itertools.product(*(nodes[p].states for p in node.parents))]
        else:
            allowed = ["leak"] + [f"{p}={s}" for p, by in node.params.items() for s in by]
        unknown = [k for k in node.column_confidence if k not in allowed]
        if unknown:
            problems.append(
                f"node {name!r} field 'column_confidence': unknown column {unknown[0]!r} "
                f"(allowed: {', '.join(repr(a) for a in allowed[:8])}"
                f"{', ...' if len(allowed) > 8 else ''})"
            )


def _states_or_list(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def _check_assignment(
    mapping: Any, nodes: Mapping[str, NodeSpec], where: str, problems: list[str]
) -> bool:
    if not isinstance(mapping, dict):
        problems.append(f"{where}: must map node names to states")
        return False
    ok = True
    for node, states in mapping.items():
        if node not in nodes:
            problems.append(f"{where}: unknown node {node!r}")
            ok = False
            continue
        for state in _states_or_list(states):
            if state not in nodes[node].states:
                problems.append(
                    f"{where}: {state!r} is not a state of {node!r} "
                    f"(allowed: {', '.join(nodes[node].states)})"
                )
                ok = False
    return ok


def _text_field(raw: Mapping[str, Any], key: str, default: str, where: str,
                problems: list[str]) -> str:
    """``raw[key]`` when it is text (``default`` when absent); a problem otherwise."""
    value = raw.get(key, default)
    if isinstance(value, str):
        return value
    problems.append(f"{where} field {key!r}: must be text")
    return default


def _text_list(raw: Mapping[str, Any], key: str, where: str,
               problems: list[str]) -> tuple[str, ...]:
    """``raw[key]`` when it is a list of texts (empty when absent); a problem otherwise."""
    value = raw.get(key, [])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    problems.append(f"{where} field {key!r}: must be a list of texts")
    return ()


def _parse_companions(
    doc: dict[str, Any], nodes: Mapping[str, NodeSpec], problems: list[str]
) -> tuple[
    tuple[RedFlag, ...],
    tuple[EvidenceRule, ...],
    dict[str, FixSpec],
    tuple[BehaviourCheck, ...],
    Messages,
]:
    flags: list[RedFlag] = []
    for i, raw in enumerate(doc.get("flags", [])):
        level = raw.get("level")
        if level not in FLAG_LEVELS or "id" not in raw:
            problems.append(f"flags[{i}]: needs an id and a level ({', '.join(FLAG_LEVELS)})")
            continue
        where = f"flags[{i}]"
        flags.append(
            RedFlag(
                id=raw["id"],
                level=level,
                question=_text_field(raw, "question", raw["id"], where, problems),
                help=_text_field(raw, "help", "", where, problems),
                message=_text_field(raw, "message", "", where, problems),
                source=_text_field(raw, "source", "", where, problems),
            )
        )
    rules: list[EvidenceRule] = []
    flag_ids = {f.id for f in flags}
    for i, raw in enumerate(doc.get("evidence_rules", [])):
        where = f"evidence_rules[{i}] field 'when'"
        rule_flags = raw.get("flags", [])
        if not isinstance(rule_flags, list) or not all(f in flag_ids for f in rule_flags):
            problems.append(f"evidence_rules[{i}] field 'flags': must list warning-sign ids "
                            f"(known: {', '.join(sorted(flag_ids)) or 'none'})")
            continue
        if not raw.get("when") and not rule_flags:
            problems.append(f"evidence_rules[{i}]: needs a condition ('when' or 'flags')")
            continue
        if nodes and _check_assignment(raw.get("when"), nodes, where, problems):
            rules.append(
                EvidenceRule(
                    id=raw.get("id", f"rule_{i}"),
                    level=raw.get("level", "amber"),
                    when={k: _states_or_list(v) for k, v in raw["when"].items()},
                    reason=_text_field(raw, "reason", "", f"evidence_rules[{i}]", problems),
                    flags=tuple(rule_flags),
                )
            )
    fixes: dict[str, FixSpec] = {}
    for target, raw in doc.get("fixes", {}).items():
        good = raw.get("good_state")
        if target not in nodes:
            problems.append(f"fixes.{quote(target)}: unknown node {quote(target)}")
            continue
        if not isinstance(good, str) or good not in nodes[target].states:
            problems.append(
                f"fixes.{target} field 'good_state': {quote(good)} is not a state "
                f"(allowed: {', '.join(nodes[target].states)})"
            )
            continue
        where = f"fixes.{target}"
        fixes[target] = FixSpec(
            target=target,
            good_state=good,
            title=_text_field(raw, "title", target, where, problems),
            cues=_text_list(raw, "cues", where, problems),
            drills=_text_list(raw, "drills", where, problems),
            advice=_text_field(raw, "advice", "", where, problems),
            source=_text_field(raw, "source", "", where, problems),
        )
    checks: list[BehaviourCheck] = []
    for i, raw in enumerate(doc.get("checks", [])):
        cid = raw.get("id", f"check_{i}")
        if not isinstance(cid, str):
            problems.append(f"checks[{i}] field 'id': must be text")
            continue
        items: list[CheckItem] = []
        for j, item in enumerate(raw.get("descending", [])):
            where = f"checks {cid!r} descending[{j}]"
            target = item.get("target", raw.get("target", ""))
            node, _, state = str(target).partition("=")
            if node not in nodes or state not in nodes[node].states:
                problems.append(f"{where} field 'target': {quote(target)} is not node=state")
                continue
            evidence = item.get("evidence", {})
            if _check_assignment(evidence, nodes, f"{where} field 'evidence'", problems):
                if any(isinstance(v, list) for v in evidence.values()):
                    problems.append(f"{where} field 'evidence': one state per node")
                    continue
                items.append(CheckItem(target=(node, state), evidence=dict(evidence)))
        if len(items) < 2:
            problems.append(f"checks {cid!r} field 'descending': needs at least 2 valid items")
            continue
        checks.append(
            BehaviourCheck(
                id=cid,
                description=_text_field(raw, "description", "", f"checks {cid!r}", problems),
                items=tuple(items),
                margin=float(raw.get("margin", 0.0)),
            )
        )
    msgs = doc.get("messages", {})
    defaults = Messages()
    messages = Messages(
        red=msgs.get("red", defaults.red),
        amber=msgs.get("amber", defaults.amber),
        disclaimer=msgs.get("disclaimer", defaults.disclaimer),
        unanswered=msgs.get("unanswered", defaults.unanswered),
    )
    return tuple(flags), tuple(rules), fixes, tuple(checks), messages


def _parse_scenarios(
    raw: Any, nodes: Mapping[str, NodeSpec], problems: list[str]
) -> tuple[Scenario, ...]:
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        sid = item.get("id", f"scenario_{i}")
        if not isinstance(sid, str):
            problems.append(f"scenarios[{i}] field 'id': must be text")
            continue
        where = f"scenarios {sid!r} field 'evidence'"
        evidence = item.get("evidence", {})
        label = _text_field(item, "label", sid, f"scenarios {sid!r}", problems)
        if nodes and _check_assignment(evidence, nodes, where, problems):
            if any(isinstance(v, list) for v in evidence.values()):
                problems.append(f"{where}: one state per node")
                continue
            out.append(Scenario(id=sid, label=label, evidence=dict(evidence)))
    return tuple(out)


_SECTION_SHAPES: dict[str, type] = {
    "flags": list,
    "evidence_rules": list,
    "checks": list,
    "scenarios": list,
    "fixes": dict,
    "messages": dict,
    "advice": list,
    "decision_checks": list,
    "fix_policy": dict,
}


def _check_section_shapes(doc: dict[str, Any], problems: list[str]) -> None:
    """Report (and drop) companion sections that are not of the shape the format needs."""
    for key, kind in _SECTION_SHAPES.items():
        if key not in doc:
            continue
        value = doc[key]
        items = value if isinstance(value, list) else list(value.values()) if isinstance(
            value, dict) else None
        shape = "a list of tables" if kind is list else "a table"
        if not isinstance(value, kind) or (
            key not in ("messages", "fix_policy")
            and not all(isinstance(x, dict) for x in items or [])
        ):
            problems.append(f"[{key}]: must be {shape}" + (" of tables" if kind is dict else ""))
            del doc[key]
    if "messages" in doc and not all(isinstance(v, str) for v in doc["messages"].values()):
        problems.append("[messages]: every message must be text")
        del doc["messages"]
    seen: set[str] = set()
    for section in ("flags", "evidence_rules"):
        kept = []
        for i, raw in enumerate(doc.get(section, [])):
            where = f"{section}[{i}]"
            if not isinstance(raw.get("id"), str) or raw["id"] in seen:
                problems.append(f"{where} field 'id': needs a unique text id")
            elif raw.get("level", "amber") not in (
                    FLAG_LEVELS if section == "flags" else RULE_LEVELS):
                allowed = ", ".join(FLAG_LEVELS if section == "flags" else RULE_LEVELS)
                problems.append(
                    f"{where} field 'level': {raw.get('level')!r} unknown (allowed: {allowed})"
                )
            elif section == "evidence_rules" and not isinstance(raw.get("when"), dict):
                problems.append(f"{where} field 'when': must map node names to states")
            else:
                seen.add(raw["id"])
                kept.append(raw)
        if section in doc:
            doc[section] = kept
    kept_checks = []
    for i, raw in enumerate(doc.get("checks", [])):
        margin = raw.get("margin", 0.0)
        items = raw.get("descending", [])
        if not isinstance(margin, (int, float)) or isinstance(margin, bool):
            problems.append(f"checks[{i}] field 'margin': must be a number")
        elif not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            problems.append(f"checks[{i}] field 'descending': must be a list of tables")
        else:
            kept_checks.append(raw)
    if "checks" in doc:
        doc["checks"] = kept_checks
    for i, raw in enumerate(doc.get("scenarios", [])):
        if not isinstance(raw.get("evidence", {}), dict):
            problems.append(f"scenarios[{i}] field 'evidence': must map node names to states")
            raw["evidence"] = {}
