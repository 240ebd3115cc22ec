"""The therapist passcode: one check for every door that changes the store.

The expected passcode is configured by whoever runs knowpain, outside the repository (see
:mod:`model.service.settings`). When none is configured, therapist actions are *locked*:
:func:`check_passcode` refuses every attempt, so a deployment without a passcode can never be
written to by accident. The comparison is constant-time (:func:`hmac.compare_digest`) and the
passcode never appears in a message, a log line or an exception.
"""

from __future__ import annotations

import hmac

from model.errors import AccessError
from model.service.settings import PASSCODE_ENV, SECRETS_KEY

__all__ = ["AccessError", "check_passcode"]

LOCKED = (
    "therapist actions are locked: no therapist passcode is configured. Whoever runs "
    f"knowpain sets one, outside the repository: the environment variable {PASSCODE_ENV} "
    f"(e.g. export {PASSCODE_ENV}='choose-a-passcode'), or a line {SECRETS_KEY} = \"...\" in "
    ".streamlit/secrets.toml"
)


def check_passcode(given: str | None, expected: str | None) -> None:
    """Raise :class:`AccessError` unless ``given`` matches the configured ``expected``.

    ``expected`` is :attr:`Settings.passcode`; ``None`` means therapist actions are locked.
    """
    if expected is None or not expected.strip():
        raise AccessError(LOCKED)
    if not given:
        raise AccessError("no passcode given: enter the therapist passcode to continue")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise AccessError("wrong passcode")
