"""Calibration files from other machines: every stated limit is checked before allocation and
gives a CalibrationError naming it; probabilities below the floor are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from bounds import bounded_block

import model
from calibration import limits
from calibration.loader import load_calibration, parse_calibration
from model.errors import CalibrationError

ROOT = Path(__file__).resolve().parents[2]


def root(name: str, dist: str = "[0.5, 0.5]", role: str = "context") -> str:
    return f'[nodes.{name}]\nstates = ["no", "yes"]\nrole = "{role}"\ncpt = "table"\n' \
           f"table = {dist}\n"


def parents_list(names: list[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def refused(text: str, needle: str) -> CalibrationError:
    with pytest.raises(CalibrationError) as info:
        parse_calibration(text)
    assert any(needle in p for p in info.value.problems), info.value.problems
    return info.value


@pytest.fixture
def bounded():
    """Fail the test if it took more than 2 s or allocated more than 64 MB (Python heap)."""
    with bounded_block(2.0, 64):
        yield


# ---- reading --------------------------------------------------------------------------------
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_dev_zero_is_refused_after_reading_at_most_the_limit(bounded):
    with pytest.raises(CalibrationError, match="larger than the limit"):
        load_calibration("/dev/zero")


def test_a_file_over_the_limit_is_refused(tmp_path: Path, bounded):
    big = tmp_path / "big.toml"
    with big.open("wb") as fh:
        fh.truncate(limits.MAX_CALIBRATION_BYTES + 1)  # sparse: no disk used
    with pytest.raises(CalibrationError, match=f"{limits.MAX_CALIBRATION_BYTES:,} bytes"):
        load_calibration(big)


def test_text_over_the_limit_is_refused(bounded):
    refused("#" * (limits.MAX_CALIBRATION_BYTES + 1), "larger than the limit")


def test_a_folder_and_bytes_that_are_not_utf8_are_refused(tmp_path: Path):
    with pytest.raises(CalibrationError, match="is a folder"):
        load_calibration(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[network]\nname = "\xff"\n')
    with pytest.raises(CalibrationError, match="not UTF-8"):
        load_calibration(bad)


@pytest.mark.parametrize("text", [
    "a = " + "[" * 5000 + "]" * 5000,
    "a = " + "{b = " * 3000 + "1" + "}" * 3000,
    "a = " + "[" * (limits.MAX_NESTING + 2) + "]" * (limits.MAX_NESTING + 2),
    ".".join(f"k{i}" for i in range(limits.MAX_NESTING + 2)) + " = 1",
])
def test_deep_nesting_is_refused(text, bounded):
    refused(text, "nested more than")


def test_control_characters_in_text_are_refused():
    text = root("a").replace('role = "context"',
                             'role = "context"\nlabel = "A\\u001b[2J\\u202eb"')
    error = refused(text, "control character")
    assert "nodes.a.label" in str(error)


# ---- structure ------------------------------------------------------------------------------
def test_too_many_nodes_is_refused(bounded):
    text = "".join(root(f"n{i}") for i in range(limits.MAX_NODES + 1))
    refused(text, f"the limit is {limits.MAX_NODES}")


def test_too_many_states_is_refused():
    states = ", ".join(f'"s{i}"' for i in range(limits.MAX_STATES + 1))
    refused(f'[nodes.a]\nstates = [{states}]\ncpt = "table"\ntable = [1.0]\n',
            f"the limit is {limits.MAX_STATES}")


@pytest.mark.parametrize("cpt", ["table", "noisy_or"])
def test_forty_parents_are_refused_at_once(cpt, bounded):
    names = [f"p{i}" for i in range(40)]
    text = "".join(root(n) for n in names)
    text += (f'[nodes.c]\nstates = ["no", "yes"]\nparents = {parents_list(names)}\n'
             f'cpt = "{cpt}"\nleak = 0.1\n[nodes.c.{cpt}]\n')
    text += "".join(f"{n} = {{ yes = 0.5 }}\n" for n in names) if cpt == "noisy_or" else \
        '"x" = [0.5, 0.5]\n'
    refused(text, f"40 parents; the limit is {limits.MAX_PARENTS}")


def test_columns_are_counted_before_any_is_enumerated(bounded):
    # 12 parents (the limit) with 3 states: 531,441 columns, over MAX_TABLE_COLUMNS
    names = [f"p{i}" for i in range(limits.MAX_PARENTS)]
    text = "".join(
        f'[nodes.{n}]\nstates = ["a", "b", "c"]\nrole = "context"\ncpt = "table"\n'
        "table = [0.2, 0.3, 0.5]\n" for n in names)
    text += (f'[nodes.c]\nstates = ["no", "yes"]\nrole = "symptom"\n'
             f'parents = {parents_list(names)}\ncpt = "table"\n[nodes.c.table]\n'
             '"a" = [0.5, 0.5]\n')
    refused(text, f"more than {limits.MAX_TABLE_COLUMNS:,} combinations")


def test_table_entries_are_counted(bounded):
    # 8 parents of 4 states: 65,536 columns (at the limit); 20 states: 1,310,720 numbers
    names = [f"p{i}" for i in range(limits.MAX_PARENTS)]
    text = "".join(
        f'[nodes.{n}]\nstates = ["a", "b", "c", "d"]\nrole = "context"\ncpt = "table"\n'
        "table = [0.25, 0.25, 0.25, 0.25]\n" for n in names[:8])
    states = ", ".join(f'"s{i}"' for i in range(20))
    text += (f'[nodes.c]\nstates = [{states}]\nrole = "symptom"\n'
             f'parents = {parents_list(names[:8])}\ncpt = "table"\n[nodes.c.table]\n'
             '"a" = [1.0]\n')
    refused(text, f"the limit is {limits.MAX_TABLE_ENTRIES:,}")


def test_too_many_causes_are_refused(bounded):
    text = "".join(root(f"n{i}", role="cause") for i in range(23))  # 8,388,608 joint states
    refused(text, f"the 23 causes (role cause) have more than {limits.MAX_CLIQUE_ENTRIES:,}")


def test_many_hidden_nodes_are_explained_by_max_product(bounded):
    # 40 yes/no latents: 2**40 joint states, far beyond scoring each; max-product instead
    text = "".join(root(f"n{i}", dist="[0.3, 0.7]", role="latent") for i in range(40))
    text += ('[nodes.s]\nstates = ["no", "yes"]\nrole = "symptom"\nparents = ["n0"]\n'
             'cpt = "table"\n[nodes.s.table]\n"no" = [0.2, 0.8]\n"yes" = [0.9, 0.1]\n')
    d = model.Model(parse_calibration(text)).diagnose({"s": "yes"})
    assert d.most_probable_explanation == {**{f"n{i}": "yes" for i in range(1, 40)},
                                           "n0": "no"}
    # P(s=yes | n0) is 0.8 for no, 0.1 for yes: n0=no wins (0.3 * 0.8 against 0.7 * 0.1)
    assert abs(d.mpe_probability - 0.24 / 0.31 * 0.7**39) < 1e-15


def test_hidden_nodes_at_the_limit_are_explained_exactly(bounded):
    # 16 binary latents: 65,536 joint states, each scored in one batched query
    text = "".join(root(f"n{i}", role="latent") for i in range(16))
    text += ('[nodes.s]\nstates = ["no", "yes"]\nrole = "symptom"\nparents = ["n0"]\n'
             'cpt = "table"\n[nodes.s.table]\n"no" = [0.9, 0.1]\n"yes" = [0.2, 0.8]\n')
    m = model.Model(parse_calibration(text))
    d = m.diagnose({"s": "yes"})
    assert d.most_probable_explanation["n0"] == "yes"
    assert len(d.most_probable_explanation) == 16


def test_a_network_too_connected_for_exact_inference_is_refused(bounded):
    # a 15 x 15 grid of binary nodes, each with its left and upper neighbour as parents:
    # two parents each, yet triangulation ties a whole diagonal (20+ nodes) together
    n = 15
    text = ""
    for i in range(n):
        for j in range(n):
            par = [f"g{i - 1}_{j}"] * (i > 0) + [f"g{i}_{j - 1}"] * (j > 0)
            if not par:
                text += root(f"g{i}_{j}")
                continue
            text += (f'[nodes.g{i}_{j}]\nstates = ["no", "yes"]\nrole = "context"\n'
                     f'parents = {parents_list(par)}\ncpt = "noisy_or"\nleak = 0.1\n'
                     f"[nodes.g{i}_{j}.noisy_or]\n" + "".join(f"{p} = {{ yes = 0.5 }}\n"
                                                             for p in par))
    refused(text, "exact inference would need a table")


# ---- numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e-320", "1e-13", "5e-300"])
def test_a_probability_below_the_floor_is_refused_naming_node_value_and_floor(value):
    text = root("a", f"[{value}, 1.0]")
    error = refused(text, "below the floor")
    message = str(error)
    assert "node 'a'" in message and f"{limits.PROBABILITY_FLOOR:g}" in message
    assert f"{float(value):g}" in message


def test_a_column_is_named_when_its_probability_is_below_the_floor():
    text = root("a") + ('[nodes.b]\nstates = ["no", "yes"]\nparents = ["a"]\ncpt = "table"\n'
                        '[nodes.b.table]\nno = [0.5, 0.5]\nyes = [1e-20, 1.0]\n')
    refused(text, "node 'b' field 'table' column 'yes': probability 1e-20 is below the floor")


def test_the_floor_itself_and_exact_zeros_are_accepted():
    cal = parse_calibration(root("a", f"[{limits.PROBABILITY_FLOOR!r}, 1.0]")
                            + root("b", "[0.0, 1.0]"))
    assert any("exact zero" in w for w in cal.warnings)


@pytest.mark.parametrize(("leak", "p"), [("1e-300", "0.5"), ("0.1", "0.9999999999999999"),
                                         ("0.0", "1e-15")])
def test_noisy_or_numbers_below_the_floor_are_refused(leak, p):
    text = root("a") + (f'[nodes.b]\nstates = ["no", "yes"]\nparents = ["a"]\n'
                        f'cpt = "noisy_or"\nleak = {leak}\n[nodes.b.noisy_or]\n'
                        f"a = {{ yes = {p} }}\n")
    refused(text, "below the floor")


# ---- companions -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../secret.toml", "/etc/passwd", "sub/x.toml", "x.txt"])
def test_companions_must_be_plain_file_names(name):
    text = f'[network]\ncompanions = ["{name}"]\n' + root("a")
    refused(text, "is not a plain file name")


def test_a_companion_over_the_limit_is_refused(tmp_path: Path, bounded):
    big = tmp_path / "big.toml"
    with big.open("wb") as fh:
        fh.truncate(limits.MAX_CALIBRATION_BYTES + 1)
    main = tmp_path / "main.toml"
    main.write_text('[network]\ncompanions = ["big.toml"]\n' + root("a"), encoding="utf-8")
    with pytest.raises(CalibrationError, match=r"companion big\.toml: companion file is larger"):
        load_calibration(main)


# ---- the documents quote the limits -----------------------------------------------------------
@pytest.mark.parametrize("document", ["SECURITY.md", "calibration/FORMAT.md"])
def test_documents_state_the_limits(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    for name in ("MAX_CALIBRATION_BYTES", "MAX_NESTING", "MAX_NODES", "MAX_STATES",
                 "MAX_PARENTS", "MAX_TABLE_COLUMNS", "MAX_TABLE_ENTRIES", "MAX_CLIQUE_ENTRIES",
                 "MAX_EXPLANATION_STATES", "PROBABILITY_FLOOR"):
        value = getattr(limits, name)
        shown = f"{value:g}" if isinstance(value, float) else f"{value:,}"
        assert shown in text, f"{document} does not state {name} = {shown}"
        assert name in text, f"{document} does not name {name}"
    if document == "SECURITY.md":
        for name in ("MAX_CASE_BYTES", "MAX_CASE_ROWS", "MAX_CASE_COLUMNS", "LINK_MAX_CHARS",
                     "LINK_MAX_VALUES", "SOFT_EVIDENCE_FLOOR", "MAX_NETWORK_BYTES",
                     "MAX_NETWORK_STATES", "MAX_NETWORK_TABLE_ENTRIES", "MAX_NETWORK_ENTRIES",
                     "MAX_NETWORK_CLIQUE_ENTRIES", "NETWORK_ROW_SUM_TOLERANCE"):
            value = getattr(limits, name)
            shown = f"{value:g}" if isinstance(value, float) else f"{value:,}"
            assert shown in text, f"{document} does not state {name} = {shown}"
            assert name in text, f"{document} does not name {name}"

