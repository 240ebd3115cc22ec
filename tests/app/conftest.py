"""Fixtures for the AppTest tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apptest_helpers import RecordingStorage


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bytes, str, str | None]]]:
    """Files offered for download during the test: (bytes, mimetype, file name)."""
    import streamlit.testing.v1.app_test as app_test

    RecordingStorage.files = []
    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordingStorage)
    yield RecordingStorage.files
