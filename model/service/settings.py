"""Where the clinic's store lives and which therapist passcode is configured — one reading of
the same sources for the app and the command line.

The sources, first found wins:

1. a secrets mapping: the app passes Streamlit's ``st.secrets``; the command line reads the
   same files Streamlit reads, ``.streamlit/secrets.toml`` in the working folder, then
   ``~/.streamlit/secrets.toml`` (keys ``therapist_passcode`` and ``store_path``);
2. the environment: ``KNOWPAIN_THERAPIST_PASSCODE``, and ``KNOWPAIN_HOME`` (the folder
   holding ``knowpain.sqlite``);
3. for the store only, the per-user data folder (see
   :func:`calibration.store.default_store_path`).

Without a configured passcode every therapist action is locked.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from calibration.store import default_store_path

__all__ = ["PASSCODE_ENV", "SECRETS_KEY", "STORE_KEY", "Settings", "load_settings",
           "read_secrets_files"]

#: Environment variable holding the expected therapist passcode.
PASSCODE_ENV = "KNOWPAIN_THERAPIST_PASSCODE"
#: Key of the expected passcode in the secrets.
SECRETS_KEY = "therapist_passcode"
#: Key of the store file in the secrets.
STORE_KEY = "store_path"
#: Largest secrets file read (a secrets file is a few lines).
_MAX_SECRETS_BYTES = 64 * 1024


@dataclass(frozen=True)
class Settings:
    """The store file and the configured passcode (``None``: therapist actions are locked)."""

    store_path: Path
    passcode: str | None = field(default=None, repr=False)

    @property
    def locked(self) -> bool:
        return self.passcode is None


def read_secrets_files(folder: Path | None = None) -> dict[str, object]:
    """The secrets Streamlit would read when started in ``folder`` (default: the working
    folder): the project's ``.streamlit/secrets.toml`` over the user's. Unreadable or
    malformed files are skipped (the app would refuse to start on them, and it says so)."""
    merged: dict[str, object] = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml",
                 (folder or Path.cwd()) / ".streamlit" / "secrets.toml"):
        try:
            if not path.is_file() or path.stat().st_size > _MAX_SECRETS_BYTES:
                continue
            merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
    return merged


def _text(secrets: Mapping[str, object] | None, key: str) -> str | None:
    if secrets is None:
        return None
    try:
        value = secrets.get(key)
    except Exception:  # st.secrets raises when there is no secrets file at all
        return None
    return value if isinstance(value, str) and value.strip() else None


def load_settings(secrets: Mapping[str, object] | None = None,
                  store_path: str | os.PathLike[str] | None = None) -> Settings:
    """Read the settings; ``secrets=None`` reads the secrets files (the command line's case).

    ``store_path`` (a ``--store`` option) wins over every other source of the store file.
    """
    if secrets is None:
        secrets = read_secrets_files()
    passcode = _text(secrets, SECRETS_KEY)
    if passcode is None:
        env = os.environ.get(PASSCODE_ENV)
        passcode = env if env is not None and env.strip() else None
    if store_path is not None:
        path = Path(store_path).expanduser()
    elif (configured := _text(secrets, STORE_KEY)) is not None:
        path = Path(configured.strip()).expanduser()
    else:
        path = default_store_path()
    return Settings(store_path=path, passcode=passcode)
