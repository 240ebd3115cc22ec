"""The downloadable report shows hostile therapist text and a crafted link as plain text."""

from __future__ import annotations

import re

import pytest
from hostile import EVIL, EVIL_LINK, hostile_calibration

import model
from model.text import report

STRUCTURE = {"h1", "h2", "h3", "p", "ul", "li", "strong", "em", "hr", "code", "br"}


@pytest.fixture(scope="module")
def hostile_model() -> model.Model:
    return model.Model(hostile_calibration(model.load_model().calibration))


def tags_of(markdown: str) -> set[str]:
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is not installed")
    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return set(re.findall(r"<\s*([a-zA-Z0-9]+)", md.render(markdown)))


@pytest.mark.parametrize("flags", [(), ("pain_7_or_more",), ("saddle_numbness",)])
def test_report_of_hostile_calibration_has_no_link_image_or_html(hostile_model, flags):
    cal = hostile_model.calibration
    evidence = {"training_age": "first_sessions", "low_back_soreness": "mild",
                "bracing_loss": "often", "soreness_duration": "over_7_days"}
    d = hostile_model.diagnose(evidence, flags=dict.fromkeys(flags, True))
    parsed = report.parse_link(EVIL_LINK, cal)
    text = report.build_report(cal, d, flags, link="http://app/?a=<b>[x](y)",
                               notices=parsed.notices)
    assert tags_of(text) <= STRUCTURE
    outside_code = re.sub(r"`[^`]*`", "", text)
    for unescaped in (r"(?<!\\)\]\(", r"(?<!\\)<img", r"(?<!\\)<b>", r"https://evil"):
        assert re.search(unescaped, outside_code) is None, unescaped
    assert "\\[Claim your prize\\]" in text  # shown, escaped


def test_link_content_is_never_repeated(hostile_model):
    parsed = report.parse_link(EVIL_LINK, hostile_model.calibration)
    joined = " ".join(parsed.notices)
    for value in ("evil.example", "127.0.0.1", "bogus", "<img"):
        assert value not in joined.replace(EVIL, "")  # only the calibration's own titles
    assert parsed.evidence == {"max_attempt": "yes"}
    assert len(parsed.notices) == 1


def test_five_thousand_flags_give_one_notice_fast(default_model):
    import time

    params = {"flags": ",".join(["bogus"] * 5000)}
    start = time.perf_counter()
    parsed = report.parse_link(params, default_model.calibration)
    assert time.perf_counter() - start < 0.05
    assert len(parsed.notices) == 1 and "too long" in parsed.notices[0]
    assert parsed.flags == frozenset() and parsed.evidence == {}


def test_links_over_the_limits_are_ignored_whole(default_model):
    from calibration.limits import LINK_MAX_CHARS, LINK_MAX_VALUES

    cal = default_model.calibration
    many = {f"k{i}": "x" for i in range(LINK_MAX_VALUES + 1)}
    long = {"training_age": "novice", "x": "y" * LINK_MAX_CHARS}
    for params in (many, long):
        parsed = report.parse_link(params, cal)
        assert parsed.evidence == {} and len(parsed.notices) == 1
    under = {"training_age": "novice", "flags": ",".join(["bogus"] * 100)}
    parsed = report.parse_link(under, cal)
    assert parsed.evidence == {"training_age": "novice"}
    assert parsed.notices == ("100 parts of the link could not be used and were ignored: 100 "
                              "warning signs this app does not know (please check the warning "
                              "signs yourself).",)
