"""Scoring a DataFrame of evidence rows: state strings -> integer codes -> deduplicated,
chunked queries -> one float block.

No Python objects reach the inner loop: each column becomes ``int8``/``int16`` codes through
one hash pass (``pd.Categorical``), identical rows are scored once, and rows go through the
engine in chunks, written into one preallocated ``(rows, states)`` array that the result
DataFrame wraps without copying.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from model.errors import EvidenceError, ImpossibleEvidenceError, listing, quote

if TYPE_CHECKING:
    import pandas as pd

    from model.inference.engine import BatchResult

SAMPLE = 20000  # rows looked at before hashing a whole big frame for duplicates
CHUNK = 131072  # rows per engine call: bounds the working set whatever the frame's size
QueryFn = Callable[[Mapping[str, np.ndarray]], "BatchResult"]
CodesQueryFn = Callable[..., "BatchResult"]


class FrameEvidenceError(EvidenceError):
    """A column that is not a node, or a cell that is not one of its node's states."""


def encode_frame(
    df: pd.DataFrame, variables: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """``{node: codes}`` with the state index per row, -1 where unknown (NaN, None, "")."""
    import pandas as pd

    codes: dict[str, np.ndarray] = {}
    for col in df.columns:
        if col not in variables:
            raise FrameEvidenceError(
                f"unknown column {quote(col)}; columns must be nodes: {listing(variables)}"
            )
        states = list(variables[col])
        values = df[col]
        # one hash pass over the column, then decisions on its few distinct values only
        raw, uniques = pd.factorize(values, use_na_sentinel=True)
        known = {s: i for i, s in enumerate(states)}
        lookup = np.full(len(uniques) + 1, -1, dtype=np.int64)  # last entry: NaN/None
        for k, u in enumerate(uniques):
            if isinstance(u, str) and u in known:
                lookup[k] = known[u]
            elif not (isinstance(u, str) and u.strip() == "") and not pd.isna(u):
                row = int(np.flatnonzero(raw == k)[0])
                raise FrameEvidenceError(
                    f"row {row}, column {col!r}: unknown state {quote(u)}; "
                    f"valid states are: {listing(states)}"
                )
        c = lookup[raw]
        if (c >= 0).any():
            codes[col] = c.astype(np.int16)
    return codes


def _row_keys(codes: Mapping[str, np.ndarray], cards: Mapping[str, int]) -> np.ndarray | None:
    """One int64 per row (mixed radix over the codes), or None if it would overflow."""
    radix = 1
    key = None
    for n, c in codes.items():
        base = cards[n] + 1
        if radix * base >= 2**62:
            return None
        part = (c.astype(np.int64) + 1) * radix
        key = part if key is None else key + part
        radix *= base
    return key


def score_codes(
    codes: Mapping[str, np.ndarray],
    cards: Mapping[str, int],
    names: Sequence[str],
    query: QueryFn,
    size: int,
    chunk: int = CHUNK,
    codes_query: CodesQueryFn | None = None,
) -> np.ndarray:
    """Posterior marginals of every node for coded rows: a ``(size, sum(cards))`` array.

    Identical rows are scored once; the rest go through ``query`` ``chunk`` rows at a time
    (or ``codes_query``, which takes the codes themselves and an ``out=`` array to fill, in
    ``names`` order: :meth:`CompiledNetwork.query_codes` of the same network).
    """
    import pandas as pd

    total = sum(cards[n] for n in names)
    offsets = dict(zip(names, np.cumsum([0, *[cards[n] for n in names[:-1]]]), strict=True))
    key = _row_keys(codes, cards) if codes else np.zeros(size, dtype=np.int64)
    inverse = None
    if key is not None and size > SAMPLE:  # a sample says whether duplicates are common
        probe = key[:: size // SAMPLE]
        if len(pd.unique(probe)) > 0.8 * len(probe):
            key = None
    if key is not None:
        inv, uniques = pd.factorize(key, sort=False)
        if len(uniques) < 0.8 * size:  # worth it: score each distinct row once
            first = np.zeros(len(uniques), dtype=np.int64)
            first[inv[::-1]] = np.arange(size - 1, -1, -1)  # first occurrence of each row
            codes = {n: c[first] for n, c in codes.items()}
            inverse = inv
    rows = size if inverse is None else len(codes[next(iter(codes))]) if codes else 1
    # column-major: the engine writes each state's row contiguously, and pandas keeps
    # exactly this layout (one float block, columns contiguous) without a copy
    unique_out = np.empty((total, rows)).T
    pad = {} if codes_query else {
        n: np.vstack([np.eye(cards[n]), np.ones((1, cards[n]))]) for n in codes
    }
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        try:
            if codes_query is not None:  # the engine writes straight into the result
                codes_query({n: c[start:stop] for n, c in codes.items()},
                            out=unique_out[start:stop])
                continue
            # code -1 -> the row of ones
            res = query({n: pad[n][c[start:stop]] for n, c in codes.items()})
        except ImpossibleEvidenceError as exc:
            bad = np.asarray(exc.rows, dtype=np.int64) + start
            if inverse is not None:
                bad = np.flatnonzero(np.isin(inverse, bad))
            raise ImpossibleEvidenceError(bad.tolist()) from None
        block = unique_out[start:stop]
        for n in names:
            o = offsets[n]
            block[:, o : o + cards[n]] = res.marginals[n]
    if inverse is None:
        return unique_out
    return unique_out[inverse]


def posterior_frame(
    df: pd.DataFrame,
    variables: Mapping[str, Sequence[str]],
    query: QueryFn,
    chunk: int = CHUNK,
    codes_query: CodesQueryFn | None = None,
) -> pd.DataFrame:
    """Posterior marginals per row of ``df``: one column ``node=state`` per node and state."""
    import pandas as pd

    names = list(variables)
    cards = {n: len(variables[n]) for n in names}
    codes = encode_frame(df, variables)
    values = score_codes(codes, cards, names, query, len(df), chunk, codes_query)
    columns = [f"{n}={s}" for n in names for s in variables[n]]
    return pd.DataFrame(values, index=df.index, columns=columns, copy=False)
