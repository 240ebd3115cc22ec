"""`make bench`: every benchmark script in one run, one table each."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_engine.py", "bench_networks.py", "bench_learn.py", "bench_app.py"]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from common import machine

    print(machine())
    for name in SCRIPTS:
        path = HERE / name
        if path.exists():
            runpy.run_path(str(path), run_name="__bench__")["main"]()
