"""What every command shares: writing output files safely, a stdout that survives a closed
pipe, the settings, and the therapist passcode as the command line receives it."""

from __future__ import annotations

import argparse
import getpass
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from model.errors import AccessError, OutputError, UsageError
from model.service.clinic import Grant, unlock
from model.service.settings import Settings, load_settings

__all__ = ["PASSCODE_ENV", "atomic_write", "check_out", "grant", "settings", "surviving_pipe",
           "whole_number"]

#: Environment variable a therapist may use to give the passcode to a script.
PASSCODE_ENV = "KNOWPAIN_PASSCODE"
_MAX_PASSCODE_FILE = 4096


# ---- stdout ---------------------------------------------------------------------------------
class _Survivor(io.TextIOBase):
    """stdout that goes quiet once it cannot be written, so the command still finishes its
    real work — writing its output file — and exits with the status of that work.

    A reader that has gone (``knowpain ... | head``) or a closed stdout (``>&-``) is not an
    error; any other failure (``> /dev/full``: no space) is kept in ``error`` and reported
    once the work is done (see :func:`model.cli.main`).
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.broken = stream is None
        self.error: OSError | None = None

    def _attempt(self, action: Callable[[TextIO], object]) -> None:
        if self.broken or self._stream is None:
            return
        try:
            action(self._stream)
        except BrokenPipeError:
            self.broken = True
        except OSError as exc:
            self.broken, self.error = True, exc

    def write(self, text: str) -> int:
        self._attempt(lambda s: s.write(text))
        return len(text)

    def flush(self) -> None:
        self._attempt(lambda s: s.flush())

    def writable(self) -> bool:
        return True


@contextmanager
def surviving_pipe() -> Iterator[_Survivor]:
    """Run a command with a stdout that survives a closed pipe (see :class:`_Survivor`)."""
    original = sys.stdout
    survivor = _Survivor(original)
    sys.stdout = survivor
    try:
        yield survivor
    finally:
        survivor.flush()
        sys.stdout = original
        if survivor.broken and original is not None:
            # keep the interpreter's own final flush from failing too
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, original.fileno())
            except (OSError, ValueError, io.UnsupportedOperation):
                pass


# ---- arguments ------------------------------------------------------------------------------
#: Largest whole number an option takes (counts, offsets, ids, seeds): beyond it SQLite and
#: numpy would overflow, and no store holds that many of anything.
MAX_WHOLE = 2**53


def whole_number(text: str) -> int:
    """An argparse type: a whole number from 0 to :data:`MAX_WHOLE`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") \
            from None
    if not 0 <= value <= MAX_WHOLE:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {MAX_WHOLE:,}, got {text[:40]}"
            + ("…" if len(text) > 40 else ""))
    return value


# ---- output files ---------------------------------------------------------------------------
def check_out(path: Path, force: bool) -> None:
    """Refuse, before any work, an output path that cannot or must not be written."""
    if path.is_dir():
        raise OutputError(f"--out {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise OutputError(f"--out {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise OutputError(
            f"{path} already exists; choose another --out file, or add --force to replace it"
        )


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None] | str,
                 *, force: bool = False) -> Path:
    """Write a file so that it is either complete or absent — never half-written.

    ``write`` is the text, or a function that writes the content to the temporary path it is
    given. The temporary file lives in the target's folder, is fsync'ed, then renamed over
    the target. Without ``force`` an existing target is never replaced, even one that
    appears while we write (a hard link is the atomic no-clobber rename). Raises
    :class:`~model.errors.OutputError`.
    """
    target = Path(path)
    check_out(target, force)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        os.close(fd)
        if isinstance(write, str):
            tmp.write_text(write, encoding="utf-8", newline="")
        else:
            write(tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise OutputError(
                    f"{target} already exists; choose another --out file, or add --force"
                ) from None
            except OSError:  # no hard links here (e.g. some network or FAT file systems)
                if target.exists():
                    raise OutputError(f"{target} already exists; add --force to replace it") \
                        from None
                os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


# ---- settings and access --------------------------------------------------------------------
def settings(args: argparse.Namespace) -> Settings:
    """The same settings the app reads, with ``--store`` (when given) for the store file."""
    return load_settings(store_path=getattr(args, "store", None))


def _read_passcode_file(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_PASSCODE_FILE + 1)
    except FileNotFoundError:
        raise UsageError(f"--passcode-file {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--passcode-file {path}: cannot read it ({exc.strerror})") from None
    if len(raw) > _MAX_PASSCODE_FILE:
        raise UsageError(f"--passcode-file {path}: too large for a passcode file "
                         f"(more than {_MAX_PASSCODE_FILE} bytes)")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"--passcode-file {path}: not UTF-8 text") from None
    return lines[0] if lines else ""


def supplied_passcode(args: argparse.Namespace) -> str:
    """The passcode the user gives: --passcode-file, then $KNOWPAIN_PASSCODE, then a prompt."""
    file = getattr(args, "passcode_file", None)
    if file:
        return _read_passcode_file(Path(file))
    from_env = os.environ.get(PASSCODE_ENV)
    if from_env:
        return from_env
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return getpass.getpass("Therapist passcode: ")
        except (EOFError, KeyboardInterrupt):
            return ""
    return ""


def grant(args: argparse.Namespace, conf: Settings) -> Grant:
    """Unlock the store for this command with the passcode the user supplies."""
    given = "" if conf.locked else supplied_passcode(args)
    if not conf.locked and not given:
        raise AccessError(
            "this command changes the store and needs the therapist passcode: give it with "
            f"--passcode-file FILE, in the environment variable {PASSCODE_ENV}, or run the "
            "command in a terminal to be asked for it"
        )
    return unlock(conf, given, source="command line")
