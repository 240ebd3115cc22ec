"""The therapist passcode gate shared by the command line and the Streamlit pages."""

from __future__ import annotations

import hmac

import pytest

from calibration import access
from calibration.access import (
    ENV_VAR,
    SECRETS_KEY,
    AccessError,
    check_passcode,
    configured_passcode,
)


@pytest.fixture(autouse=True)
def _no_configured_passcode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_names_are_the_documented_ones() -> None:
    assert ENV_VAR == "KNOWPAIN_THERAPIST_PASSCODE"
    assert SECRETS_KEY == "therapist_passcode"
    assert issubclass(AccessError, PermissionError)


def test_nothing_configured_means_none() -> None:
    assert configured_passcode() is None
    assert configured_passcode({}) is None


def test_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "from-env")
    assert configured_passcode() == "from-env"
    assert configured_passcode({"other": "x"}) == "from-env"


def test_secrets_come_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "from-env")
    assert configured_passcode({SECRETS_KEY: "from-secrets"}) == "from-secrets"


@pytest.mark.parametrize("value", ["", "   ", None, 1234])
def test_blank_or_non_text_secrets_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: object
) -> None:
    assert configured_passcode({SECRETS_KEY: value}) is None
    monkeypatch.setenv(ENV_VAR, "from-env")
    assert configured_passcode({SECRETS_KEY: value}) == "from-env"


def test_blank_environment_variable_counts_as_not_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, "  ")
    assert configured_passcode() is None


def test_secrets_that_raise_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """``st.secrets`` raises when the app has no secrets file; that is "not configured"."""

    class NoSecretsFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("no secrets.toml")

    assert configured_passcode(NoSecretsFile()) is None
    monkeypatch.setenv(ENV_VAR, "from-env")
    assert configured_passcode(NoSecretsFile()) == "from-env"


def test_right_passcode_passes() -> None:
    assert check_passcode("correct horse", "correct horse") is None
    assert check_passcode("pässwörd ✓", "pässwörd ✓") is None


@pytest.mark.parametrize("given", ["wrong", "correct hors", "correct horse ", "CORRECT HORSE"])
def test_wrong_passcode_is_refused_without_revealing_either(given: str) -> None:
    with pytest.raises(AccessError) as info:
        check_passcode(given, "correct horse")
    assert str(info.value) == "wrong passcode"
    assert "horse" not in str(info.value)


@pytest.mark.parametrize("expected", [None, "", "   "])
def test_locked_when_nothing_is_configured(expected: str | None) -> None:
    with pytest.raises(AccessError) as info:
        check_passcode("anything", expected)
    message = str(info.value)
    assert "locked" in message and ENV_VAR in message and SECRETS_KEY in message
    assert "anything" not in message


def test_empty_passcode_is_refused() -> None:
    with pytest.raises(AccessError, match="no passcode given"):
        check_passcode("", "secret")


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    check_passcode("secret", "secret")
    with pytest.raises(AccessError):
        check_passcode("secreT", "secret")
    assert len(calls) == 2
