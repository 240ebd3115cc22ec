"""A time and memory bound for one call on untrusted input (the property tests use it)."""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, settings

from model.errors import KnowpainError

#: Scale the number of examples for a deeper run, e.g. KNOWPAIN_PROPERTY_SCALE=20.
SCALE = float(os.environ.get("KNOWPAIN_PROPERTY_SCALE", "1"))


def untrusted(examples: int = 150) -> settings:
    """Settings of a property test on untrusted input: a bounded number of examples (they run
    in `make test`), no per-example deadline from hypothesis (the bound below is ours)."""
    return settings(max_examples=max(1, round(examples * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


UNTRUSTED = untrusted()


def _peak_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def result_or_refusal(call: Callable[[], Any], *, seconds: float = 2.0,
                      megabytes: float = 200.0) -> Any:
    """``call()``'s result, or the KnowpainError it raised; any other exception propagates
    (a bug). Fails if the call took longer than ``seconds`` or raised the process's peak
    resident memory by more than ``megabytes`` (cheap enough to check on every example;
    the runaway allocations this guards against were gigabytes)."""
    before = _peak_mb()
    start = time.perf_counter()
    try:
        outcome: Any = call()
    except KnowpainError as exc:
        outcome = exc
    elapsed = time.perf_counter() - start
    grew = _peak_mb() - before
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert grew < megabytes, f"peak memory grew by {grew:.0f} MB"
    return outcome


@contextmanager
def bounded_block(seconds: float, megabytes: float) -> Iterator[None]:
    """Fail if the block took more than ``seconds`` or its Python heap (numpy arrays
    included) peaked above ``megabytes``: the limit tests' fixture, one definition."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MB"
