"""Issue 13: the engine on every bnlearn network shipped with pgmpy, side by side with
pyAgrum's LazyPropagation (and pgmpy's VariableElimination where it finishes quickly),
plus the batch figures on the design's network.

Per network: a fifth of the nodes observed (one forward sample of the network, so the
evidence is possible), every posterior marginal asked. ``ours`` is the public API
(``Network.marginals(evidence)``) with the evidence pattern's program cached, as in repeated
use; ``first`` is the first query of that pattern (it triangulates the reduced graph and
plans contractions). pyAgrum's loop sets the evidence and reads every posterior, as ours
does. Times are medians of repeated runs in this one process; ratios are pyAgrum / ours.
``diff`` is the largest absolute difference over all marginals against pyAgrum.

Run: ``.venv/bin/python benchmarks/bench_networks.py [--quick] [NAME ...]``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's engine, not whichever one is installed
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "inference"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pyagrum as gum  # noqa: E402
from common import fmt_time, machine, median_time  # noqa: E402
from networks import bnlearn_networks, sample_evidence  # noqa: E402
from peers import to_pyagrum  # noqa: E402

from model.inference import CompiledNetwork, Network  # noqa: E402

PGMPY_MAX_NODES = 27  # pgmpy VE, one query per node, is seconds to minutes beyond this
TOL = 1e-9
BATCH_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
import model
rows = int(sys.argv[1])
m = model.load_model()
rng = np.random.default_rng(0)
cols = {}
for c in m.observable:  # object columns of state strings, a third of them blank
    pool = np.array([*m.variables[c], "", ""], dtype=object)
    cols[c] = pool[rng.integers(len(pool), size=rows)]
frame = pd.DataFrame(cols)
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
before = rss("VmRSS:")
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak to now
except OSError:
    pass
c = time.process_time(); t = time.perf_counter(); out = m.posterior_batch(frame)
first, first_cpu = time.perf_counter() - t, time.process_time() - c
peak = rss("VmHWM:")
t = time.perf_counter(); m.posterior_batch(frame); second = time.perf_counter() - t
print(json.dumps({"rows": rows, "first": first, "first_cpu": first_cpu, "second": second,
                  "peak_mb": peak, "before_mb": before, "shape": list(out.shape)}))
"""


def pyagrum_runner(bn: gum.BayesNet, hard: dict[str, str], names: list[str]):
    ie = gum.LazyPropagation(bn)

    def run() -> dict[str, np.ndarray]:
        ie.eraseAllEvidence()
        ie.setEvidence(hard)
        ie.makeInference()
        return {n: ie.posterior(n).toarray() for n in names}

    return run


def pgmpy_runner(net: Network, hard: dict[str, str]):
    warnings.simplefilter("ignore", FutureWarning)
    from pgmpy.inference import VariableElimination

    from model.inference.pgmpy_adapter import build_network

    ve = VariableElimination(build_network(net.variables, net.parents, net.cpts))
    free = [n for n in net.variables if n not in hard]

    def run():
        return {n: ve.query([n], evidence=hard, joint=False, show_progress=False) for n in free}

    return run


def repeats(seconds_each: float, budget: float = 1.5, lo: int = 3, hi: int = 60) -> int:
    return int(min(hi, max(lo, budget / max(seconds_each, 1e-6))))


def network_row(name: str, path: Path, with_pgmpy: bool) -> dict:
    t = time.perf_counter()
    net = Network.from_file(path)
    read = time.perf_counter() - t
    compile_s = median_time(
        lambda: CompiledNetwork(net.variables, net.parents, net.cpts), 3 if read < 1 else 1, 0
    )
    rng = np.random.default_rng(sum(map(ord, name)))
    hard = sample_evidence(rng, net.variables, net.parents, net.cpts, share=0.2)
    t = time.perf_counter()
    ours = net.marginal_arrays(hard)
    first = time.perf_counter() - t
    names = list(net.variables)
    bn = to_pyagrum(net.variables, net.parents, net.cpts)
    run_pa = pyagrum_runner(bn, hard, names)
    t = time.perf_counter()
    theirs = run_pa()
    pa_once = time.perf_counter() - t
    diff = max(float(np.abs(ours[n] - theirs[n]).max()) for n in names)
    t_ours = median_time(lambda: net.marginals(hard), repeats(first), 1)
    t_pa = median_time(run_pa, repeats(pa_once), 1 if pa_once < 1 else 0)
    t_pg = None
    if with_pgmpy and len(names) <= PGMPY_MAX_NODES:
        run_pg = pgmpy_runner(net, hard)
        t_pg = median_time(run_pg, 3, 0)
    return {
        "name": name,
        "nodes": len(names),
        "clique": net.engine.largest_clique_states(list(hard)),
        "clique0": net.engine.largest_clique_states(),
        "read": read,
        "compile": compile_s,
        "first": first,
        "ours": t_ours,
        "pyagrum": t_pa,
        "pgmpy": t_pg,
        "diff": diff,
    }


def print_networks(rows: list[dict]) -> None:
    print("\n## bnlearn networks (issue 13): all marginals, a fifth of the nodes observed\n")
    head = ("network", "nodes", "largest clique (states, with evidence / none)", "read",
            "compile", "first query", "ours", "pyAgrum", "pgmpy VE", "ratio", "max diff")
    table = []
    for r in rows:
        table.append((
            r["name"], str(r["nodes"]), f"{r['clique']:,} / {r['clique0']:,}",
            fmt_time(r["read"]), fmt_time(r["compile"]), fmt_time(r["first"]),
            fmt_time(r["ours"]), fmt_time(r["pyagrum"]),
            fmt_time(r["pgmpy"]) if r["pgmpy"] else "—",
            f"{r['pyagrum'] / r['ours']:.1f}×", f"{r['diff']:.1e}",
        ))
    widths = [max(len(x[i]) for x in [head, *table]) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for x in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) + " |")
    ratios = [r["pyagrum"] / r["ours"] for r in rows]
    worst = min(rows, key=lambda r: r["pyagrum"] / r["ours"])
    print(
        f"\nratio vs pyAgrum: median {np.median(ratios):.1f}× (goal ≥ 5×), lowest "
        f"{min(ratios):.1f}× on {worst['name']} (goal ≥ 1.5× on every one); max diff "
        f"{max(r['diff'] for r in rows):.1e} (goal ≤ {TOL:.0e})"
    )
    small = [r for r in rows if r["nodes"] <= 250]
    big = [r for r in rows if r["nodes"] > 250]
    print(
        f"compile: ≤250 nodes max {fmt_time(max(r['compile'] for r in small))} (goal ≤ 0.2 s)"
        + (f"; >250 nodes max {fmt_time(max(r['compile'] for r in big))} (goal ≤ 1 s)"
           if big else "")
    )


def batch_rows(sizes: list[int], runs: int = 3) -> None:
    import json

    print("\n## Batches on the design's network (posterior_batch; first call in a fresh "
          f"process, median of {runs} processes)\n")
    print("| rows | first call (wall) | first call (CPU) | rows/s | second call | peak resident "
          "| before the call | goal |")
    print("|---|---|---|---|---|---|---|---|")
    goals = {100_000: "≤ 0.3 s", 1_000_000: "≤ 3 s, peak < 1 GB"}
    for rows in sizes:
        results = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", BATCH_SCRIPT, str(rows)], capture_output=True,
                text=True, check=True, cwd=ROOT,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))

        def med(key: str, rs: list[dict] = results) -> float:
            return float(np.median([r[key] for r in rs]))

        print(f"| {rows:,} | {fmt_time(med('first'))} | {fmt_time(med('first_cpu'))} | "
              f"{rows / med('first'):,.0f} | {fmt_time(med('second'))} | "
              f"{max(r['peak_mb'] for r in results):,.0f} MB | {med('before_mb'):,.0f} MB | "
              f"{goals.get(rows, '')} |")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    chosen = [a for a in argv if not a.startswith("--")]
    nets = bnlearn_networks()
    names = chosen or (
        ["asia", "child", "insurance", "water", "alarm", "hailfinder"] if quick else list(nets)
    )
    rows = []
    for name in names:
        r = network_row(name, nets[name], with_pgmpy=True)
        rows.append(r)
        print(f"  {name}: ours {fmt_time(r['ours'])}, pyAgrum {fmt_time(r['pyagrum'])}",
              file=sys.stderr, flush=True)
    print_networks(rows)
    if not chosen:
        batch_rows([100_000] if quick else [100_000, 1_000_000])


if __name__ == "__main__":
    print(machine())
    main()
