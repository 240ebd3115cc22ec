"""Every bad argument to the Python API is a KnowpainError naming the argument and what is
allowed; messages cut long user text short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.errors import EvidenceError, KnowpainError, UsageError

LONG = "x" * 100_000


# ---- posterior_batch ----------------------------------------------------------------------------
def test_a_batch_that_is_not_a_dataframe_is_a_usage_error(default_model):
    with pytest.raises(UsageError, match="DataFrame"):
        default_model.posterior_batch([{"max_attempt": "yes"}])  # type: ignore[arg-type]


def test_duplicate_columns_are_refused_by_name(default_model):
    df = pd.DataFrame([["no", "yes"]], columns=["max_attempt", "max_attempt"])
    with pytest.raises(EvidenceError, match="'max_attempt' appears 2 times"):
        default_model.posterior_batch(df)


@pytest.mark.parametrize("cell", [{"a": 1}, ["no"], {"no"}, ("no",), object()])
def test_cells_that_are_not_states_are_refused_with_row_and_column(default_model, cell):
    df = pd.DataFrame({"max_attempt": ["no", None, cell]})
    with pytest.raises(EvidenceError, match=r"row 2, column 'max_attempt'.*is not a state"):
        default_model.posterior_batch(df)


def test_unknown_columns_are_refused_with_the_message_cut_short(default_model):
    with pytest.raises(EvidenceError, match="unknown column") as info:
        default_model.posterior_batch(pd.DataFrame({LONG: ["no"]}))
    assert len(str(info.value)) < 1_000
    with pytest.raises(EvidenceError, match="unknown column 3"):
        default_model.posterior_batch(pd.DataFrame({3: ["no"]}))


def test_none_nan_and_pd_na_are_unknown_in_a_batch(default_model):
    rows = pd.DataFrame({
        "max_attempt": pd.array([pd.NA, "yes", None], dtype=object),
        "bracing_loss": pd.array([None, pd.NA, "often"], dtype="string"),
        "training_age": [np.nan, "", "novice"],
    })
    out = default_model.posterior_batch(rows)
    prior = default_model.posterior({})
    assert out.loc[0, "max_attempt=yes"] == pytest.approx(prior["max_attempt"]["yes"])
    expected = default_model.posterior({"max_attempt": "yes"})
    assert out.loc[1, "stabilizer_overload=yes"] == pytest.approx(
        expected["stabilizer_overload"]["yes"], abs=1e-12)
    assert np.isfinite(out.to_numpy()).all()


def test_a_clean_batch_keeps_working(default_model):
    df = pd.DataFrame({"max_attempt": ["yes", "no"], "onset": ["same_day", ""]})
    out = default_model.posterior_batch(df)
    assert out.shape[0] == 2


# ---- sensitivity, probability ----------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"top": 0}, "top must be"), ({"top": -1}, "top must be"), ({"top": "x"}, "top must be"),
    ({"top": True}, "top must be"), ({"top": 2.5}, "top must be"),
    ({"delta": 0}, "delta must be"), ({"delta": -0.1}, "delta must be"),
    ({"delta": float("nan")}, "delta must be"), ({"delta": 5}, "delta must be"),
    ({"delta": "0.1"}, "delta must be"), ({"delta": 1e-320}, "delta must be"),
])
def test_sensitivity_arguments_are_checked(default_model, kwargs, needle):
    with pytest.raises(UsageError, match=needle):
        default_model.sensitivity("stabilizer_overload=yes", **kwargs)


def test_sensitivity_accepts_its_documented_arguments(default_model):
    items = default_model.sensitivity("stabilizer_overload=yes", delta=0.5, top=3)
    assert len(items) == 3
    assert default_model.sensitivity("stabilizer_overload=yes", top=np.int64(2))
    assert default_model.sensitivity("stabilizer_overload=yes", delta=np.float32(0.1), top=2)


@pytest.mark.parametrize("target", [5, None, "nonsense", "stabilizer_overload"])
def test_a_malformed_target_names_the_argument(default_model, target):
    with pytest.raises(UsageError, match="target must be text written node=state"):
        default_model.probability(target)  # type: ignore[arg-type]


@pytest.mark.parametrize("call", [
    lambda m: m.posterior({LONG: "yes"}),
    lambda m: m.posterior({"max_attempt": LONG}),
    lambda m: m.probability(f"{LONG}=yes"),
    lambda m: m.diagnose({}, flags={LONG: True}),
    lambda m: m.diagnose({}, flags={"saddle_numbness": LONG}),
    lambda m: m.sensitivity("stabilizer_overload=yes", top=LONG),
])
def test_messages_never_echo_a_long_argument_whole(default_model, call):
    with pytest.raises(KnowpainError) as info:
        call(default_model)
    assert len(str(info.value)) < 1_000


@pytest.mark.parametrize("value", [None, float("nan"), pd.NA])
def test_an_unanswered_warning_sign_is_not_ticked(default_model, value):
    d = default_model.diagnose({}, flags={"saddle_numbness": value})
    assert d.triage.level == "none"


@pytest.mark.parametrize("path", [5, ["a.toml"], b"a.toml"])
def test_load_model_names_a_bad_path(path):
    import model

    with pytest.raises(UsageError, match="path must be"):
        model.load_model(path)  # type: ignore[arg-type]
