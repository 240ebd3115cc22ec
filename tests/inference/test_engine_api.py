"""The public any-network API: reading files, evidence forms, MPE, batches, Dask."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from networks import bnlearn_networks, likelihood_vectors, sample_evidence

from model.inference import ImpossibleEvidenceError, Network, NetworkEvidenceError, load_network
from model.inference.formats import NetworkFormatError, read_bif, read_xmlbif

TOL = 1e-9


@pytest.fixture(scope="module")
def alarm() -> Network:
    return load_network(bnlearn_networks()["alarm"])


def test_bif_reader_equals_pgmpy_reader(tmp_path):
    from model.inference.pgmpy_adapter import read_network

    for name in ("asia", "child"):  # child: a state name pyAgrum cannot read
        path = tmp_path / f"{name}.bif"
        path.write_bytes(gzip.decompress(bnlearn_networks()[name].read_bytes()))
        ours, theirs = read_bif(path), read_network(path)
        assert ours[0] == theirs[0] and ours[1] == theirs[1]
        for n in ours[0]:
            np.testing.assert_allclose(ours[2][n], theirs[2][n], atol=0, rtol=0, err_msg=n)


def test_xmlbif_round_trip_through_pgmpys_writer(tmp_path, alarm):
    from model.inference.pgmpy_adapter import build_network, export_network

    path = tmp_path / "alarm.xml"
    export_network(build_network(alarm.variables, alarm.parents, alarm.cpts), "xmlbif", path)
    variables, parents, cpts = read_xmlbif(path)
    assert variables == alarm.variables
    for n in variables:
        order = [parents[n].index(p) for p in alarm.parents[n]] + [len(parents[n])]
        np.testing.assert_allclose(np.transpose(cpts[n], order), alarm.cpts[n], atol=1e-12)
    again = load_network(path)
    ev = {"HR": "HIGH"}
    for n, m in again.marginals(ev).items():
        assert m == pytest.approx(alarm.marginals(ev)[n], abs=TOL)


def test_malformed_files_are_named(tmp_path):
    bad = tmp_path / "bad.bif"
    bad.write_text("variable a { type discrete [ 2 ] { x, y }; }\n"
                   "probability ( a ) { table 0.5; }\n")
    with pytest.raises(NetworkFormatError, match="table has 1 numbers, needs 2"):
        read_bif(bad)
    bad.write_text("nothing here")
    with pytest.raises(NetworkFormatError, match="no discrete variables"):
        read_bif(bad)


def test_unreadable_and_oversized_files_are_refused_naming_the_file(tmp_path, monkeypatch):
    from model.inference import formats

    with pytest.raises(NetworkFormatError, match=r"cannot read the network file .*missing.bif"):
        load_network(tmp_path / "missing.bif")
    with pytest.raises(NetworkFormatError, match="cannot read the network file"):
        load_network(tmp_path)
    (tmp_path / "broken.bif.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(NetworkFormatError, match=r"broken\.bif\.gz"):
        load_network(tmp_path / "broken.bif.gz")
    monkeypatch.setattr(formats, "MAX_NETWORK_BYTES", 1 << 20)
    # a gzip bomb and an endless device stop at the limit instead of filling memory
    (tmp_path / "bomb.bif.gz").write_bytes(gzip.compress(b" " * (8 << 20)))
    for path in (tmp_path / "bomb.bif.gz", "/dev/zero"):
        with pytest.raises(NetworkFormatError, match="larger than the limit of 1,048,576 bytes"):
            load_network(path)


def test_evidence_forms_agree(alarm):
    by_name = alarm.marginals({"HR": "HIGH", "CO": {"LOW": 0.2, "NORMAL": 1.0}})
    by_index = alarm.marginals({"HR": 2, "CO": [0.2, 1.0, 0.0]})
    for n in alarm.variables:
        assert by_name[n] == pytest.approx(by_index[n], abs=1e-12)
    assert alarm.marginals({"HR": "HIGH"})["HR"] == {"LOW": 0.0, "NORMAL": 0.0, "HIGH": 1.0}


def test_bad_evidence_names_the_problem(alarm):
    with pytest.raises(NetworkEvidenceError, match="unknown node 'nope'"):
        alarm.marginals({"nope": "x"})
    with pytest.raises(NetworkEvidenceError, match=r"unknown state .HUGE.*LOW, NORMAL, HIGH"):
        alarm.marginals({"HR": "HUGE"})
    with pytest.raises(NetworkEvidenceError, match="not all zero"):
        alarm.marginals({"HR": [0, 0, 0]})


def test_unknown_values_are_not_observed_and_bad_ones_are_knowpain_errors(alarm):
    from model.errors import KnowpainError

    prior = alarm.marginals()
    for unknown in (None, "", float("nan"), pd.NA):
        assert alarm.marginals({"HR": unknown})["HR"] == pytest.approx(prior["HR"])
    with pytest.raises(NetworkEvidenceError, match=r"state name, a state index") as info:
        alarm.marginals({"HR": object()})
    assert isinstance(info.value, KnowpainError)
    # what a message quotes is cut short, and a long node list is counted, not pasted
    with pytest.raises(NetworkEvidenceError) as info:
        alarm.marginals({"x" * 100_000: "y"})
    text = str(info.value)
    assert len(text) < 1_000 and "100002 characters" in text


def test_a_long_list_of_allowed_names_is_counted_not_pasted():
    from model.errors import LIST_LIMIT, listing

    assert listing(["a", "b"]) == "a, b"
    many = listing(f"n{i}" for i in range(1_041))
    assert many.startswith("n0, n1,") and many.endswith(f"… and {1_041 - LIST_LIMIT:,} more")
    assert f"n{LIST_LIMIT - 1}," in many and f"n{LIST_LIMIT}," not in many


def test_impossible_evidence_raises(alarm):
    # a deterministic link in alarm: find one by search, then contradict it
    for n in alarm.variables:
        t = alarm.cpts[n]
        if not alarm.parents[n] or not (t == 0).any():
            continue
        at = np.argwhere(t == 0)[0]
        ev = {p: alarm.variables[p][i] for p, i in zip(alarm.parents[n], at[:-1], strict=True)}
        ev[n] = alarm.variables[n][at[-1]]
        with pytest.raises(ImpossibleEvidenceError):
            alarm.marginals(ev)
        assert alarm.probability_of_evidence(ev) == 0.0
        return
    pytest.fail("alarm has no zero entry")


def brute_force_joint(net: Network, lik):
    names = list(net.variables)
    best, best_p, total = None, -1.0, 0.0
    for states in itertools.product(*(range(len(net.variables[n])) for n in names)):
        a = dict(zip(names, states, strict=True))
        p = 1.0
        for n in names:
            p *= net.cpts[n][tuple(a[q] for q in net.parents[n])][a[n]]
            if n in lik:
                p *= lik[n][a[n]]
        total += p
        if p > best_p:
            best, best_p = a, p
    return best, best_p / total


def test_mpe_by_max_product_equals_enumeration():
    net = load_network(bnlearn_networks()["asia"])
    rng = np.random.default_rng(5)
    for _ in range(6):
        hard = sample_evidence(rng, net.variables, net.parents, net.cpts, share=0.3)
        lik = likelihood_vectors(net.variables, hard)
        states, p = net.mpe(hard)
        best, best_p = brute_force_joint(net, lik)
        assert states == {n: net.variables[n][i] for n, i in best.items()}
        assert p == pytest.approx(best_p, abs=TOL)


def test_mpe_over_a_subset_sums_out_the_rest():
    net = load_network(bnlearn_networks()["asia"])
    ev = {"xray": "yes", "dysp": "yes"}
    nodes = ["tub", "lung", "bronc"]
    states, p = net.mpe(ev, nodes)
    post = {}
    for combo in itertools.product(*(net.variables[n] for n in nodes)):
        fixed = dict(zip(nodes, combo, strict=True))
        post[combo] = net.probability_of_evidence({**ev, **fixed})
    best = max(post, key=post.get)
    assert tuple(states[n] for n in nodes) == best
    assert p == pytest.approx(post[best] / net.probability_of_evidence(ev), abs=TOL)


def test_posterior_batch_equals_single_queries_and_deduplicates(alarm):
    rng = np.random.default_rng(3)
    rows = [sample_evidence(rng, alarm.variables, alarm.parents, alarm.cpts) for _ in range(6)]
    cols = sorted({n for r in rows for n in r})
    df = pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows] * 50)  # 300 rows
    out = alarm.posterior_batch(df)
    assert out.shape == (300, sum(len(s) for s in alarm.variables.values()))
    for i, r in enumerate(rows):
        single = alarm.marginals(r)
        for n, post in single.items():
            for s, p in post.items():
                assert out[f"{n}={s}"].iloc[i] == pytest.approx(p, abs=TOL)
                assert out[f"{n}={s}"].iloc[i + 6 * 7] == pytest.approx(p, abs=TOL)
    with pytest.raises(NetworkEvidenceError, match=r"row 2, column 'HR'.*valid states"):
        alarm.posterior_batch(pd.DataFrame({"HR": ["LOW", None, "HUGE"]}))


def test_from_pgmpy_equals_file(alarm):
    from model.inference.pgmpy_adapter import build_network

    again = Network.from_pgmpy(build_network(alarm.variables, alarm.parents, alarm.cpts))
    ev = {"HR": "HIGH", "CO": "LOW"}
    for n, m in again.marginals(ev).items():
        assert m == pytest.approx(alarm.marginals(ev)[n], abs=TOL)


def test_reading_and_querying_never_import_pgmpy():
    path = bnlearn_networks()["asia"]
    code = (
        "import sys; from model.inference import load_network; "
        f"load_network({str(path)!r}).marginals({{'xray': 'yes'}}); "
        "assert 'pgmpy' not in sys.modules, 'pgmpy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_partitions_equal_pandas(alarm):
    dd = pytest.importorskip("dask.dataframe")
    import dask

    from model.inference.dask import posterior_batch

    rng = np.random.default_rng(9)
    rows = [sample_evidence(rng, alarm.variables, alarm.parents, alarm.cpts) for _ in range(40)]
    cols = sorted({n for r in rows for n in r})
    df = pd.DataFrame([{c: r.get(c, np.nan) for c in cols} for r in rows])
    lazy = posterior_batch(dd.from_pandas(df, npartitions=4), alarm)
    with dask.config.set(scheduler="threads"):
        got = lazy.compute()
    pd.testing.assert_frame_equal(got, alarm.posterior_batch(df), atol=1e-12, rtol=0)
