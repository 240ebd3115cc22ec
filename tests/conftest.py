"""Shared fixtures. This folder is on sys.path, so tests can ``import peers``."""

from __future__ import annotations

import pytest

import model


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the user's real store, or sees a real passcode."""
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path_factory.mktemp("knowpain_home")))
    for var in ("KNOWPAIN_THERAPIST_PASSCODE", "KNOWPAIN_PASSCODE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def default_model() -> model.Model:
    return model.load_model()


@pytest.fixture(scope="session")
def pgmpy_model() -> model.Model:
    return model.load_model(backend="pgmpy")
