"""Reading a file named by someone else, safely: one rule for every reader of outside files.

A path from a user can name something that is not a file: a folder, a named pipe (reading
one blocks until a writer comes, possibly forever), a socket, or a device such as
``/dev/zero`` that never ends. :func:`read_at_most` refuses the first three before opening
anything and reads at most ``limit + 1`` bytes of the rest, so the caller can tell "too big"
from "fits" without reading more. Every refusal is an :class:`OSError` with a plain
``strerror``; each reader turns it into its own :class:`~model.errors.KnowpainError`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["read_at_most"]


def read_at_most(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the file at ``path``.

    Raises :class:`OSError` (with ``strerror`` set) for a missing file, a folder, a named
    pipe or socket, a path with a NUL character or one the system cannot take.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise OSError(errno.EINVAL, f"a path must be text, not {type(path).__name__}")
    file = Path(path)
    if "\x00" in str(file):
        raise OSError(errno.EINVAL, "the path contains a NUL character")
    mode = file.stat().st_mode  # FileNotFoundError, ENAMETOOLONG, ... are OSErrors
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file")
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise OSError(errno.EINVAL, "is a named pipe or a socket, not a file")
    with file.open("rb") as fh:
        return fh.read(limit + 1)
