"""Batch scoring: the same numbers as one-at-a-time, with "" and NaN meaning unknown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import model


def test_batch_equals_single_rows(default_model):
    df = pd.DataFrame(
        {
            "training_age": ["first_sessions", "", np.nan, "trained"],
            "bracing_loss": ["often", "no", "sometimes", None],
            "low_back_soreness": ["mild", "marked", "", "none"],
        }
    )
    out = default_model.posterior_batch(df)
    assert len(out) == 4
    for i, row in df.iterrows():
        ev = {k: v for k, v in row.items() if isinstance(v, str) and v}
        single = default_model.posterior(ev)
        for c in default_model.causes:
            assert out.loc[i, f"{c}=yes"] == pytest.approx(single[c]["yes"], abs=1e-12)


def test_the_pgmpy_backend_scores_batches_like_the_engine(default_model, pgmpy_model):
    """The reference backend has no coded path: its rows go through ``query`` instead."""
    df = pd.DataFrame({
        "training_age": ["first_sessions", "", "trained", "first_sessions"],
        "bracing_loss": ["often", None, "no", "often"],
        "low_back_soreness": ["mild", "marked", "", "mild"],
    })
    ours = default_model.posterior_batch(df)
    theirs = pgmpy_model.posterior_batch(df)
    assert list(theirs.columns) == list(ours.columns)
    np.testing.assert_allclose(theirs.to_numpy(), ours.to_numpy(), atol=1e-9)


def test_unknown_column_and_state_are_named(default_model):
    with pytest.raises(model.EvidenceError, match="unknown column 'age'"):
        default_model.posterior_batch(pd.DataFrame({"age": ["x"]}))
    with pytest.raises(model.EvidenceError, match=r"row 1, column 'bracing_loss'.*valid states"):
        default_model.posterior_batch(pd.DataFrame({"bracing_loss": ["no", "always"]}))
