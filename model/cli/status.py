"""Exit statuses of the ``knowpain`` command and the one map from error to status.

A bug is never reported as bad input: anything that is not a
:class:`~model.errors.KnowpainError` propagates as a traceback and Python exits with 1.
"""

from __future__ import annotations

from enum import IntEnum

from model.errors import (
    AccessError,
    InputError,
    KnowpainError,
    OutputError,
    RefusedError,
    StoreError,
)

__all__ = ["ExitStatus", "exit_status"]


class ExitStatus(IntEnum):
    """What a ``knowpain`` exit status means (also listed in ``knowpain --help``)."""

    SUCCESS = 0
    #: an unexpected error: a bug, reported with a traceback
    ERROR = 1
    #: bad usage or input: an argument, evidence, a calibration or cases file, an unknown id
    BAD_INPUT = 2
    #: a safety or quality rule said no: a behaviour check fails, the red-flag screen would
    #: be weakened, nothing to roll back to
    REFUSED = 3
    #: the therapist passcode is not configured, not given or wrong
    ACCESS_DENIED = 4
    #: the store is busy, damaged or not a knowpain store
    STORE_UNAVAILABLE = 5
    #: an output file (or standard output) could not be written
    CANNOT_WRITE = 6
    #: interrupted (Ctrl-C)
    INTERRUPTED = 130


_STATUS: dict[type[KnowpainError], ExitStatus] = {
    InputError: ExitStatus.BAD_INPUT,
    RefusedError: ExitStatus.REFUSED,
    AccessError: ExitStatus.ACCESS_DENIED,
    StoreError: ExitStatus.STORE_UNAVAILABLE,
    OutputError: ExitStatus.CANNOT_WRITE,
}


def exit_status(error: KnowpainError) -> ExitStatus:
    """The status for an error: its nearest class in the map (the base class: ERROR)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return ExitStatus.ERROR


def describe_statuses() -> str:
    """One line per status, for ``--help``."""
    words = {
        ExitStatus.SUCCESS: "success",
        ExitStatus.ERROR: "unexpected error (a bug: please report the traceback)",
        ExitStatus.BAD_INPUT: "bad usage or input (the message says what is allowed)",
        ExitStatus.REFUSED: "refused by a safety or quality rule (behaviour checks, red flags)",
        ExitStatus.ACCESS_DENIED: "therapist passcode not configured, missing or wrong",
        ExitStatus.STORE_UNAVAILABLE: "the store is busy, damaged or not a knowpain store",
        ExitStatus.CANNOT_WRITE: "an output file (or standard output) could not be written",
        ExitStatus.INTERRUPTED: "interrupted",
    }
    return "\n".join(f"  {int(s):>3}  {words[s]}" for s in ExitStatus)
