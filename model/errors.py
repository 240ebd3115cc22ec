"""Every refusal a user of knowpain can meet, as one small family of exceptions.

``KnowpainError`` is the base. Its subclasses say *why* something was refused, and the
command line maps each one to an exit status in one table (:mod:`model.cli.status`); the app
shows the message as it is. Anything that is not a ``KnowpainError`` is a bug: it surfaces
as a traceback (exit status 1), never as "bad input".

This module imports nothing from the project, so every layer, the calibration package
included, can raise these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "AccessError",
    "BackOffError",
    "CalibrationError",
    "CaseImportError",
    "EvidenceError",
    "ImpossibleEvidenceError",
    "InputError",
    "KnowpainError",
    "NotFoundError",
    "OutputError",
    "RefusedError",
    "StoreBusyError",
    "StoreError",
    "UsageError",
    "listing",
    "quote",
]

#: Longest piece of user text a message repeats before cutting it short.
QUOTE_LIMIT = 80
#: Most names listed in a message (what is allowed), the rest counted.
LIST_LIMIT = 40


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a user-supplied value, cut to ``limit`` characters (messages never echo a
    100,000-character argument back whole)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


#: Longest problem line a message shows (a problem quoting a 100,000-character name is cut).
LINE_LIMIT = 600


def cut(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with a count of the whole, for text quoted
    inside a message (a CSV cell, a problem line)."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"


def named(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A name or path as a message shows it: as it is when short and printable, else
    :func:`quote`d (cut short, control characters visible)."""
    return text if len(text) <= limit and text.isprintable() else quote(text, limit)


def _line(problem: str) -> str:
    return cut(problem, LINE_LIMIT)


def listing(names: Iterable[object], limit: int = LIST_LIMIT) -> str:
    """``names`` joined by commas, the first ``limit`` of them and a count of the rest (a
    1,000-node network's node list is not pasted into a message)."""
    items = [str(n) for n in names]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … and {len(items) - limit:,} more"


class KnowpainError(Exception):
    """Base of every error knowpain raises on purpose; the message says what to do."""


class InputError(KnowpainError, ValueError):
    """Something the user gave (an argument, a file, a link, a value) is not allowed."""


class UsageError(InputError):
    """A command-line argument or Python API argument that is missing or malformed."""


class EvidenceError(InputError):
    """Evidence naming an unknown node or state, or findings that cannot be true together."""


class ImpossibleEvidenceError(EvidenceError):
    """The evidence has probability zero under the network; ``rows`` are the offending rows."""

    def __init__(self, rows: Sequence[int], detail: str = "") -> None:
        self.rows = list(rows)
        where = f" (row(s) {', '.join(map(str, self.rows[:10]))})" if len(self.rows) > 1 else ""
        super().__init__(
            f"the evidence is impossible under this calibration{where}: it has probability "
            f"zero{': ' + detail if detail else ''}"
        )


class CalibrationError(InputError):
    """A calibration that cannot be used; ``problems`` lists every issue found (the message
    shows the first ``limit`` and a count of the rest)."""

    limit = 50

    def __init__(self, problems: Sequence[str], source: str = "calibration") -> None:
        self.problems = list(problems)
        self.source = source
        shown = self.problems[: self.limit]
        lines = "\n".join(f"  - {_line(p)}" for p in shown)
        if len(self.problems) > len(shown):
            lines += f"\n  - ... and {len(self.problems) - len(shown)} more problem(s)"
        super().__init__(f"{named(source)} has {len(self.problems)} problem(s):\n{lines}")


class CaseImportError(InputError):
    """A cases file that cannot be imported; ``problems`` name the row and column.

    ``problems`` may hold only the first of many (a reader stops keeping them after a
    limit); ``total`` counts them all. The message lists the first ``limit`` (:attr:`shown`)
    and counts the rest; ``hint`` (optional) says what the user can do, e.g. import only the
    valid rows; ``outcome`` what came of the file (a refit reads it without importing).
    """

    limit = 20

    def __init__(self, problems: Sequence[str], total: int | None = None,
                 hint: str = "", outcome: str = "nothing was imported") -> None:
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        self.hint = hint
        lines = [f"{self.total} problem(s) in the cases file; {outcome}:"]
        lines += [f"  - {_line(p)}" for p in self.shown]
        if self.total > len(self.shown):
            lines.append(f"  ... and {self.total - len(self.shown)} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    @property
    def shown(self) -> list[str]:
        """The problems a message lists (the first :attr:`limit`)."""
        return self.problems[: self.limit]


class NotFoundError(InputError, LookupError):
    """A calibration version or case id that is not in the store."""


class RefusedError(KnowpainError):
    """A well-formed request that a safety or quality rule turns down.

    ``reasons`` lists every rule that refused it (a behaviour check that fails, a red-flag
    rule that would be weakened, …); nothing was changed.
    """

    def __init__(self, message: str, reasons: Sequence[str] = ()) -> None:
        self.reasons = list(reasons)
        lines = "".join(f"\n  - {r}" for r in self.reasons)
        super().__init__(f"{message}{lines}")


class AccessError(KnowpainError, PermissionError):
    """A therapist action was refused: no passcode configured, none given, or a wrong one."""


class BackOffError(AccessError):
    """Too many wrong passcodes lately: no passcode is checked for ``retry_after`` seconds."""

    def __init__(self, retry_after: float, longest: float | None = None) -> None:
        self.retry_after = float(retry_after)
        cap = f", up to {_duration(longest)}" if longest else ""
        super().__init__(
            f"too many wrong passcodes: try again in {_duration(self.retry_after)} (the "
            f"passcode was not checked; each further wrong passcode doubles the wait{cap})"
        )


def _duration(seconds: float) -> str:
    wait = max(1, round(seconds))
    return f"{wait} s" if wait < 120 else f"{(wait + 59) // 60} min"


class StoreError(KnowpainError):
    """The calibration store could not be opened, read or written; nothing was half-saved."""


class StoreBusyError(StoreError):
    """Another process held the store past the timeout; nothing was written."""

    def __init__(self, message: str = "store is busy, try again") -> None:
        super().__init__(message)


class OutputError(KnowpainError):
    """An output file could not be written (it exists, its folder is missing, disk full)."""
