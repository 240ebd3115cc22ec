"""model.text.safe: text that is not the project's own renders as exactly what was written.

The authoritative check is Streamlit's own renderer in Chromium (tests/e2e); here a CommonMark
renderer (markdown-it-py, when installed) checks the same property for any text.
"""

from __future__ import annotations

import html
import re

import pytest
from bounds import untrusted
from hypothesis import given
from hypothesis import strategies as st

from model.text.safe import WORD_JOINER, code_span, plain, plain_join, printable

HOSTILE = (
    "[win a prize](https://evil.example/login) **bold** ![x](http://127.0.0.1:9/px.png) "
    "<img src=http://127.0.0.1:9/i.png> <script>alert(1)</script> www.evil.com a@b.co "
    ":red[red] :material/home: $x^2$ &amp; `code` ~~gone~~ <https://auto.link>\n"
    "# heading\n- item\n1. one\n> quote\n| a | b |\n|---|---|\n---\n[ref]: https://r.example\n"
)


def render(text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is not installed")
    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return md.render(text)


def visible(rendered: str) -> str:
    """The text a reader sees: tags dropped, entities decoded, invisible joiners removed."""
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace(WORD_JOINER, "")
    return " ".join(text.split())


def test_hostile_markdown_renders_as_text_only():
    rendered = render(plain(HOSTILE))
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", rendered))
    assert tags <= {"p", "br"}, tags
    assert visible(rendered) == " ".join(HOSTILE.split())


@pytest.mark.parametrize("text", ["    indented", "a\n\n    code\n\tmore", "\t\ttabs"])
def test_indentation_never_makes_a_code_block(text):
    rendered = render(plain(text))
    assert set(re.findall(r"<\s*([a-zA-Z0-9]+)", rendered)) <= {"p", "br"}, rendered
    assert visible(rendered) == " ".join(text.split())


def test_addresses_are_broken_for_gfm_autolinks():
    escaped = plain("see www.evil.com or https://evil.org or mail a@b.co")
    for autolink in ("www.", "https://", "a@"):
        assert autolink not in escaped.replace("\\", "")


def test_control_and_bidi_characters_are_removed():
    assert printable("a\x1b[2Jb\u202ec\rd\x00") == "a[2Jbc\nd"
    assert printable(None) == ""
    assert "\x1b" not in plain("\x1b[31mred")


def test_plain_join_and_code_span():
    assert plain_join(["*a*", "b"], "; ") == "\\*a\\*; b"
    assert code_span("http://x/?a=1") == "`http://x/?a=1`"
    assert code_span("a`b``c") == "```a`b``c```"
    rendered = render(code_span("`x` <img src=y>"))
    assert "<img" not in rendered and visible(rendered) == "`x` <img src=y>"


@untrusted(200)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_renders_as_itself(text):
    rendered = render(plain(text))
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", rendered))
    assert tags <= {"p", "br"}, (text, rendered)
    assert visible(rendered) == " ".join(printable(text).split())


@untrusted(200)
@given(st.text(alphabet="[]()!<>*_`#-+=.:|\\~$&@ahtpsw/ \t\n1", max_size=80))
def test_markdown_punctuation_soup_renders_as_itself(text):
    rendered = render(plain(text))
    assert set(re.findall(r"<\s*([a-zA-Z0-9]+)", rendered)) <= {"p", "br"}
    assert visible(rendered) == " ".join(text.split())
