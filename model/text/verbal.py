"""The verbal–numerical probability scale used to elicit and show numbers.

Anchors follow the scale of Renooij & Witteman (1999) and van der Gaag et al. (1999/2002): a
0–100 line with seven words on it. Words are always shown next to a number, never instead of
one (Witteman 2007 found the same answers on numeric, verbal and combined scales, and people
preferred the combined one).

Two changes from the published scale, both for readers who are lifters, not modellers: the
end words are kept for the ends (below 0.5 % and from 99.5 %: what shows as "<1 %" and
">99 %"), so the honest catch-all cause at
5 % reads "improbable", not "(almost) impossible", and 93 % reads "probable", not "(almost)
certain"; and the 25 % anchor reads "unlikely" where the scale's "uncertain" would read as
"don't know".

Probabilities are handled as floats in [0, 1]; the anchors also carry their position on the
0–100 line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from model.errors import UsageError

__all__ = [
    "ANCHORS",
    "CONFIDENCE_LEVELS",
    "Anchor",
    "confidence_for",
    "describe",
    "number_for",
    "word_for",
]


@dataclass(frozen=True)
class Anchor:
    """One labelled point of the scale: ``word`` sits at ``percent`` on the 0–100 line."""

    word: str
    percent: int

    @property
    def probability(self) -> float:
        """The anchor's position as a probability in [0, 1]."""
        return self.percent / 100


ANCHORS: tuple[Anchor, ...] = (
    Anchor("(almost) certain", 100),
    Anchor("probable", 85),
    Anchor("expected", 75),
    Anchor("fifty-fifty", 50),
    Anchor("unlikely", 25),
    Anchor("improbable", 15),
    Anchor("(almost) impossible", 0),
)

# Extra spellings accepted by number_for (lower case) -> canonical anchor word.
_ALIASES: dict[str, str] = {
    "almost certain": "(almost) certain",
    "certain": "(almost) certain",
    "almost impossible": "(almost) impossible",
    "impossible": "(almost) impossible",
    "fifty fifty": "fifty-fifty",
    "50-50": "fifty-fifty",
    "uncertain": "unlikely",
}

#: The end words are used only beyond these bounds: exactly what shows as "<1 %" and ">99 %".
EXTREME_LOW, EXTREME_HIGH = 0.005, 0.995

CONFIDENCE_LEVELS: dict[str, int] = {"low": 5, "medium": 20, "high": 50}


def _probability(p: float) -> float:
    """Return ``p`` as a float, or raise ValueError naming it if it is not in [0, 1]."""
    if isinstance(p, (bool, str, bytes)):
        raise UsageError(f"probability must be a number in [0, 1], got {p!r}")
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise UsageError(f"probability must be a number in [0, 1], got {p!r}") from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise UsageError(f"probability must be in [0, 1], got {p!r}")
    return value


def word_for(p: float) -> str:
    """The word for probability ``p``: the end words for what rounds to 0 % or 100 % (shown
    as "<1 %" and ">99 %"), otherwise the nearest of the inner anchors.

    Ties (a point exactly halfway between two anchors) go to the anchor nearer to 50 %, the
    less extreme word. Raises ``UsageError`` naming the value when ``p`` is NaN or outside
    [0, 1].
    """
    value = _probability(p)
    if value < EXTREME_LOW:
        return ANCHORS[-1].word
    if value >= EXTREME_HIGH:
        return ANCHORS[0].word
    percent = value * 100
    best = min(
        ANCHORS[1:-1],
        key=lambda a: (round(abs(a.percent - percent), 9), abs(a.percent - 50)),
    )
    return best.word


def number_for(word: str) -> float:
    """The probability in [0, 1] at which ``word`` sits on the scale.

    Matching ignores case and surrounding spaces; "almost certain", "certain", "impossible"
    and "almost impossible" are accepted for the bracketed end words. Raises ``ValueError``
    listing the allowed words when ``word`` is not on the scale.
    """
    key = str(word).strip().lower()
    key = _ALIASES.get(key, key)
    for anchor in ANCHORS:
        if anchor.word == key:
            return anchor.probability
    allowed = ", ".join(repr(a.word) for a in ANCHORS)
    raise UsageError(f"{word!r} is not a word on the scale (allowed: {allowed})")


def describe(p: float) -> str:
    """A probability as a whole percent with its word, e.g. ``"72 % — expected"``.

    Values that round to 0 % or 100 % are shown as ``"<1 %"`` and ``">99 %"`` so that no
    estimate ever reads as impossible or certain. Raises ``ValueError`` like
    :func:`word_for`.
    """
    value = _probability(p)
    percent = math.floor(value * 100 + 0.5)  # 0.005 -> 1 %, 0.995 -> 100 %
    if percent < 1:
        shown = "<1 %"
    elif percent > 99:
        shown = ">99 %"
    else:
        shown = f"{percent} %"
    return f"{shown} — {word_for(value)}"


def confidence_for(level_or_number: str | float) -> float:
    """Equivalent sample size for a confidence level name or a positive number.

    Level names (``"low"``, ``"medium"``, ``"high"``, any case) map through
    :data:`CONFIDENCE_LEVELS`; a finite positive number is returned as a float. Raises
    ``ValueError`` for unknown names and for zero, negative, infinite or NaN numbers.
    """
    if isinstance(level_or_number, str):
        key = level_or_number.strip().lower()
        if key in CONFIDENCE_LEVELS:
            return float(CONFIDENCE_LEVELS[key])
        allowed = ", ".join(CONFIDENCE_LEVELS)
        raise UsageError(
            f"unknown confidence level {level_or_number!r} (allowed: {allowed}, "
            "or a positive number)"
        )
    if isinstance(level_or_number, bool):
        raise UsageError(
            f"confidence must be a level name or a positive number, got {level_or_number!r}"
        )
    try:
        value = float(level_or_number)
    except (TypeError, ValueError):
        raise UsageError(
            f"confidence must be a level name or a positive number, got {level_or_number!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"confidence must be a finite positive number, got {level_or_number!r}")
    return value
