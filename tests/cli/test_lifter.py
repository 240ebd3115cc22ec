"""The knowpain command: text and JSON output, and exit status 2 on bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import model
from calibration.loader import DEFAULT_PATH
from model.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "model.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_text_output_shows_causes_with_words_and_disclaimer(capsys):
    assert main(["diagnose", "training_age=first_sessions", "low_back_soreness=mild",
                 "--no-warning-signs"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Back muscles met a new load: \d+ % — (expected|probable)", out), out
    assert re.search(r"before your answers: \d+ % — [a-z(]", out)  # prior with its word
    assert "not a diagnosis" in out.lower()


def test_json_output_is_machine_readable(capsys):
    assert main(["diagnose", "bracing_loss=often", "low_back_soreness=mild", "--json",
                 "--no-warning-signs"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["causes"]) == {"stabilizer_overload", "wrong_prime_mover", "other_cause"}
    assert data["triage"]["level"] == "none" and data["triage"]["unanswered"] == []
    assert data["fixes"][0]["target"] == "bracing_loss"
    assert 0 < data["forecast"]["interval"]["low"] < data["forecast"]["next"]


def test_an_unanswered_screen_withholds_the_estimates_and_says_how_to_answer(capsys):
    """Without answers to the warning signs no cause percentage goes out, in text or JSON."""
    assert main(["diagnose", "training_age=first_sessions", "low_back_soreness=mild"]) == 0
    out = capsys.readouterr().out
    assert "Likely causes" not in out and "Stabilizers" not in out
    assert "--no-warning-signs" in out and "--flag ID" in out and "--list-signs" in out
    assert main(["diagnose", "low_back_soreness=mild", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "causes" not in data and "fixes" not in data and "not all answered" in data["withheld"]
    assert "--no-warning-signs" in data["withheld"] and "--list-signs" in data["withheld"]
    assert "have no answer" in data["triage"]["message"]
    assert len(data["triage"]["unanswered"]) == len(model.load_model().warning_signs)


def test_list_signs_names_every_warning_sign(capsys):
    assert main(["diagnose", "--list-signs"]) == 0
    out = capsys.readouterr().out
    for sign in model.load_model().calibration.red_flags:
        assert sign.id in out and sign.question in out


def test_red_flag_withholds_causes_in_text(capsys):
    assert main(["diagnose", "--flag", "saddle_numbness", "low_back_soreness=mild"]) == 0
    out = capsys.readouterr().out
    assert "RED" in out and "withheld" in out
    assert "Likely causes" not in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["diagnose", "training_age=expert"], "valid states are: first_sessions"),
        (["diagnose", "nonsense=1"], "valid nodes are: training_age"),
        (["diagnose", "training_age"], "NODE=STATE"),
        (["diagnose", "--flag", "nope"], "valid ids are"),
        (["validate", "/nonexistent.toml"], "file not found"),
    ],
)
def test_bad_input_exits_2_with_a_helpful_message(args, needle):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr


def test_usage_error_exits_2():
    proc = run("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_validate_and_export(tmp_path, capsys):
    from calibration.loader import DEFAULT_PATH

    assert main(["validate", str(DEFAULT_PATH)]) == 0
    assert "behaviour checks pass" in capsys.readouterr().out
    for fmt in ("bif", "xmlbif", "toml"):
        out = tmp_path / f"net.{fmt}"
        assert main(["export", "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 1000
    bad = tmp_path / "bad.toml"
    bad.write_text("[nodes.a]\nstates = ['x']\ncpt = 'table'\ntable = [1.0]\n")
    assert main(["validate", str(bad)]) == 2
    assert "node 'a' field 'states'" in capsys.readouterr().err


def test_query_path_does_not_import_pgmpy():
    code = (
        "import sys; from model.cli import main; main(['diagnose', 'max_attempt=yes']); "
        "assert 'pgmpy' not in sys.modules, 'pgmpy imported'; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_diagnose_follows_the_store_active_version_unless_a_file_is_given(tmp_path, capsys):
    from dataclasses import replace

    from calibration.loader import DEFAULT_PATH, load_calibration
    from calibration.store import Store
    from calibration.writer import to_toml

    cal = load_calibration()
    node = cal.nodes["stabilizer_overload"]
    params = {**node.params, "training_age": {**node.params["training_age"], "novice": 0.9}}
    edited = replace(cal, nodes={**cal.nodes, "stabilizer_overload": replace(node, params=params)})
    store_path = tmp_path / "store.sqlite"

    def overload(*extra: str) -> float:
        assert main(["diagnose", "training_age=novice", "--json", "--no-warning-signs",
                     *extra]) == 0
        return json.loads(capsys.readouterr().out)["causes"]["stabilizer_overload"]

    shipped = overload("--store", str(store_path))  # no store yet: the shipped calibration
    assert not store_path.exists()  # reading never creates a store
    with Store(store_path, seed_toml=DEFAULT_PATH.read_text()) as store:
        store.add_version(to_toml(edited), author="t", note="n", activate=True)
    assert overload("--store", str(store_path)) > shipped + 0.1
    assert overload("--store", str(store_path), "--calibration", str(DEFAULT_PATH)) == shipped


def test_export_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "net.toml"
    out.write_text("keep me")
    assert main(["export", "--format", "toml", "--out", str(out)]) == 6  # ExitStatus.CANNOT_WRITE
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["export", "--format", "toml", "--out", str(out), "--force"]) == 0
    assert "[nodes.training_age]" in out.read_text()


def test_app_passes_every_option_to_streamlit(monkeypatch):
    """`knowpain app --server.port 8600` reaches `streamlit run` as given, after the
    options that hide the Deploy button; the script is the one inside the package."""
    from model.cli import lifter

    seen: list[list[str]] = []
    monkeypatch.setattr(lifter.subprocess, "call", lambda cmd: seen.append(cmd) or 0)
    monkeypatch.setattr(lifter.os, "execv", lambda path, cmd: seen.append(cmd))
    assert main(["app", "--server.port", "8600", "--server.headless", "true"]) == 0
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(cmd[4]) == lifter.APP_MAIN and lifter.APP_MAIN.is_file()
    assert cmd[-4:] == ["--server.port", "8600", "--server.headless", "true"]
    assert cmd[cmd.index("--client.toolbarMode") + 1] == "minimal"


def test_where_prints_the_shipped_default(capsys):
    assert main(["where", "default"]) == 0
    assert Path(capsys.readouterr().out.strip()) == DEFAULT_PATH


@pytest.mark.skipif(os.name != "posix", reason="exec and signals are POSIX")
def test_stopping_knowpain_app_stops_the_server(tmp_path):
    """TERM to ``knowpain app`` (what a service manager or CI sends) stops the server: it
    must not keep serving, orphaned, after the command is gone."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, KNOWPAIN_HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.cli", "app", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    health = f"http://127.0.0.1:{port}/_stcore/health"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 60
        while not answers():
            assert proc.poll() is None and time.monotonic() < deadline, "app did not start"
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        time.sleep(0.5)
        assert not answers(), "the server outlived knowpain app"
    finally:
        if proc.poll() is None:
            proc.kill()
