"""Settings and the therapist passcode: one reading of the same sources for both doors."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from model.errors import AccessError
from model.service import access
from model.service.access import check_passcode
from model.service.clinic import grant_is_valid, unlock
from model.service.settings import (
    PASSCODE_ENV,
    SECRETS_KEY,
    STORE_KEY,
    load_settings,
    read_secrets_files,
)


@pytest.fixture
def no_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder and home without secrets files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_names_are_the_documented_ones() -> None:
    assert PASSCODE_ENV == "KNOWPAIN_THERAPIST_PASSCODE"
    assert SECRETS_KEY == "therapist_passcode" and STORE_KEY == "store_path"
    assert issubclass(AccessError, PermissionError)


def test_nothing_configured_means_locked(no_secret_files: Path) -> None:
    assert load_settings().locked
    assert load_settings({}).passcode is None


def test_environment_variable_is_read(no_secret_files: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSCODE_ENV, "from-env")
    assert load_settings().passcode == "from-env"
    assert load_settings({"other": "x"}).passcode == "from-env"


def test_secrets_come_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSCODE_ENV, "from-env")
    assert load_settings({SECRETS_KEY: "from-secrets"}).passcode == "from-secrets"


@pytest.mark.parametrize("value", ["", "   ", None, 1234])
def test_blank_or_non_text_secrets_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: object
) -> None:
    assert load_settings({SECRETS_KEY: value}).passcode is None
    monkeypatch.setenv(PASSCODE_ENV, "from-env")
    assert load_settings({SECRETS_KEY: value}).passcode == "from-env"


def test_blank_environment_variable_counts_as_not_configured(
    no_secret_files: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSCODE_ENV, "  ")
    assert load_settings().locked


def test_secrets_that_raise_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """``st.secrets`` raises when the app has no secrets file; that is "not configured"."""

    class NoSecretsFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("no secrets.toml")

    assert load_settings(NoSecretsFile()).passcode is None
    monkeypatch.setenv(PASSCODE_ENV, "from-env")
    assert load_settings(NoSecretsFile()).passcode == "from-env"


def test_the_command_line_reads_the_apps_secrets_file(no_secret_files: Path) -> None:
    """Without a mapping (the command line), the same secrets.toml the app reads is used:
    the working folder's over the home folder's."""
    home = no_secret_files / "home" / ".streamlit"
    home.mkdir(parents=True)
    (home / "secrets.toml").write_text(f'{SECRETS_KEY} = "home"\n{STORE_KEY} = "/h.sqlite"\n')
    assert load_settings().passcode == "home"
    local = no_secret_files / ".streamlit"
    local.mkdir()
    (local / "secrets.toml").write_text(f'{SECRETS_KEY} = "project"\n')
    conf = load_settings()
    assert conf.passcode == "project" and conf.store_path == Path("/h.sqlite")
    assert read_secrets_files()[SECRETS_KEY] == "project"


def test_a_malformed_secrets_file_is_skipped(no_secret_files: Path) -> None:
    local = no_secret_files / ".streamlit"
    local.mkdir()
    (local / "secrets.toml").write_text("this is = = not toml")
    assert read_secrets_files() == {}


def test_store_path_precedence(no_secret_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWPAIN_HOME", str(no_secret_files / "kh"))
    assert load_settings({}).store_path == no_secret_files / "kh" / "knowpain.sqlite"
    assert load_settings({STORE_KEY: " ~/x.sqlite "}).store_path == Path.home() / "x.sqlite"
    assert load_settings({STORE_KEY: "/s.sqlite"}, store_path="/o.sqlite").store_path == \
        Path("/o.sqlite")


def test_settings_never_show_the_passcode() -> None:
    assert "hunter2" not in repr(load_settings({SECRETS_KEY: "hunter2"}))


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
    assert "locked" in message and PASSCODE_ENV in message and SECRETS_KEY in message
    assert "anything" not in message


@pytest.mark.parametrize("given", ["", None])
def test_empty_passcode_is_refused(given: str | None) -> None:
    with pytest.raises(AccessError, match="no passcode given"):
        check_passcode(given, "secret")


def test_the_comparison_goes_through_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes compared are SHA-256 digests of the given and the expected passcode (fixed
    length, so not even the length leaks), in constant time: a plain ``==`` (or comparing
    anything else) fails this test."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    check_passcode("secret", "secret")
    with pytest.raises(AccessError):
        check_passcode("secreT", "secret")
    with pytest.raises(AccessError):
        check_passcode("a much longer guess", "secret")

    def digest(text: str) -> bytes:
        return hashlib.sha256(text.encode()).digest()

    assert calls == [(digest("secret"), digest("secret")), (digest("secreT"), digest("secret")),
                     (digest("a much longer guess"), digest("secret"))]


def test_a_grant_lasts_while_the_passcode_stays_the_same() -> None:
    conf = load_settings({SECRETS_KEY: "one"})
    grant = unlock(conf, "one")
    assert grant_is_valid(grant, conf)
    assert "one" not in repr(grant)
    assert not grant_is_valid(grant, load_settings({SECRETS_KEY: "two"}))
    assert not grant_is_valid(None, conf)
    with pytest.raises(AccessError):
        unlock(conf, "two")
