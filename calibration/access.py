"""Therapist passcode gate for store-writing actions (CLI verbs and Streamlit pages).

The expected passcode is configured by whoever runs knowpain, never stored in the repository:

* Streamlit: ``therapist_passcode = "..."`` in ``.streamlit/secrets.toml`` (read first), or
* the environment variable ``KNOWPAIN_THERAPIST_PASSCODE``.

When neither is set, therapist actions are *locked*: :func:`check_passcode` refuses every
attempt, so a deployment without a configured passcode can never be written to by accident.

The passcode is compared with :func:`hmac.compare_digest` and is never included in any
message, log line or exception text.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

__all__ = [
    "ENV_VAR",
    "SECRETS_KEY",
    "AccessError",
    "check_passcode",
    "configured_passcode",
]

#: Environment variable holding the expected therapist passcode.
ENV_VAR = "KNOWPAIN_THERAPIST_PASSCODE"
#: Key in a Streamlit-style secrets mapping (``st.secrets``) holding the expected passcode.
SECRETS_KEY = "therapist_passcode"


class AccessError(PermissionError):
    """A therapist action was refused: no passcode configured, none given, or a wrong one."""


def configured_passcode(secrets: Mapping | None = None) -> str | None:
    """Return the expected therapist passcode, or ``None`` when none is configured.

    ``secrets`` (for example Streamlit's ``st.secrets``) is consulted first under the key
    ``therapist_passcode``; then the environment variable ``KNOWPAIN_THERAPIST_PASSCODE``.
    Empty or whitespace-only values count as not configured.
    """
    if secrets is not None:
        try:
            value = secrets.get(SECRETS_KEY)
        except Exception:  # st.secrets raises when there is no secrets file
            value = None
        if isinstance(value, str) and value.strip():
            return value
    value = os.environ.get(ENV_VAR)
    if value is not None and value.strip():
        return value
    return None


def check_passcode(given: str, expected: str | None) -> None:
    """Raise :class:`AccessError` unless ``given`` matches the configured ``expected`` passcode.

    ``expected`` is what :func:`configured_passcode` returned; ``None`` means therapist actions
    are locked. The comparison is constant-time; neither value ever appears in the message.
    """
    if expected is None or not expected.strip():
        raise AccessError(
            "therapist actions are locked: no therapist passcode is configured. "
            f"Set the environment variable {ENV_VAR} (or '{SECRETS_KEY}' in "
            ".streamlit/secrets.toml for the web app) to enable saving calibrations."
        )
    if given is None or not given:
        raise AccessError("no passcode given: enter the therapist passcode to continue")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise AccessError("wrong passcode")
