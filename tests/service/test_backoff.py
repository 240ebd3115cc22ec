"""The passcode gate slows guessing down: back-off per session and per store, failed tries in
the audit log (never the passcode), private store files. The clock is injected: no test
sleeps."""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calibration.store import Store
from model.cli import main
from model.errors import AccessError, BackOffError
from model.service import access, clinic
from model.service.access import FREE_TRIES, MAX_DELAY, WINDOW, retry_after
from model.service.clinic import Clinic, unlock
from model.service.settings import PASSCODE_ENV, Settings

SECRET = "a long and correct passcode"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def conf(tmp_path: Path) -> Settings:
    return Settings(store_path=tmp_path / "clinic" / "knowpain.sqlite", passcode=SECRET)


def failed_entries(conf: Settings) -> list:
    with Store(conf.store_path) as store:
        return [e for e in store.audit_log() if e.action == Store.FAILED_UNLOCK]


# ---- the schedule ------------------------------------------------------------------------------
def test_the_first_tries_are_free_then_each_doubles_the_wait():
    assert retry_after([T0] * (FREE_TRIES - 1), T0) == 0
    for extra, wait in enumerate([1, 2, 4, 8, 16]):
        assert retry_after([T0] * (FREE_TRIES + extra), T0) == wait
    assert retry_after([T0] * 100, T0) == MAX_DELAY
    assert retry_after([T0] * FREE_TRIES, T0 + timedelta(seconds=0.4)) == pytest.approx(0.6)


def test_old_failures_are_forgotten():
    old = [T0 - WINDOW - timedelta(seconds=1)] * 50
    assert retry_after(old, T0) == 0


def test_a_patient_attacker_gets_about_fourteen_guesses_an_hour():
    """Guess as soon as the back-off allows, every guess wrong, for a day."""
    now, failures = T0, []
    while now < T0 + timedelta(days=1):
        wait = retry_after(failures, now)
        now += timedelta(seconds=wait)
        failures = [t for t in failures if now - t < WINDOW] + [now]
    per_hour = len([t for t in failures if now - t < WINDOW])
    assert per_hour <= 14, per_hour  # before the back-off: 300 guesses in 10 seconds


# ---- unlock: per store and per session ----------------------------------------------------------
def test_after_the_free_tries_even_the_right_passcode_waits(conf, monkeypatch):
    clock = Clock()
    for _ in range(FREE_TRIES):
        with pytest.raises(AccessError, match="wrong passcode"):
            unlock(conf, "guess", source="app", clock=clock)
    checked: list[str] = []
    real = access.passcode_matches
    monkeypatch.setattr(clinic, "passcode_matches", lambda g, e: checked.append(g) or real(g, e))
    with pytest.raises(BackOffError, match="try again in 1 s") as info:
        unlock(conf, SECRET, source="app", clock=clock)
    assert info.value.retry_after == pytest.approx(1.0)
    assert checked == []  # refused without looking at the passcode
    assert len(failed_entries(conf)) == FREE_TRIES  # and the refusal is not a new failure
    clock.advance(1.0)
    assert unlock(conf, SECRET, source="app", clock=clock)
    assert checked == [SECRET]


def test_the_store_remembers_across_sessions_and_processes(conf):
    clock = Clock()
    for _ in range(FREE_TRIES):  # each call a new session: no session failures given
        with pytest.raises(AccessError):
            unlock(conf, "guess", clock=clock, session_failures=())
        clock.advance(60)
    with pytest.raises(AccessError, match="wrong"):  # the 1 s wait is long over
        unlock(conf, "guess", clock=clock)
    with pytest.raises(BackOffError, match="2 s"):  # a new session right after: 2 s to wait
        unlock(conf, SECRET, clock=clock)
    clock.advance(2)
    assert unlock(conf, SECRET, clock=clock)


def test_the_session_remembers_without_the_store(conf, tmp_path):
    fresh = Settings(store_path=tmp_path / "other.sqlite", passcode=SECRET)
    with pytest.raises(BackOffError):
        unlock(fresh, SECRET, session_failures=[T0] * (FREE_TRIES + 3), clock=Clock())


def test_failed_tries_are_audited_without_the_passcode(conf):
    with pytest.raises(AccessError):
        unlock(conf, "my-guess-123", source="app", clock=Clock())
    (entry,) = failed_entries(conf)
    assert entry.who == "app" and entry.at == T0
    assert "my-guess-123" not in repr(entry) and SECRET not in repr(entry)


def test_no_passcode_and_a_locked_gate_are_not_counted(conf, tmp_path):
    with pytest.raises(AccessError, match="no passcode given"):
        unlock(conf, "", clock=Clock())
    locked = Settings(store_path=conf.store_path, passcode=None)
    with pytest.raises(AccessError, match="locked"):
        unlock(locked, "guess", clock=Clock())
    assert not conf.store_path.exists()


def test_parallel_guesses_are_counted_one_by_one(conf):
    clock = Clock()
    Store(conf.store_path).close()
    outcomes: list[str] = []

    def guess() -> None:
        try:
            unlock(conf, "guess", clock=clock)
        except BackOffError:
            outcomes.append("backoff")
        except AccessError:
            outcomes.append("wrong")

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("wrong") == FREE_TRIES
    assert outcomes.count("backoff") == 20 - FREE_TRIES
    assert len(failed_entries(conf)) == FREE_TRIES


def test_the_command_line_is_backed_off_by_the_store(tmp_path, monkeypatch, capsys):
    store = tmp_path / "s.sqlite"
    monkeypatch.setenv(PASSCODE_ENV, SECRET)
    conf = Settings(store_path=store, passcode=SECRET)
    Clinic(conf).close()  # a seeded store
    for _ in range(FREE_TRIES):
        with pytest.raises(AccessError):
            unlock(conf, "guess")  # real clock: these are "now"
    monkeypatch.setenv("KNOWPAIN_PASSCODE", SECRET)
    assert main(["calibration", "activate", "1", "--who", "me", "--store", str(store)]) == 4
    assert "too many wrong passcodes" in capsys.readouterr().err


# ---- store files -----------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277])
def test_store_folder_and_files_are_private_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / "new" / "deeper" / "knowpain.sqlite"
        with Clinic.open(Settings(store_path=path, passcode=SECRET)) as c:
            assert c.versions()  # seeded: written, so -wal and -shm exist
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            for f in files:
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        for folder in (path.parent, path.parent.parent):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_an_existing_readable_store_is_tightened(tmp_path):
    path = tmp_path / "knowpain.sqlite"
    Store(path).close()
    os.chmod(path, 0o644)
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    Store(shared / "k.sqlite").close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # a folder that existed is left alone


def test_names_and_notes_with_control_characters_are_refused(conf):
    from model.errors import UsageError
    from model.service.clinic import Grant, _fingerprint

    grant = Grant(_fingerprint(SECRET))
    with Clinic.open(conf, grant) as c:
        active = c.active()
        with pytest.raises(UsageError, match="U\\+001B"):
            c.activate(active.id, "Dr \x1b[2J")
        with pytest.raises(UsageError, match="the note"):
            c.save(active.toml_text, "Dr A", note="fine\x1b]0;pwned\x07")
