"""Scoring evidence rows that do not fit one machine's memory: a Dask DataFrame, partition
by partition (install the ``knowpain[dask]`` extra).

Each partition goes through the same path as an in-memory frame (integer codes,
deduplication, chunks), so the result equals ``posterior_batch`` on the concatenated rows.
Dask decides where partitions run — the local threaded scheduler, processes, or a
``dask.distributed`` cluster the user already has; there is no cluster code here.

    import dask.dataframe as dd
    from model.inference.dask import posterior_batch
    rows = dd.read_parquet("findings/*.parquet")
    posterior_batch(rows, model.load_model()).to_parquet("posteriors/")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class _Scorer(Protocol):
    variables: Mapping[str, Sequence[str]]

    def posterior_batch(self, df: Any) -> Any: ...


def posterior_batch(ddf: Any, scorer: _Scorer) -> Any:
    """A lazy Dask DataFrame of posteriors, one column ``node=state`` per node and state.

    ``scorer`` is a :class:`model.inference.Network` or a knowpain ``Model``; ``ddf`` has one
    column per observed node (NaN or "" for unknown). Nothing runs until ``.compute()``.
    """
    import pandas as pd

    try:
        import dask.dataframe  # noqa: F401 (checks the extra is installed)
    except ImportError:
        raise ImportError(
            "the Dask path needs the optional extra: pip install 'knowpain[dask]'"
        ) from None
    columns = [f"{n}={s}" for n, states in scorer.variables.items() for s in states]
    meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    return ddf.map_partitions(scorer.posterior_batch, meta=meta)
