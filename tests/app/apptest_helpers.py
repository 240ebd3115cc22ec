"""Helpers for the AppTest tier: start the app, read what it shows, catch downloads."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import ClassVar

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 30

if str(ROOT) not in sys.path:  # the pages import app_pages.* like `streamlit run` allows
    sys.path.insert(0, str(ROOT))

PERCENT = re.compile(r"(<|>)?(\d+)\s?%")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """What a reader sees of Markdown the app escaped (model.text.safe.plain): backslash
    escapes and invisible word joiners removed."""
    return _ESCAPED.sub(r"\1", str(markdown)).replace("\u2060", "")


def start(query: dict[str, str] | None = None, screened: bool = True) -> AppTest:
    """The app from a link with these answers; ``screened`` adds "none of the (other)
    warning signs apply" to the link, as a lifter who has answered the screen would."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    query = dict(query or {})
    if screened:
        query.setdefault("none_apply", "1")
    if query:
        at.query_params.update(query)
    return at.run()


def texts(at, skip: str | None = None) -> list[str]:
    """Every piece of prose the page (or a block) shows, not widget labels or options, as
    the reader sees it (escapes removed, see :func:`shown`).

    ``skip`` names the key of a block whose prose is left out (e.g. the questions, whose
    captions list the answer options).
    """
    if skip is not None:
        left_out = texts(at.get_by_key(skip))
        out = texts(at)
        for t in left_out:
            out.remove(t)
        return out
    out: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "error",
                 "warning", "info", "success", "exception"):
        out += [shown(el.value) for el in getattr(at, kind)]
    out += [shown(e.label) for e in at.expander]
    return out


def cause_percent(at: AppTest, cause: str) -> int:
    """The whole percent shown in the cause's card (``<1 %`` reads as 0, ``>99 %`` as 100)."""
    block = at.get_by_key(f"cause_{cause}")
    head = block.markdown[0].value
    m = PERCENT.search(head)
    assert m, f"no percentage in {head!r}"
    value = int(m.group(2))
    return {"<": 0, ">": 100}.get(m.group(1) or "", value)


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


class RecordingStorage(MemoryMediaFileStorage):
    """Media storage that keeps every file handed to it, so tests can read downloads."""

    files: ClassVar[list[tuple[bytes, str, str | None]]] = []

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        data = path_or_data if isinstance(path_or_data, bytes) else path_or_data.encode()
        RecordingStorage.files.append((data, mimetype, filename))
        return super().load_and_get_id(path_or_data, mimetype, kind, filename)
