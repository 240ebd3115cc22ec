"""Readers for the BIF and XMLBIF network formats, without pgmpy.

pgmpy's readers parse with pyparsing and take seconds on the larger bnlearn networks
(``diabetes.bif``: 11.7 s against 0.25 s here), and importing pgmpy alone takes ~2.5 s, so
the engine's public API reads files itself. Both readers return the engine's three
mappings: ``variables`` (node -> states), ``parents`` (node -> parent names) and ``cpts``
(node -> table in the columns layout ``(*parent_cards, card)``). ``.gz`` files are read
transparently. The tests check these readers against pyAgrum's and pgmpy's on every
network shipped with pgmpy.

Files come from anywhere, so reading is bounded: only a regular file (or a character device,
which the byte limit stops) is opened; every pattern scans the text once; each table is
counted against :data:`~calibration.limits.MAX_NETWORK_TABLE_ENTRIES` and
:data:`~calibration.limits.MAX_NETWORK_ENTRIES` before it is built; a variable or block
given twice is refused rather than letting the last one win. :func:`check_network` checks
what any network must be (states, parents, no cycle, finite tables whose rows sum to 1) for
files and pgmpy models alike.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibration.limits import (
    MAX_NETWORK_BYTES,
    MAX_NETWORK_ENTRIES,
    MAX_NETWORK_STATES,
    MAX_NETWORK_TABLE_ENTRIES,
    NETWORK_ROW_SUM_TOLERANCE,
)
from model.errors import InputError, UsageError, listing, quote

Network = tuple[dict[str, list[str]], dict[str, list[str]], dict[str, np.ndarray]]

# Every pattern is linear: a negated class never admits its own opening delimiter, so a
# failed match stops at the next one instead of rescanning to the end of the file.
_VARIABLE = re.compile(
    r"variable\s+([^\s{}]+)\s*\{[^{}]*?type\s+discrete\s*\[\s*(\d+)\s*\]\s*\{([^{}]*)\}", re.S
)
_PROBABILITY = re.compile(r"probability\s*\(([^()]*)\)\s*\{([^{}]*)\}", re.S)
_ROW = re.compile(r"\(([^()]*)\)([^;()]*);")
_COMMENT_START = re.compile(r"//|/\*")


class NetworkFormatError(InputError):
    """A network (file, pgmpy model or tables) that cannot be used, with the reason and where."""


# ---- reading the file ------------------------------------------------------------------------
def network_path(path: Any) -> Path:
    """``path`` as a :class:`Path`; a :class:`UsageError` for anything that is not a path."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str | os.PathLike):
        raise UsageError(
            f"the network file must be a path (str or pathlib.Path), not {type(path).__name__} "
            f"{quote(path, 40)}"
        )
    text = os.fspath(path)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    if "\0" in text:
        raise NetworkFormatError(
            f"the network file name {quote(text)} contains a NUL character; no file can have it"
        )
    return Path(text)


def _refuse_kind(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode) or stat.S_ISCHR(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise NetworkFormatError(
        f"cannot read the network file {quote(str(path))}: it is {kind}; give a .bif or "
        ".xml file"
    )


def _text(path: Path) -> str:
    """The file's text, gunzipped if it is gzip, reading at most ``MAX_NETWORK_BYTES`` + 1.

    Only a regular file or a character device is opened (a named pipe would wait forever for
    a writer): its kind is checked before opening, and again on the open descriptor.
    """
    try:
        _refuse_kind(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as fh:
            _refuse_kind(path, os.fstat(fh.fileno()).st_mode)
            magic = fh.read(2)
            if magic == b"\x1f\x8b":
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh) as gz:
                    raw = _read_at_most(gz, MAX_NETWORK_BYTES + 1)
            else:
                raw = magic + _read_at_most(fh, MAX_NETWORK_BYTES + 1 - len(magic))
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise NetworkFormatError(
            f"cannot read the network file {quote(str(path))}: {reason}"
        ) from None
    if len(raw) > MAX_NETWORK_BYTES:
        raise NetworkFormatError(
            f"{quote(path.name)} is larger than the limit of {MAX_NETWORK_BYTES:,} bytes "
            f"({MAX_NETWORK_BYTES // 1_048_576} MB) of network text; the biggest bnlearn "
            "network is about 5.5 MB"
        )
    return raw.decode("utf-8", errors="replace")


def _read_at_most(fh: Any, limit: int) -> bytes:
    """Up to ``limit`` bytes, a megabyte at a time (``read(limit)`` would reserve the whole
    limit up front, even for a file of a few bytes)."""
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = fh.read(min(1 << 20, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _strip_comments(text: str) -> str:
    """``text`` without ``// ...`` and ``/* ... */`` comments, in one pass (an unclosed
    ``/*`` runs to the end)."""
    parts = []
    pos = 0
    while (m := _COMMENT_START.search(text, pos)) is not None:
        parts.append(text[pos : m.start()])
        end = text.find("\n" if m.group() == "//" else "*/", m.end())
        pos = len(text) if end < 0 else end + (0 if m.group() == "//" else 2)
    parts.append(text[pos:])
    return "".join(parts)


def _numbers(text: str, where: str, expected: int, what: str = "table") -> np.ndarray:
    """Exactly ``expected`` numbers from ``text`` (commas or blanks between them); no more
    than ``expected`` + 1 pieces are ever split off, however long the text."""
    tokens = text.replace(",", " ").split(None, expected)
    if len(tokens) != expected:
        got = f"more than {expected}" if len(tokens) > expected else f"{len(tokens)}"
        raise NetworkFormatError(f"{where}: {what} has {got} numbers, needs {expected}")
    try:
        return np.array(tokens, dtype=float)
    except ValueError:
        bad = next((s for s in tokens if not _is_number(s)), text.strip())
        raise NetworkFormatError(f"{where}: expected numbers, got {quote(bad, 60)}") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _count(where: str, shape: Sequence[int], total: int) -> int:
    """The entries of a table of ``shape``, refused over the limits before it is built."""
    size = math.prod(shape)  # Python ints: no overflow however many parents
    if size > MAX_NETWORK_TABLE_ENTRIES:
        raise NetworkFormatError(
            f"{where}: the table would have {size:,} numbers ({_shape(shape)}); "
            f"one table may have at most {MAX_NETWORK_TABLE_ENTRIES:,} "
            "(MAX_NETWORK_TABLE_ENTRIES)"
        )
    if total + size > MAX_NETWORK_ENTRIES:
        raise NetworkFormatError(
            f"{where}: the tables would have more than {MAX_NETWORK_ENTRIES:,} numbers "
            "together, the most one network may have (MAX_NETWORK_ENTRIES)"
        )
    return total + size


def _keyword(body: str, word: str) -> int:
    """Where ``word`` (as a whole word) ends in ``body``, or -1 (``str.find``: a regex
    ``\bword\b`` search costs 20 times as much on a long table)."""
    at = body.find(word)
    while at >= 0:
        end = at + len(word)
        if (at == 0 or not _word_char(body[at - 1])) and (
            end == len(body) or not _word_char(body[end])
        ):
            return end
        at = body.find(word, at + 1)
    return -1


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _statement(body: str, start: int) -> str:
    """The text from ``start`` to the next ``;`` (or the end)."""
    end = body.find(";", start)
    return body[start : end if end >= 0 else len(body)]


def _shape(shape: Sequence[int]) -> str:
    if len(shape) <= 6:
        return " x ".join(map(str, shape)) + " states"
    return f"{len(shape) - 1} parents"


def read_bif(path: str | Path) -> Network:
    """Variables, parents and columns-layout tables of a BIF file (optionally gzipped)."""
    path = network_path(path)
    text = _strip_comments(_text(path))
    variables: dict[str, list[str]] = {}
    for name, card, states in _VARIABLE.findall(text):
        if name in variables:
            raise NetworkFormatError(f"{path.name}: variable {quote(name)} is declared twice")
        names = [s.strip() for s in states.split(",") if s.strip()]
        if len(card) > 9 or int(card) != len(names):
            raise NetworkFormatError(
                f"{path.name}: variable {quote(name)} declares {quote(card, 20)[1:-1]} states "
                f"but lists {len(names)}"
            )
        check_variable(name, names, path.name)
        variables[name] = names
    if not variables:
        raise NetworkFormatError(f"{path.name}: no discrete variables found (is it a BIF file?)")
    parents: dict[str, list[str]] = {}
    cpts: dict[str, np.ndarray] = {}
    total = 0
    for head, body in _PROBABILITY.findall(text):
        child, _, given = head.partition("|")
        child = child.strip()
        pa = [p.strip() for p in given.split(",") if p.strip()]
        for v in (child, *pa):
            if v not in variables:
                raise NetworkFormatError(
                    f"{path.name}: probability for undeclared variable {quote(v)}"
                )
        if child in cpts:
            raise NetworkFormatError(
                f"{path.name}: variable {quote(child)} has two probability blocks"
            )
        check_parents(child, pa, path.name)
        where = f"{path.name}: probability of {child!r}"
        card = len(variables[child])
        shape = tuple(len(variables[p]) for p in pa)
        total = _count(where, (*shape, card), total)
        table = np.zeros((*shape, card))
        filled = np.zeros(shape, dtype=bool)
        if (found := _keyword(body, "table")) >= 0:
            values = _numbers(_statement(body, found), where, table.size)
            # BIF lists the child's states slowest: (card, *parent_cards) in C order
            table = np.moveaxis(values.reshape((card, *shape)), 0, -1)
            filled[...] = True
        if (found := _keyword(body, "default")) >= 0:
            table[...] = _numbers(_statement(body, found), where, card, "default row")
            filled[...] = True
        index = [{s: i for i, s in enumerate(variables[p])} for p in pa]
        for row in _ROW.finditer(body):
            states, values = row.groups()
            keys = [s.strip() for s in states.split(",")]
            try:
                at = tuple(ix[k] for ix, k in zip(index, keys, strict=True))
            except (KeyError, ValueError):
                raise NetworkFormatError(
                    f"{where}: bad parent states ({quote(states.strip())[1:-1]}); give one "
                    f"state of each of {listing(pa) or 'no parents'}"
                ) from None
            table[at] = _numbers(values, where, card, f"row ({states.strip()[:60]})")
            filled[at] = True
        if not filled.all():
            at = tuple(int(i) for i in np.argwhere(~filled)[0]) if shape else ()
            raise NetworkFormatError(
                f"{where}: no row for {_configuration(pa, at, variables)} (give a table, a "
                "default row or one row per parent configuration)"
            )
        parents[child] = pa
        cpts[child] = table
    missing = [v for v in variables if v not in cpts]
    if missing:
        raise NetworkFormatError(f"{path.name}: no probability block for {listing(missing, 5)}")
    return variables, parents, cpts


def read_xmlbif(path: str | Path) -> Network:
    """Variables, parents and columns-layout tables of an XMLBIF file (optionally gzipped)."""
    path = network_path(path)
    try:
        root = ET.fromstring(_text(path))
    except ET.ParseError as exc:
        raise NetworkFormatError(f"{path.name}: not valid XML ({exc})") from None
    net = root.find("NETWORK") if root.tag != "NETWORK" else root
    if net is None:
        raise NetworkFormatError(f"{path.name}: no NETWORK element")
    variables: dict[str, list[str]] = {}
    for v in net.findall("VARIABLE"):
        name = (v.findtext("NAME") or "").strip()
        if name in variables:
            raise NetworkFormatError(f"{path.name}: variable {quote(name)} is declared twice")
        states = [(o.text or "").strip() for o in v.findall("OUTCOME")]
        check_variable(name, states, path.name)
        variables[name] = states
    parents: dict[str, list[str]] = {}
    cpts: dict[str, np.ndarray] = {}
    total = 0
    for d in net.findall("DEFINITION"):
        child = (d.findtext("FOR") or "").strip()
        pa = [(g.text or "").strip() for g in d.findall("GIVEN")]
        for v in (child, *pa):
            if v not in variables:
                raise NetworkFormatError(
                    f"{path.name}: definition of undeclared variable {quote(v)}"
                )
        if child in cpts:
            raise NetworkFormatError(f"{path.name}: variable {quote(child)} has two definitions")
        check_parents(child, pa, path.name)
        where = f"{path.name}: table of {child!r}"
        shape = (*(len(variables[p]) for p in pa), len(variables[child]))
        total = _count(where, shape, total)
        values = _numbers(d.findtext("TABLE") or "", where, math.prod(shape))
        parents[child] = pa
        cpts[child] = values.reshape(shape)  # XMLBIF: the child's states fastest
    missing = [v for v in variables if v not in cpts]
    if missing:
        raise NetworkFormatError(f"{path.name}: no definition for {listing(missing, 5)}")
    return variables, parents, cpts


def read_network_file(path: str | Path) -> Network:
    """Read a ``.bif`` or ``.xml``/``.xmlbif`` file (``.gz`` allowed) by its suffix."""
    path = network_path(path)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".xml", ".xmlbif"):
        return read_xmlbif(path)
    return read_bif(path)


# ---- what any network must be ----------------------------------------------------------------
def check_variable(name: Any, states: Sequence[Any], source: str = "network") -> None:
    """Refuse an empty or unhashable variable name, no states, too many, an empty or
    repeated state name."""
    if not isinstance(name, Hashable) or name is None or (
        isinstance(name, str) and not name.strip()
    ):
        raise NetworkFormatError(f"{source}: a variable has no name ({quote(name)})")
    if isinstance(states, str) or not isinstance(states, Sequence):
        raise NetworkFormatError(
            f"{source}: the states of {quote(name)} must be a list of names, not "
            f"{type(states).__name__}"
        )
    if not states:
        raise NetworkFormatError(f"{source}: variable {quote(name)} has no states; it needs "
                                 "at least one")
    if len(states) > MAX_NETWORK_STATES:
        raise NetworkFormatError(
            f"{source}: variable {quote(name)} has {len(states):,} states; at most "
            f"{MAX_NETWORK_STATES:,} are allowed (MAX_NETWORK_STATES)"
        )
    seen: set[Any] = set()
    for s in states:
        if not isinstance(s, Hashable) or (isinstance(s, str) and not s.strip()):
            raise NetworkFormatError(
                f"{source}: variable {quote(name)} has an empty state name ({quote(s)})"
            )
        if s in seen:
            raise NetworkFormatError(
                f"{source}: variable {quote(name)} lists the state {quote(s)} twice; state "
                "names must differ"
            )
        seen.add(s)


def check_parents(node: Any, parents: Sequence[Any], source: str = "network") -> None:
    """Refuse a node that is its own parent, or a parent named twice."""
    if node in parents:
        raise NetworkFormatError(f"{source}: variable {quote(node)} is its own parent")
    if len(set(parents)) != len(parents):
        twice = next(p for p in parents if parents.count(p) > 1)
        raise NetworkFormatError(
            f"{source}: variable {quote(node)} names the parent {quote(twice)} twice"
        )


def _cycle(parents: Mapping[Any, Sequence[Any]]) -> list[Any]:
    """A directed cycle through parent links (empty when there is none), by Kahn's order."""
    children: dict[Any, list[Any]] = {n: [] for n in parents}
    waiting = {n: len(pa) for n, pa in parents.items()}
    for n, pa in parents.items():
        for p in pa:
            children[p].append(n)
    ready = [n for n, k in waiting.items() if k == 0]
    while ready:
        for c in children[ready.pop()]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    left = {n for n, k in waiting.items() if k > 0}
    if not left:
        return []
    # every node left has a parent left: walk up until a node repeats
    walk, seen = [], {}
    v = next(n for n in parents if n in left)  # the first in file order: the same every run
    while v not in seen:
        seen[v] = len(walk)
        walk.append(v)
        v = next(p for p in parents[v] if p in left)
    return [*walk[seen[v] :], v][::-1]


def _configuration(pa: Sequence[Any], at: Sequence[int], variables: Mapping) -> str:
    if not pa:
        return "the variable (no parents)"
    return "parents " + ", ".join(
        f"{p}={variables[p][i]}" for p, i in zip(pa, at, strict=True)
    )


def check_network(
    variables: Mapping[Any, Sequence[Any]],
    parents: Mapping[Any, Sequence[Any]],
    cpts: Mapping[Any, Any] | None,
    source: str = "network",
) -> dict[Any, np.ndarray]:
    """Check a whole network before it is compiled; return its tables as float arrays.

    Refused with a :class:`NetworkFormatError` naming the variable (and the parent
    configuration for a row): a variable :func:`check_variable` refuses, an unknown parent,
    a node that is its own parent, a directed cycle, a table over the size limits (counted
    before it is converted), of the wrong shape, with an entry that is negative or not
    finite, or with a row that does not sum to 1 within
    :data:`~calibration.limits.NETWORK_ROW_SUM_TOLERANCE`. Tables are not renormalised.
    With ``cpts=None`` only the structure and the tables' sizes are checked (before the
    tables are built).
    """
    for what, value in (("variables", variables), ("parents", parents), ("cpts", cpts)):
        if not isinstance(value, Mapping) and not (what == "cpts" and value is None):
            raise UsageError(f"{what} must be a mapping (a dict), not {type(value).__name__}")
    for name, states in variables.items():
        check_variable(name, states, source)
    family: dict[Any, list[Any]] = {}
    for name in variables:
        pa = parents.get(name, ())
        if isinstance(pa, str) or not isinstance(pa, Sequence):
            raise NetworkFormatError(
                f"{source}: the parents of {quote(name)} must be a list of names, not "
                f"{type(pa).__name__}"
            )
        pa = list(pa)
        for p in pa:
            if not isinstance(p, Hashable) or p not in variables:
                raise NetworkFormatError(
                    f"{source}: variable {quote(name)} has the unknown parent {quote(p)}"
                )
        check_parents(name, pa, source)
        family[name] = pa
    cycle = _cycle(family)
    if cycle:
        raise NetworkFormatError(
            f"{source}: the network has a cycle ({quote(' -> '.join(map(str, cycle)))[1:-1]}); "
            "a Bayesian network must be acyclic"
        )
    shapes = {name: (*(len(variables[p]) for p in family[name]), len(states))
              for name, states in variables.items()}
    total = 0
    for name, shape in shapes.items():  # every size counted before any table is converted
        total = _count(f"{source}: table of {quote(name)}", shape, total)
    tables: dict[Any, np.ndarray] = {}
    for name, shape in shapes.items():
        if cpts is None:
            break
        pa = family[name]
        where = f"{source}: table of {quote(name)}"
        if name not in cpts:
            raise NetworkFormatError(f"{source}: variable {quote(name)} has no table")
        raw = cpts[name]
        if math.prod(np.shape(raw)) > math.prod(shape):
            raise NetworkFormatError(f"{where} has shape {np.shape(raw)}, needs {shape}")
        try:
            table = np.asarray(raw, dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise NetworkFormatError(f"{where}: entries must be numbers") from None
        if table.shape != shape:
            raise NetworkFormatError(f"{where} has shape {table.shape}, needs {shape}")
        check_table(name, pa, table, variables, source)
        tables[name] = table
    return tables


def check_table(name: Any, pa: Sequence[Any], table: np.ndarray, variables: Mapping,
                source: str = "network") -> None:
    """Refuse non-finite or negative entries and rows that do not sum to 1."""
    bad = ~np.isfinite(table) | (table < 0)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NetworkFormatError(
            f"{source}: table of {quote(name)}, {_configuration(pa, at[:-1], variables)}: "
            f"P({name}={variables[name][at[-1]]}) = {float(table[at])}; probabilities must be "
            "finite numbers >= 0"
        )
    off = np.abs(table.sum(axis=-1) - 1.0) > NETWORK_ROW_SUM_TOLERANCE
    if off.any():
        at = tuple(int(i) for i in np.argwhere(off)[0])
        raise NetworkFormatError(
            f"{source}: table of {quote(name)}, {_configuration(pa, at, variables)}: the row "
            f"sums to {float(table[at].sum()):.6g}, not 1 (allowed off by at most "
            f"{NETWORK_ROW_SUM_TOLERANCE:g}, NETWORK_ROW_SUM_TOLERANCE)"
        )
