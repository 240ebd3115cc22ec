"""The therapist passcode: one check for every door that changes the store, and the back-off
that makes guessing it slow.

The expected passcode is configured by whoever runs knowpain, outside the repository (see
:mod:`model.service.settings`). When none is configured, therapist actions are *locked*:
:func:`check_passcode` refuses every attempt, so a deployment without a passcode can never be
written to by accident. The comparison is constant-time: both passcodes are hashed to
SHA-256 first, so not even their lengths are compared, then the digests are compared with
:func:`hmac.compare_digest`. The passcode never appears in a message, a log line, the audit
log or an exception.

Back-off (:func:`retry_after`): the first :data:`FREE_TRIES` wrong passcodes within
:data:`WINDOW` cost nothing; after that each wrong passcode doubles the wait before the next
one is even checked (1 s, 2 s, 4 s, ...), up to :data:`MAX_DELAY`. The same rule runs per
browser session (the app keeps the times in session state) and per store (the failed tries
are in the store's audit log, see :func:`model.service.clinic.unlock`), so a new session
does not reset it. An attacker who keeps trying as fast as allowed gets 8 guesses in the
first 10 seconds, 17 in the first hour, then about 15 an hour (about 300 a day).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

from model.errors import AccessError, BackOffError
from model.service.settings import PASSCODE_ENV, SECRETS_KEY

__all__ = [
    "FREE_TRIES",
    "MAX_DELAY",
    "WINDOW",
    "AccessError",
    "BackOffError",
    "check_passcode",
    "passcode_matches",
    "require_no_backoff",
    "retry_after",
]

#: Wrong passcodes within :data:`WINDOW` that cost no wait.
FREE_TRIES = 5
#: Longest wait between two checked passcodes, in seconds.
MAX_DELAY = 15 * 60.0
#: How long a wrong passcode counts towards the back-off.
WINDOW = timedelta(hours=1)

LOCKED = (
    "therapist actions are locked: no therapist passcode is configured. Whoever runs "
    f"knowpain sets one, outside the repository: the environment variable {PASSCODE_ENV} "
    f"(e.g. export {PASSCODE_ENV}='choose-a-passcode'), or a line {SECRETS_KEY} = \"...\" in "
    ".streamlit/secrets.toml"
)


def _digest(passcode: str) -> bytes:
    return hashlib.sha256(passcode.encode("utf-8", "surrogatepass")).digest()


def passcode_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of two passcodes (fixed-length digests, then compare_digest)."""
    return hmac.compare_digest(_digest(given), _digest(expected))


def check_passcode(given: str | None, expected: str | None) -> None:
    """Raise :class:`AccessError` unless ``given`` matches the configured ``expected``.

    ``expected`` is :attr:`Settings.passcode`; ``None`` means therapist actions are locked.
    This is the comparison alone; :func:`model.service.clinic.unlock` adds the back-off and
    the audit log.
    """
    if expected is None or not expected.strip():
        raise AccessError(LOCKED)
    if not given:
        raise AccessError("no passcode given: enter the therapist passcode to continue")
    if not passcode_matches(given, expected):
        raise AccessError("wrong passcode")


def retry_after(failures: Iterable[datetime], now: datetime) -> float:
    """Seconds to wait before the next passcode may be checked, given the times of earlier
    wrong passcodes (those older than :data:`WINDOW` are forgotten)."""
    recent = sorted(t for t in failures if now - WINDOW < t <= now)
    if len(recent) < FREE_TRIES:
        return 0.0
    delay = min(2.0 ** (len(recent) - FREE_TRIES), MAX_DELAY)
    return max(0.0, (recent[-1] + timedelta(seconds=delay) - now).total_seconds())


def require_no_backoff(failures: Iterable[datetime], now: datetime) -> None:
    """Raise :class:`BackOffError` while the back-off says to wait."""
    wait = retry_after(failures, now)
    if wait > 0:
        raise BackOffError(wait, MAX_DELAY)
