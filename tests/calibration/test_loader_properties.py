"""Property: any calibration text gives a Calibration or a CalibrationError — never another
exception — within a time and memory bound (hypothesis, bounded examples)."""

from __future__ import annotations

import copy
import math
import tomllib

import tomli_w
from bounds import UNTRUSTED, result_or_refusal, untrusted
from hypothesis import given
from hypothesis import strategies as st

from calibration.loader import parse_calibration
from calibration.schema import Calibration
from model.errors import CalibrationError
from model.service.policy import self_contained, shipped_default

DEFAULT_TEXT = self_contained(shipped_default())
DEFAULT_DOC = tomllib.loads(DEFAULT_TEXT)
KEYS = ["network", "nodes", "states", "parents", "cpt", "table", "noisy_or", "noisy_max",
        "leak", "role", "label", "confidence", "state_labels", "notes", "companions",
        "outcome", "outcome_absent", "flags", "evidence_rules", "fixes", "checks",
        "scenarios", "messages", "id", "level", "when", "good_state", "cues", "descending",
        "target", "evidence", "margin", "a", "b", "yes", "no", ""]

NAMES = sorted({*DEFAULT_DOC["nodes"],
                *(s for n in DEFAULT_DOC["nodes"].values() for s in n["states"])})
scalars = st.one_of(
    st.text(max_size=20), st.sampled_from(KEYS), st.sampled_from(NAMES),
    st.lists(st.sampled_from(NAMES), max_size=4), st.integers(-3, 3), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 0.5, 1e-320]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=25,
)


def check(text: str) -> None:
    outcome = result_or_refusal(lambda: parse_calibration(text))
    assert isinstance(outcome, (Calibration, CalibrationError)), outcome
    if isinstance(outcome, CalibrationError):
        assert outcome.problems and len(str(outcome)) < 20_000


def toml_or_none(doc: dict) -> str | None:
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return None


@UNTRUSTED
@given(st.text(max_size=400))
def test_any_text(text):
    check(text)


@UNTRUSTED
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_any_document_shape(doc):
    text = toml_or_none(doc)
    if text is not None:
        check(text)


@st.composite
def mutated_default(draw) -> dict:
    """The shipped calibration with one to three values somewhere replaced."""
    doc = copy.deepcopy(DEFAULT_DOC)
    for _ in range(draw(st.integers(1, 3))):
        here = doc
        while True:
            keys = list(here) if isinstance(here, dict) else list(range(len(here)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = here[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                here = child
                continue
            here[key] = draw(values)
            break
    return doc


@untrusted(100)
@given(mutated_default())
def test_the_shipped_calibration_with_anything_changed(doc):
    text = toml_or_none(doc)
    if text is not None:
        check(text)


def test_the_unchanged_default_is_valid():
    assert isinstance(parse_calibration(DEFAULT_TEXT), Calibration)
    assert not math.isnan(DEFAULT_DOC["nodes"]["training_age"]["confidence"])
