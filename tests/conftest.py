"""Shared fixtures. This folder is on sys.path, so tests can ``import peers``."""

from __future__ import annotations

import pytest

import model


@pytest.fixture(scope="session")
def default_model() -> model.Model:
    return model.load_model()


@pytest.fixture(scope="session")
def pgmpy_model() -> model.Model:
    return model.load_model(backend="pgmpy")
