"""The engine's pairwise contraction (batched matmul, split into pieces when big) against
einsum, on random subscripts: shared kept axes, summed axes, axes summed out alone, the
batch axis on one side or both, and products big enough to be split by rows or columns."""

from __future__ import annotations

import numpy as np
import pytest

from model.inference import engine
from model.inference.engine import BATCH, _pair_step


def _random_pair(rng: np.random.Generator, big: bool):
    letters = "abcdefgh"
    a = "".join(rng.permutation(list(letters[: rng.integers(2, 6)])))
    b = "".join(rng.permutation([c for c in letters if c in a][: rng.integers(1, len(a))]
                                + list(letters[5 : 5 + rng.integers(0, 3)])))
    keep = "".join(c for c in dict.fromkeys(a + b) if rng.random() < 0.6)
    sizes = {c: int(rng.integers(2, 12 if big else 6)) for c in letters}
    return a, b, keep, sizes


@pytest.mark.parametrize("seed", range(60))
def test_pair_step_equals_einsum(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    big = seed % 2 == 0
    monkeypatch.setattr(engine, "PAIR_MIN", 1)
    monkeypatch.setattr(engine, "BATCH_MATMUL_MIN", 1)
    if big:  # small pieces, so that most products are split
        monkeypatch.setattr(engine, "GEMM_PIECE", 1 << 8)
    a, b, keep, sizes = _random_pair(rng, big)
    batch = seed % 3  # 0: none, 1: on a only, 2: on both
    rows = 3
    if batch:
        a += BATCH
        keep += BATCH
        if batch == 2:
            b = BATCH + b
    sizes[BATCH] = 1  # as compiled; the run has ``rows``
    x = rng.random([rows if c == BATCH else sizes[c] for c in a])
    y = rng.random([rows if c == BATCH else sizes[c] for c in b])
    step = _pair_step(a, b, keep, sizes)
    assert step is not None
    fn, natural = step
    assert sorted(natural) == sorted(keep)
    want = np.einsum(f"{a},{b}->{natural}", x, y)
    np.testing.assert_allclose(fn(x, y), want, rtol=1e-12, atol=0)


def test_big_products_are_split_into_single_thread_pieces():
    sizes = {"a": 5, "b": 294, "c": 500}
    fn, _ = _pair_step("ab", "bc", "ac", sizes)
    assert fn.keywords["mode"] == "cols"
    assert 5 * 294 * fn.keywords["piece"] <= engine.GEMM_PIECE
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 294)), rng.random((294, 500))
    np.testing.assert_allclose(fn(x, y), x @ y, rtol=1e-12)


def test_a_stack_of_tiny_products_over_the_batch_stays_an_einsum():
    """One small matrix per batch row is slower through matmul than through einsum's loop
    (100,000 rows of the design's network: 0.59 s against 0.25 s)."""
    sizes = {"a": 3, "b": 4, "c": 2, BATCH: 4096}
    assert _pair_step("ab" + BATCH, "bc" + BATCH, "ac" + BATCH, sizes) is None
    sizes.update(a=64, b=64, c=64)
    assert _pair_step("ab" + BATCH, "bc" + BATCH, "ac" + BATCH, sizes) is not None
