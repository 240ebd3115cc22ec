"""Text that did not come from the project, made safe to show.

Everything a renderer would *interpret* is neutralised, so what a user or therapist wrote is
shown exactly as written — never as a link, an image, HTML, a heading, emphasis, a colour
directive, LaTeX or an icon:

* :func:`plain` — for Markdown sinks: Streamlit's ``st.markdown``/``st.caption``/``st.warning``
  and the other alert boxes, widget labels, options and help texts, ``st.table`` cells, and the
  downloadable Markdown report. Markdown punctuation is backslash-escaped (CommonMark renders
  an escaped character as itself) and bare web addresses and e-mail addresses are broken with
  an invisible word joiner, because GitHub-flavoured Markdown turns ``www.x.org``,
  ``https://x.org`` and ``a@x.org`` into links even without any punctuation around them.
* :func:`code_span` — for text that must stay copyable character for character (a link, a
  file path): an inline code span, which Markdown never interprets.
* :func:`printable` — for plain-text sinks (a terminal, a CSV cell, a log line): control
  characters (which can move a terminal's cursor or hide text) and bidirectional overrides
  (which can make text read backwards) are removed.

Use :func:`plain` at the point where untrusted text meets a Markdown string, e.g.
``st.markdown(f"**{plain(spec.title)}** · {describe(p)}")``; the project's own Markdown
around it keeps working.
"""

from __future__ import annotations

import re

__all__ = ["WORD_JOINER", "code_span", "plain", "plain_join", "printable"]

#: U+2060: invisible, and not a character an address can contain.
WORD_JOINER = "\u2060"

# Every ASCII character with a meaning in CommonMark, GFM or Streamlit's Markdown extensions:
# emphasis and code (* _ ` ~), links and images ([ ] ( ) !), HTML and autolinks (< > &),
# block starts (# + - = . > | and digits followed by . or ), handled by escaping . and )),
# LaTeX ($), directives, colours, icons and emoji shortcodes (: [ ] { }), footnotes (^),
# and the backslash itself.
_SPECIALS = re.compile(r"([\\`*_~\[\](){}<>#+\-=.!|$:&^@])")
# Control characters (C0 except tab and newline, DEL, C1) and bidirectional controls.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
# What GFM's literal autolinks start with (a scheme, "www." or the "@" of an address), and a
# colon before a name (Streamlit reads ":material/name:" as an icon even when escaped).
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(?=://)|(?<=www)(?=\.)|(?=@)|(?<=:)(?=[a-z])")


def printable(text: object) -> str:
    """``text`` as a string without control characters or bidirectional overrides.

    ``\\r\\n`` and ``\\r`` become ``\\n``; tabs and newlines are kept.
    """
    value = "" if text is None else str(text)
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def plain(text: object) -> str:
    """``text`` escaped for Markdown, so that it renders as exactly these characters.

    ``plain("[win](https://evil.example)")`` renders as the text ``[win](https://evil.example)``
    with no link; control characters are dropped first (see :func:`printable`).
    """
    value = _INDENT.sub("", printable(text))  # an indented line would be a code block
    value = _AUTOLINK.sub(WORD_JOINER, value)
    return _SPECIALS.sub(r"\\\1", value)


def plain_join(items: object, separator: str = ", ") -> str:
    """Each item escaped with :func:`plain`, joined by the (project's own) ``separator``."""
    return separator.join(plain(item) for item in items)  # type: ignore[attr-defined]


def code_span(text: object) -> str:
    """``text`` as one line of inline code: shown verbatim, never a link, copyable as is.

    The backtick fence is longer than any run of backticks inside, so the text cannot close
    it early; line breaks become spaces (a code span is one line).
    """
    value = " ".join(printable(text).split("\n"))
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    return f"{fence}{pad}{value}{pad}{fence}"
