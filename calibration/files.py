"""Reading a file named by someone else, safely: one rule for every reader of outside files
(calibrations, case exports, the store's header, network files).

A path from a user can name something that is not a file: a folder, a named pipe (reading
one blocks until a writer comes, possibly forever), a socket, or a device such as
``/dev/zero`` that never ends. :func:`open_checked` opens only regular files and character
devices — checked before opening, and again on the open descriptor, which is opened
non-blocking so that a pipe swapped in between cannot block either — and
:func:`read_at_most` reads at most ``limit + 1`` bytes, a megabyte at a time (``read(n)``
would reserve all ``n`` bytes up front, even for a file of a few bytes), so the caller can
tell "too big" from "fits" without reading more. Every refusal is an :class:`OSError` with a
plain ``strerror``; each reader turns it into its own :class:`~model.errors.KnowpainError`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["open_checked", "read_at_most", "read_chunks"]

CHUNK = 1 << 20


def _refuse_kind(mode: int) -> None:
    if stat.S_ISREG(mode) or stat.S_ISCHR(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file")
    kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise OSError(errno.EINVAL, f"is {kind}, not a file")


@contextmanager
def open_checked(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """The file at ``path`` opened for reading in binary, if it is a regular file or a
    character device. Raises :class:`OSError` (``strerror`` set) for anything else: a
    missing file, a folder, a named pipe or socket, a NUL in the path, a non-path."""
    if not isinstance(path, (str, os.PathLike)):
        raise OSError(errno.EINVAL, f"a path must be text, not {type(path).__name__}")
    file = Path(path)
    if "\x00" in str(file):
        raise OSError(errno.EINVAL, "the path contains a NUL character")
    _refuse_kind(file.stat().st_mode)  # FileNotFoundError, ENAMETOOLONG, ... are OSErrors
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(file, flags)
    try:
        _refuse_kind(os.fstat(fd).st_mode)  # the same file that was checked
    except OSError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        yield fh


def read_chunks(fh: IO[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes of ``fh``, a megabyte at a time."""
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = fh.read(min(CHUNK, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_at_most(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the file at ``path`` (see :func:`open_checked`)."""
    with open_checked(path) as fh:
        return read_chunks(fh, limit + 1)
