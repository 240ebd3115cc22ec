"""The therapist verbs: ``knowpain calibration ...`` and ``knowpain cases ...``.

Every test uses its own store under ``tmp_path`` and a controlled environment: no
configured passcode unless a test sets one, and no terminal to prompt on.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration.loader import DEFAULT_PATH, load_calibration
from calibration.schema import Calibration
from calibration.store import Store
from calibration.writer import to_toml
from model.cli import main
from model.cli.io import PASSCODE_ENV, atomic_write
from model.errors import OutputError
from model.learning.sampling import sample_cases, with_missing
from model.service.policy import self_contained
from model.service.settings import PASSCODE_ENV as ENV_VAR

SECRET = "s3cret-Passcode"
TRUTH_TRAINING_AGE = np.array([0.6, 0.3, 0.1])  # shipped default: [0.25, 0.40, 0.35]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(PASSCODE_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal: never prompt


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return load_calibration()


@pytest.fixture(scope="module")
def truth(shipped: Calibration) -> Calibration:
    """The shipped calibration with many more first-session lifters."""
    return shipped.with_table("training_age", TRUTH_TRAINING_AGE)


def cases_frame(cal: Calibration, n: int, seed: int = 0, *, latent_hidden: bool = True,
                adjudicated: bool = True) -> pd.DataFrame:
    """Sampled cases in CSV form: case ids, causes as ``cause:`` columns, some unknowns."""
    df = sample_cases(cal, n, seed=seed)
    if latent_hidden:
        df = with_missing(df.drop(columns=["technique_breakdown"]), {"onset": 0.2}, seed=seed)
    if adjudicated:
        df = df.rename(columns={c: f"cause:{c}" for c in cal.causes})
    else:
        df = df.drop(columns=cal.causes)
    df.insert(0, "case_id", [f"c{i}" for i in range(n)])  # identical rows are not duplicates
    return df


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def store_args(tmp_path: Path) -> list[str]:
    return ["--store", str(tmp_path / "store.sqlite")]


def unlock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Configure the passcode and return the options that give it."""
    monkeypatch.setenv(ENV_VAR, SECRET)
    file = tmp_path / "passcode.txt"
    file.write_text(SECRET + "\n", encoding="utf-8")
    return ["--passcode-file", str(file)]


def distance(cal: Calibration) -> float:
    return float(np.abs(cal.cpt("training_age") - TRUTH_TRAINING_AGE).sum())


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def test_fit_em_end_to_end_moves_parameters_toward_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shipped: Calibration,
    truth: Calibration,
) -> None:
    csv = write_csv(tmp_path / "cases.csv", cases_frame(truth, 300, seed=1))
    out = tmp_path / "refit.toml"
    assert main(["calibration", "fit", "--cases", str(csv), "--out", str(out),
                 "--folds", "3"]) == 0
    text = capsys.readouterr().out
    # convergence report
    assert "Method: EM" in text and "converged: yes" in text and "iterations:" in text
    assert "log-likelihood of the cases" in text
    # the parameters that moved most: training_age, towards the data
    moved = text.split("Parameters that moved most")[1].splitlines()[1]
    assert moved.strip().startswith("training_age first_sessions: 0.250 ->")
    # scenarios before -> after, behaviour checks by name, held-out metrics per cause
    assert "first_week_beginner" in text and "Back muscles met a new load" in text
    assert "PASS stabilizer_by_training_age" in text
    for needle in ("3-fold cross-validation", "log loss", "Brier skill", "calibration slope",
                   "calibration intercept", "wrong_prime_mover"):
        assert needle in text
    refit = load_calibration(out)
    assert distance(refit) < distance(shipped) / 2
    assert leftovers(tmp_path) == []


def test_fit_complete_cases_uses_dirichlet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shipped: Calibration,
    truth: Calibration,
) -> None:
    complete = cases_frame(truth, 200, seed=2, latent_hidden=False)
    csv = write_csv(tmp_path / "complete.csv", complete)
    out = tmp_path / "refit.toml"
    assert main(["calibration", "fit", "--cases", str(csv), "--out", str(out),
                 "--folds", "0"]) == 0
    text = capsys.readouterr().out
    assert "Method: Dirichlet" in text and "Held-out comparison: skipped (0 folds" in text
    assert distance(load_calibration(out)) < distance(shipped)


def test_fit_without_adjudicated_causes_skips_the_held_out_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], truth: Calibration,
) -> None:
    csv = write_csv(tmp_path / "cases.csv", cases_frame(truth, 60, adjudicated=False))
    out = tmp_path / "refit.toml"
    assert main(["calibration", "fit", "--cases", str(csv), "--out", str(out)]) == 0
    assert "no case has an adjudicated cause" in capsys.readouterr().out
    assert out.is_file()


def test_fit_broken_csv_exits_2_naming_row_and_column_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], truth: Calibration,
) -> None:
    df = cases_frame(truth, 20)
    df.loc[1, "training_age"] = "expert"  # spreadsheet row 3
    df.loc[4, "cause:other_cause"] = "maybe"  # spreadsheet row 6
    csv = write_csv(tmp_path / "bad.csv", df)
    out = tmp_path / "refit.toml"
    assert main(["calibration", "fit", "--cases", str(csv), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert 'row 3, column "training_age": unknown state "expert"' in err
    assert "allowed: first_sessions, novice, trained" in err
    assert 'row 6, column "cause:other_cause"' in err
    assert not out.exists() and leftovers(tmp_path) == []


def test_fit_refuses_to_overwrite_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], truth: Calibration,
) -> None:
    csv = write_csv(tmp_path / "cases.csv", cases_frame(truth, 40))
    out = tmp_path / "refit.toml"
    out.write_text("keep me", encoding="utf-8")
    args = ["calibration", "fit", "--cases", str(csv), "--out", str(out), "--folds", "0"]
    assert main(args) == 6  # ExitStatus.CANNOT_WRITE
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert out.read_text(encoding="utf-8") == "keep me"
    assert main([*args, "--force"]) == 0
    assert load_calibration(out).nodes["training_age"].cpt == "table"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--folds", "1"], "folds 1"), (["--max-iter", "0"], "max_iter 0"),
     (["--base", "nope.toml"], "'nope.toml': no such file")],
)
def test_fit_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], truth: Calibration,
    extra: list[str], needle: str,
) -> None:
    csv = write_csv(tmp_path / "cases.csv", cases_frame(truth, 10))
    args = ["calibration", "fit", "--cases", str(csv), "--out", str(tmp_path / "o.toml")]
    assert main([*args, *extra]) == 2
    assert needle in capsys.readouterr().err


def test_atomic_write_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.toml"

    def crash(tmp: Path) -> None:
        tmp.write_text("half of it", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OutputError, match="disk full"):
        atomic_write(target, crash)
    assert not target.exists() and leftovers(tmp_path) == []
    atomic_write(target, "first")
    with pytest.raises(OutputError, match="already exists"):
        atomic_write(target, "second")
    assert target.read_text(encoding="utf-8") == "first"
    atomic_write(target, "second", force=True)
    assert target.read_text(encoding="utf-8") == "second"
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write(tmp_path / "no" / "such" / "x.toml", "x")
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# validate, diff, pool
# --------------------------------------------------------------------------------------------


def test_validate_is_the_top_level_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibration", "validate", str(DEFAULT_PATH)]) == 0
    assert "behaviour checks pass" in capsys.readouterr().out
    assert main(["calibration", "validate", "/nonexistent.toml"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_diff_of_two_files_lists_changed_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], truth: Calibration,
) -> None:
    changed = tmp_path / "changed.toml"
    changed.write_text(to_toml(truth), encoding="utf-8")
    assert main(["calibration", "diff", str(DEFAULT_PATH), str(changed)]) == 0
    out = capsys.readouterr().out
    assert "Parameters (3 differ)" in out
    assert "training_age first_sessions: 0.2500 -> 0.6000 (+0.3500)" in out
    assert "training_age trained: 0.3500 -> 0.1000 (-0.2500)" in out
    assert main(["calibration", "diff", str(DEFAULT_PATH), str(DEFAULT_PATH)]) == 0
    assert "No differences." in capsys.readouterr().out


def test_pool_is_confidence_weighted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shipped: Calibration,
    truth: Calibration,
) -> None:
    other = tmp_path / "dr_b.toml"
    other.write_text(to_toml(truth), encoding="utf-8")
    out = tmp_path / "pooled.toml"
    assert main(["calibration", "pool", str(DEFAULT_PATH), str(other), "--out", str(out),
                 "--weights", "1", "3"]) == 0
    assert "Wrote" in capsys.readouterr().out
    pooled = load_calibration(out)
    expected = (shipped.cpt("training_age") + 3 * TRUTH_TRAINING_AGE) / 4
    np.testing.assert_allclose(pooled.cpt("training_age"), expected)
    assert pooled.nodes["training_age"].confidence == 4 * shipped.nodes["training_age"].confidence
    assert main(["calibration", "pool", str(DEFAULT_PATH), "--out", str(tmp_path / "p.toml")]) \
        == 2
    assert "at least two" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the store and the passcode
# --------------------------------------------------------------------------------------------


def test_save_list_activate_rollback_round_trip_with_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration,
) -> None:
    store = store_args(tmp_path)
    code = unlock(monkeypatch, tmp_path)
    new = tmp_path / "new.toml"
    new.write_text(to_toml(truth), encoding="utf-8")

    assert main(["calibration", "list", *store]) == 0
    listing = capsys.readouterr().out
    assert "*    1       -  knowpain" in listing and "shipped default" in listing

    assert main(["calibration", "save", str(new), "--who", "Dr A", "--note",
                 "more beginners", *store, *code]) == 0
    captured = capsys.readouterr()
    assert "Saved" in captured.out and SECRET not in captured.out + captured.err
    assert main(["calibration", "list", *store]) == 0
    listing = capsys.readouterr().out
    assert "     2       1  Dr A" in listing and "more beginners" in listing
    assert "*    1" in listing  # saving does not activate

    assert main(["calibration", "activate", "v2", "--who", "Dr A", *store, *code]) == 0
    assert "now version 2 (was 1)" in capsys.readouterr().out
    assert main(["calibration", "list", *store]) == 0
    assert "*    2       1" in capsys.readouterr().out

    assert main(["calibration", "diff", "v1", "2", *store]) == 0
    assert "training_age first_sessions" in capsys.readouterr().out

    assert main(["calibration", "rollback", "--who", "Dr B", *store, *code]) == 0
    assert "now version 1 (was 2)" in capsys.readouterr().out
    assert main(["calibration", "rollback", "--who", "Dr B", *store, *code]) == 3  # REFUSED
    assert "no parent to roll back to" in capsys.readouterr().err

    with Store(tmp_path / "store.sqlite") as s:
        assert s.active_version().id == 1
        assert s.get_version(2).toml_text == self_contained(truth)
        audit = [(e.who, e.action) for e in s.audit_log()]
    assert audit == [("knowpain", "seed"), ("Dr A", "add_version"), ("Dr A", "activate"),
                     ("Dr B", "rollback")]


def test_save_activate_flag_and_version_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    assert main(["calibration", "save", str(DEFAULT_PATH), "--who", "Dr A", "--note", "copy",
                 "--activate", *store, *code]) == 0
    out = capsys.readouterr().out
    assert "Version 2 is now active" in out and "identical content to version(s) 1" in out
    assert main(["calibration", "activate", "latest", "--who", "Dr A", *store, *code]) == 2
    assert "not a version id; use a number such as 3 or v3" in capsys.readouterr().err
    assert main(["calibration", "activate", "v9", "--who", "Dr A", *store, *code]) == 2
    assert "no calibration version 9" in capsys.readouterr().err


STORE_WRITES = [
    ["calibration", "save", str(DEFAULT_PATH), "--who", "Dr A", "--note", "n"],
    ["calibration", "activate", "1"],
    ["calibration", "rollback"],
    ["cases", "import", "CSV", "--who", "Dr A"],
    ["cases", "delete", "1"],
]


@pytest.mark.parametrize("command", STORE_WRITES, ids=lambda c: " ".join(c[:2]))
def test_store_writes_are_locked_without_a_configured_passcode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration, command: list[str],
) -> None:
    csv = write_csv(tmp_path / "cases.csv", cases_frame(truth, 5))
    command = [str(csv) if a == "CSV" else a for a in command]
    monkeypatch.setenv(PASSCODE_ENV, SECRET)  # the user gives one, but none is configured
    assert main([*command, *store_args(tmp_path)]) == 4  # ExitStatus.ACCESS_DENIED
    err = capsys.readouterr().err
    assert "locked" in err and f"export {ENV_VAR}=" in err and SECRET not in err
    assert not (tmp_path / "store.sqlite").exists()  # refused before the store is opened


@pytest.mark.parametrize("how", ["file", "env"])
def test_wrong_passcode_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    monkeypatch.setenv(ENV_VAR, SECRET)
    given = "guess-" + SECRET
    extra: list[str] = []
    if how == "file":
        (tmp_path / "pc").write_text(given + "\n", encoding="utf-8")
        extra = ["--passcode-file", str(tmp_path / "pc")]
    else:
        monkeypatch.setenv(PASSCODE_ENV, given)
    assert main(["calibration", "activate", "1", *store_args(tmp_path), *extra]) == 4
    captured = capsys.readouterr()
    assert captured.err.strip() == "knowpain: error: wrong passcode"
    assert SECRET not in captured.out + captured.err
    with Store(tmp_path / "store.sqlite") as store:  # the wrong passcode is in the audit log
        assert store.list_versions() == []  # and nothing else was written
        entries = store.audit_log()
    assert [(e.who, e.action) for e in entries] == [("command line", "unlock_failed")]
    assert given not in repr(entries) and SECRET not in repr(entries)


def test_passcode_is_prompted_for_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV_VAR, SECRET)
    store = store_args(tmp_path)
    assert main(["calibration", "activate", "1", *store]) == 4
    err = capsys.readouterr().err
    assert "needs the therapist passcode" in err
    assert "--passcode-file FILE" in err and PASSCODE_ENV in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or SECRET)
    assert main(["calibration", "activate", "1", "--who", "Dr A", *store]) == 0
    assert prompts == ["Therapist passcode: "]
    capsys.readouterr()
    assert main(["calibration", "activate", "1", "--passcode-file", str(tmp_path / "x"),
                 *store]) == 2
    assert "--passcode-file" in (err := capsys.readouterr().err) and "no such file" in err


def test_save_refuses_a_file_failing_a_behaviour_check_or_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    shipped: Calibration,
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    shape = shipped.cpt("stabilizer_overload").shape
    flat = shipped.with_table("stabilizer_overload", np.broadcast_to([0.7, 0.3], shape))
    failing = tmp_path / "flat.toml"
    failing.write_text(to_toml(flat), encoding="utf-8")
    assert main(["calibration", "save", str(failing), "--who", "Dr A", "--note", "n",
                 *store, *code]) == 3  # ExitStatus.REFUSED
    err = capsys.readouterr().err
    assert "nothing was stored" in err
    # which check, which pair and by how much (flat table: the three values are equal)
    line = next(x for x in err.splitlines() if "stabilizer_by_training_age" in x)
    assert line.startswith("  - behaviour check fails: stabilizer_by_training_age: "
                           "P(stabilizer_overload=yes | training_age=")
    assert "= 30.0 % should be above P(stabilizer_overload=yes | training_age=" in line
    assert "short by 0.0 points" in line

    broken = tmp_path / "broken.toml"
    broken.write_text("[nodes.a]\nstates = ['x']\ncpt = 'table'\ntable = [1.0]\n")
    assert main(["calibration", "save", str(broken), "--who", "Dr A", "--note", "n",
                 *store, *code]) == 2
    assert "node 'a' field 'states'" in capsys.readouterr().err
    assert [v.id for v in Store(tmp_path / "store.sqlite").list_versions()] == [1]


def test_export_toml_and_bif_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration,
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    new = tmp_path / "new.toml"
    new.write_text(to_toml(truth), encoding="utf-8")
    assert main(["calibration", "save", str(new), "--who", "Dr A", "--note", "n",
                 *store, *code]) == 0

    active = tmp_path / "active.toml"
    assert main(["calibration", "export", "--format", "toml", "--out", str(active),
                 *store]) == 0
    assert active.read_text(encoding="utf-8") == self_contained(load_calibration())
    v2 = tmp_path / "v2.toml"
    assert main(["calibration", "export", "--format", "toml", "--version", "v2", "--out",
                 str(v2), *store]) == 0
    assert v2.read_text(encoding="utf-8") == self_contained(truth)

    bif = tmp_path / "net.bif"
    assert main(["calibration", "export", "--format", "bif", "--version", "2", "--out",
                 str(bif), *store]) == 0
    text = bif.read_text(encoding="utf-8")
    assert "variable training_age" in text and "0.6" in text
    capsys.readouterr()
    assert main(["calibration", "export", "--format", "bif", "--out", str(bif), *store]) == 6
    assert "already exists" in capsys.readouterr().err
    assert bif.read_text(encoding="utf-8") == text
    assert main(["calibration", "export", "--format", "bif", "--out", str(bif), "--force",
                 *store]) == 0
    assert bif.read_text(encoding="utf-8") != text
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


def test_cases_import_export_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration,
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    csv = write_csv(tmp_path / "cases.csv", cases_frame(truth, 25, seed=4))
    assert main(["cases", "import", str(csv), "--who", "Dr A", *store, *code]) == 0
    assert "Imported 25 case(s)" in capsys.readouterr().out
    assert main(["cases", "list", *store]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("25 case(s)") and "Dr A" in listing

    exported = tmp_path / "export.csv"
    assert main(["cases", "export", "--out", str(exported), *store]) == 0
    other = ["--store", str(tmp_path / "other.sqlite")]
    assert main(["cases", "import", str(exported), "--who", "Dr B", *other, *code]) == 0
    with Store(tmp_path / "store.sqlite") as a, Store(tmp_path / "other.sqlite") as b:
        first, second = a.list_cases(), b.list_cases()
        assert [(c.evidence, c.adjudicated, c.outcome, c.therapist) for c in first] == [
            (c.evidence, c.adjudicated, c.outcome, c.therapist) for c in second]
        assert {c.therapist for c in second} == {"Dr A"}  # kept from the therapist column
        assert [e.action for e in a.audit_log()] == ["seed", "add_cases"]

    assert main(["cases", "delete", "2", "--who", "Dr A", *store, *code]) == 0
    assert main(["cases", "delete", "2", "--who", "Dr A", *store, *code]) == 2
    assert "no case 2" in capsys.readouterr().err
    assert main(["cases", "delete", "3", *store, *code]) == 2
    assert "say who is acting" in capsys.readouterr().err
    with Store(tmp_path / "store.sqlite") as a:
        assert len(a.list_cases()) == 24


def test_cases_import_is_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration,
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    df = cases_frame(truth, 30)
    df.loc[28, "onset"] = "later"
    csv = write_csv(tmp_path / "bad.csv", df)
    assert main(["cases", "import", str(csv), "--who", "Dr A", *store, *code]) == 2
    err = capsys.readouterr().err
    assert 'row 30, column "onset": unknown state "later"' in err and "nothing was imported" in err
    with Store(tmp_path / "store.sqlite") as s:
        assert s.list_cases() == []


def test_cases_import_twice_and_skip_broken_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration,
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    df = cases_frame(truth, 30).drop(columns=["case_id"])
    df = pd.concat([df, df.iloc[:5]], ignore_index=True)  # identical rows: 35 cases
    csv = write_csv(tmp_path / "week.csv", df)
    assert main(["cases", "import", str(csv), "--who", "Dr A", *store, *code]) == 0
    assert "Imported 35 case(s) from week.csv (ids 1..35) as import 1." in \
        capsys.readouterr().out
    assert main(["cases", "import", str(csv), "--who", "Dr A", *store, *code]) == 0
    out = capsys.readouterr().out
    assert "week.csv was imported before: import 1 (week.csv, " in out and "not doubled" in out
    broken = df.copy()
    broken.loc[3, "onset"] = "later"
    bad = write_csv(tmp_path / "bad.csv", broken)
    assert main(["cases", "import", str(bad), "--who", "Dr A", *store, *code]) == 2
    err = capsys.readouterr().err
    assert 'row 5, column "onset": unknown state "later"' in err
    assert "34 row(s) are valid: to import them and skip the broken ones, use --skip-broken" \
        in err
    assert main(["cases", "import", str(bad), "--skip-broken", "--who", "Dr A", *store,
                 *code]) == 0
    out = capsys.readouterr().out
    assert "Imported 34 case(s)" in out and "1 broken row(s) skipped as asked: rows 5." in out
    assert main(["cases", "list", "--limit", "2", "--offset", "10", *store]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("69 case(s) in ") and "Cases 11-12 (oldest first):" in listing
    assert "... 57 more: use --offset 12" in listing
    assert "import 2 (bad.csv, " in listing and "1 broken skipped" in listing


def test_fit_defaults_to_every_stored_case_and_the_expert_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    truth: Calibration,
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    out = tmp_path / "r.toml"
    assert main(["calibration", "fit", "--out", str(out), *store]) == 2
    assert "no cases in" in capsys.readouterr().err and not out.exists()
    csv = write_csv(tmp_path / "c.csv", cases_frame(truth, 120, seed=6))
    assert main(["cases", "import", str(csv), "--who", "Dr A", *store, *code]) == 0
    capsys.readouterr()
    assert main(["calibration", "fit", "--save", "--activate", "--who", "Dr A", "--folds", "0",
                 *store, *code]) == 0
    text = capsys.readouterr().out
    assert "Base: the active version 1 (an expert calibration)." in text
    assert "Cases: all 120 stored case(s) in " in text
    assert "Saved the refit as version 2 (a refit of version 1) and made it active." in text
    # the refit is active: the next fit still starts from version 1
    assert main(["calibration", "fit", "--out", str(out), "--folds", "0", *store]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Base: version 1, the expert calibration that the active version 2 "
                           "was refitted from")
    refit = load_calibration(out)
    assert refit.nodes["stabilizer_overload"].cpt == "noisy_or"
    assert refit.nodes["training_age"].column_confidence[""] == 15 + 120
    # a file's cases instead of the store's, said as such; a refit file as base is flagged
    assert main(["calibration", "fit", "--cases", str(csv), "--base", str(out), "--out",
                 str(tmp_path / "r2.toml"), "--folds", "0", *store]) == 0
    text = capsys.readouterr().out
    assert "is itself a refit (it carries per-column confidences)" in text
    assert f"Cases: 120 case(s) from {csv}." in text


# --------------------------------------------------------------------------------------------
# the real command
# --------------------------------------------------------------------------------------------


def test_python_m_model_cli_maps_errors_to_their_statuses(tmp_path: Path) -> None:
    """The real process: a refusal is its status and a message, never a traceback."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, PASSCODE_ENV)}
    env["KNOWPAIN_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "model.cli", "calibration", "activate", "1"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 4, proc.stderr
    assert "locked" in proc.stderr and "Traceback" not in proc.stderr
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "model.cli", "calibration", "list", "--store", str(junk)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 5 and "is not a knowpain store" in proc.stderr
    assert junk.read_text(encoding="utf-8") == "not a database"


def test_building_the_parser_stays_light() -> None:
    """The parser is built for every call, `diagnose` included: no pandas, no pgmpy."""
    code = (
        "import sys; from model.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('pandas', 'pgmpy', 'model.learning.refit') if m in sys.modules]; "
        "assert not heavy, heavy; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_activating_the_active_version_changes_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    store, code = store_args(tmp_path), unlock(monkeypatch, tmp_path)
    assert main(["calibration", "activate", "v1", "--who", "Dr A", *store, *code]) == 0
    assert "already the active calibration; nothing changed" in capsys.readouterr().out
    with Store(tmp_path / "store.sqlite") as s:
        assert [e.action for e in s.audit_log()] == ["seed"]


def test_fit_activate_needs_save_and_export_names_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    store = store_args(tmp_path)
    out = tmp_path / "r.toml"
    assert main(["calibration", "fit", "--out", str(out), "--activate", *store]) == 2
    assert "use it with --save" in capsys.readouterr().err and not out.exists()
    assert main(["calibration", "export", "--format", "toml", "--out", str(out), *store]) == 0
    assert capsys.readouterr().out.strip() == f"Wrote {out} (version 1, the active one)."


@pytest.mark.parametrize("argv", [
    ["cases", "list", "--offset", "99999999999999999999"],
    ["cases", "list", "--limit", "-3"],
    ["cases", "delete", "99999999999999999999", "--who", "A"],
    ["calibration", "fit", "--folds", "1" * 5000, "--out", "x.toml"],
    ["calibration", "fit", "--seed", "many", "--out", "x.toml"],
])
def test_whole_number_options_refuse_what_they_cannot_hold(argv, tmp_path, monkeypatch,
                                                             capsys) -> None:
    """Every number option is a whole number from 0 to MAX_WHOLE: anything else is bad
    input (status 2) named with the option, never an OverflowError traceback."""
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "expected a whole number" in err and "Traceback" not in err
    assert "1" * 100 not in err  # a 5,000-digit argument is not echoed back whole


def test_fit_from_an_unreadable_file_says_nothing_was_refitted(tmp_path, monkeypatch,
                                                                capsys) -> None:
    monkeypatch.setenv("KNOWPAIN_HOME", str(tmp_path))
    assert main(["calibration", "fit", "--cases", str(tmp_path / "missing.csv"),
                 "--out", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert "nothing was refitted" in err and "imported" not in err
    assert "missing.csv" in err and not (tmp_path / "x.toml").exists()
