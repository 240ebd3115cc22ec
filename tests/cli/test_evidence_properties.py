"""Property: any command-line evidence gives a diagnosis or a KnowpainError (exit status 2) —
never a traceback — within a time and memory bound, and a message never repeats a long
argument whole (hypothesis)."""

from __future__ import annotations

import pytest
from bounds import UNTRUSTED, result_or_refusal, untrusted
from hypothesis import given
from hypothesis import strategies as st

import model
from model.cli import main
from model.cli.lifter import parse_assignments
from model.errors import KnowpainError, UsageError
from model.results import Diagnosis

M = model.load_model()
NODES = list(M.variables)
STATES = sorted({s for states in M.variables.values() for s in states})
FLAGS = [f.id for f in M.calibration.red_flags]

parts = st.one_of(st.sampled_from(NODES + STATES), st.text(max_size=20))
items = st.one_of(
    st.tuples(parts, st.sampled_from(["=", "", "==", " = "]), parts).map("".join),
    st.text(max_size=30),
)
arguments = st.lists(items, max_size=8)


@UNTRUSTED
@given(arguments, st.lists(st.sampled_from([*FLAGS, "bogus"]), max_size=3))
def test_any_evidence_arguments(args, flags):
    def run():
        evidence = parse_assignments(args)
        return M.diagnose(evidence, dict.fromkeys(flags, True))

    outcome = result_or_refusal(run, seconds=2.0)
    assert isinstance(outcome, (Diagnosis, KnowpainError))
    if isinstance(outcome, KnowpainError):
        assert len(str(outcome)) < 2_000


@UNTRUSTED
@given(st.sampled_from(NODES), st.sampled_from(STATES), st.sampled_from(STATES))
def test_a_node_given_twice_is_refused(node, first, second):
    with pytest.raises(UsageError, match="given twice"):
        parse_assignments([f"{node}={first}", f"{node} = {second}"])


@untrusted(25)
@given(arguments)
def test_the_whole_command_exits_0_or_2(args):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = result_or_refusal(lambda: main(["diagnose", "--", *args]), seconds=5.0)
    assert status in (0, 2), (status, err.getvalue())
    assert "Traceback" not in err.getvalue()
    assert len(err.getvalue()) < 2_000


@pytest.mark.parametrize("arg", ["x" * 100_000 + "=yes", "max_attempt=" + "y" * 100_000,
                                 "=" * 100_000, "max_attempt=yes"])
def test_a_huge_argument_is_never_echoed_whole(arg, capsys):
    status = main(["diagnose", "max_attempt=no", arg] if arg == "max_attempt=yes"
                  else ["diagnose", arg])
    err = capsys.readouterr().err
    assert status == 2 and len(err) < 2_000
