"""Shared pieces of the benchmark scripts: the machine line and the ratio table."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def machine() -> str:
    """One line naming the machine the figures came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, {platform.system()} {platform.release()}"
    )


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


@dataclass
class Table:
    title: str
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def add(
        self,
        what: str,
        ours: float,
        peer: str,
        theirs: float | None,
        target: str,
        min_ratio: float | None,
        note: str = "",
        max_seconds: float | None = None,
    ) -> None:
        """One row; ``met`` is judged by ``min_ratio`` or, failing that, ``max_seconds``."""
        ratio = theirs / ours if theirs else None
        met = ""
        if min_ratio is not None and ratio is not None:
            met = "yes" if ratio >= min_ratio else f"NO ({ratio / min_ratio:.0%} of target)"
        elif max_seconds is not None:
            met = "yes" if ours <= max_seconds else f"NO ({ours / max_seconds:.1f}× the limit)"
        self.rows.append(
            (
                what,
                fmt_time(ours),
                peer,
                fmt_time(theirs) if theirs else "",
                f"{ratio:,.1f}×" if ratio else "",
                target,
                met,
                note,
            )
        )

    def print(self) -> None:
        header = ("what", "ours", "peer", "peer time", "ratio", "target", "met", "note")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(len(header))]
        print(f"\n## {self.title}\n")
        print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in self.rows:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
