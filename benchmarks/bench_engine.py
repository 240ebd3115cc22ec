"""Inference speed, side by side with pgmpy and pyAgrum, as ratios from one run.

Rows (issue 3): all marginals for one evidence set on the default and on a 40-node random
network; diagnose() with every analysis, compiled vs the pgmpy backend; 100 000 evidence rows
through posterior_batch; the ``knowpain diagnose`` process and ``import model`` with
``load_model()`` (``import model`` alone loads nothing until a name is used).
Each figure is the median of repeated runs; exactness against both peers is checked in the
same run and printed.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's engine, not whichever one is installed
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pyagrum as gum  # noqa: E402
from common import Table, machine, median_time  # noqa: E402
from peers import random_network, to_pyagrum  # noqa: E402

import model  # noqa: E402
from model.inference.backends import CompiledBackend  # noqa: E402

warnings.simplefilter("ignore", FutureWarning)
from pgmpy.inference import VariableElimination  # noqa: E402

from model.inference.pgmpy_adapter import build_network  # noqa: E402


def all_marginals_row(table: Table, label: str, variables, parents, cpts, hard) -> None:
    ours = CompiledBackend(variables, parents, cpts)
    lik = {n: (np.array(variables[n]) == s).astype(float) for n, s in hard.items()}
    net = build_network(variables, parents, cpts)
    ve = VariableElimination(net)
    free = [n for n in variables if n not in hard]
    bn = to_pyagrum(variables, parents, cpts)
    ie = gum.LazyPropagation(bn)

    def run_pgmpy():
        return {n: ve.query([n], evidence=hard, joint=False, show_progress=False)[n] for n in free}

    def run_pyagrum():
        ie.eraseAllEvidence()
        ie.setEvidence(hard)
        ie.makeInference()
        return {n: ie.posterior(n).toarray() for n in variables}

    res = ours.query(lik).marginals
    pg, pa = run_pgmpy(), run_pyagrum()
    err_pg = max(
        abs(res[n][0][variables[n].index(s)] - pg[n].values[pg[n].state_names[n].index(s)])
        for n in free
        for s in variables[n]
    )
    err_pa = max(float(np.abs(res[n][0] - pa[n]).max()) for n in variables)
    t_ours = median_time(lambda: ours.query(lik), 300, 20)
    t_pg = median_time(run_pgmpy, 15, 2)
    t_pa = median_time(run_pyagrum, 300, 20)
    note = f"max abs diff: pgmpy {err_pg:.1e}, pyAgrum {err_pa:.1e}"
    table.add(f"all marginals, {label}", t_ours, "pgmpy VE", t_pg, "≥ 20×", 20, note)
    table.add(f"all marginals, {label}", t_ours, "pyAgrum Lazy", t_pa, "≥ 5×", 5, note)


def main() -> None:
    table = Table("Inference (issue 3)")
    m = model.load_model()
    ev = {"training_age": "novice", "bracing_loss": "often", "low_back_soreness": "mild"}
    all_marginals_row(table, "default network", m.variables, m.parents, m.cpts, ev)

    rng = np.random.default_rng(40)
    variables, parents, cpts = random_network(rng, 40, 40)
    names = list(variables)
    hard = {n: variables[n][0] for n in rng.choice(names, size=4, replace=False)}
    all_marginals_row(table, "40-node random", variables, parents, cpts, hard)

    t_diag = median_time(lambda: m.diagnose(ev), 50, 3)
    mp = model.load_model(backend="pgmpy")
    t_diag_pg = median_time(lambda: mp.diagnose(ev), 3, 1)
    table.add("diagnose() with every analysis", t_diag, "pgmpy backend", t_diag_pg, "≥ 50×", 50)
    table.add("diagnose() median", t_diag, "", None, "≤ 20 ms", None, "", max_seconds=0.020)

    rows = 100_000
    frame = pd.DataFrame(
        {c: rng.choice([*m.variables[c], "", ""], size=rows) for c in m.observable}
    )
    t_batch = median_time(lambda: m.posterior_batch(frame), 3, 1)
    bn = to_pyagrum(m.variables, m.parents, m.cpts)
    ie = gum.LazyPropagation(bn)
    sample = frame.head(2000)

    def pyagrum_rows():
        for rec in sample.to_dict("records"):
            ie.eraseAllEvidence()
            ie.setEvidence({k: v for k, v in rec.items() if v})
            ie.makeInference()
            for n in m.variables:
                ie.posterior(n)

    t_pa_rows = median_time(pyagrum_rows, 1, 0) * rows / len(sample)
    table.add(f"posterior_batch, {rows:,} rows", t_batch, "pyAgrum row loop*", t_pa_rows,
              "≤ 0.3 s", None, "*extrapolated from 2 000 rows", max_seconds=0.3)

    def process(*args: str) -> float:
        return median_time(
            lambda: subprocess.run([sys.executable, *args], check=True, capture_output=True),
            5, 1,
        )

    t_cli = process("-m", "model.cli", "diagnose", "training_age=first_sessions",
                    "low_back_soreness=mild")
    t_import = process("-c", "import model; model.load_model()")
    t_pgmpy_import = process("-c", "import pgmpy.inference")
    table.add("knowpain diagnose (whole process)", t_cli, "import pgmpy alone", t_pgmpy_import,
              "≤ 0.6 s", None, "", max_seconds=0.6)
    table.add("import model; load_model() (whole process)", t_import, "import pgmpy alone",
              t_pgmpy_import, "", None, "")
    table.print()


if __name__ == "__main__":
    print(machine())
    main()
