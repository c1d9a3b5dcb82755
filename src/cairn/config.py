"""Configuration, read once: arguments > ``CAIRN_*`` environment > ``cairn.yaml`` > defaults.

The result is a frozen :class:`Settings` handed down as plain values; nothing below
``platform.py`` reads the environment or the file system for configuration.

Where the embedded store lives: ``CAIRN_HOME`` if set; else the ``.cairn/`` folder of the
project, found upwards from the working directory like ``.git`` (a folder holding
``.cairn/`` or ``cairn.yaml`` is a project); else ``~/.cairn/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput

CONFIG_FILE = "cairn.yaml"
HOME_DIR = ".cairn"
DEFAULT_EXPERIMENT = "Default"
# Keys of cairn.yaml this module reads; other top-level sections belong to other features.
_FILE_KEYS = ("uri", "db", "artifacts", "experiment", "audit_key", "audit_checkpoints")


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    uri: str | None  # a Cairn server (http/https); None means the embedded store
    token: str | None
    db_url: str
    artifacts_url: str
    experiment: str
    project_root: Path | None
    audit_key: Path  # the installation's Ed25519 key, which signs audit checkpoints
    audit_checkpoints: str  # a folder or s3:// prefix outside the database

    @property
    def is_remote(self) -> bool:
        return self.uri is not None


def find_project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``.cairn/`` or ``cairn.yaml``."""
    for folder in (start, *start.parents):
        if (folder / HOME_DIR).is_dir() or (folder / CONFIG_FILE).is_file():
            return folder
    return None


def load_settings(
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **arguments: str | None,
) -> Settings:
    """Resolve the settings once.

    Args:
        cwd: where to look for the project (default: the working directory).
        environ: the environment (default: ``os.environ``).
        arguments: explicit values (``home``, ``uri``, ``token``, ``db``, ``artifacts``,
            ``experiment``, ``audit_key``, ``audit_checkpoints``); ``None`` means "not
            given".

    Raises:
        InvalidInput: ``cairn.yaml`` is unreadable, or ``uri`` is not an http(s) URL.
    """
    env = os.environ if environ is None else environ
    root = find_project_root((cwd or Path.cwd()).resolve())
    file_values = _read_config_file(root / CONFIG_FILE) if root else {}

    def pick(name: str) -> str | None:
        given = arguments.get(name)
        if given is not None:
            return given
        return env.get(f"CAIRN_{name.upper()}") or file_values.get(name)

    home = Path(pick("home") or (root / HOME_DIR if root else Path.home() / HOME_DIR))
    home = home.expanduser().resolve()
    uri = pick("uri")
    if uri is not None:
        uri = check_server_uri(uri)
    token = pick("token")
    if token is None and uri is not None:
        token = stored_tokens(env).get(uri)  # from `cairn login`
    return Settings(
        home=home,
        uri=uri,
        token=token,
        db_url=pick("db") or f"sqlite:///{home / 'cairn.db'}",
        artifacts_url=pick("artifacts") or str(home / "artifacts"),
        experiment=pick("experiment") or DEFAULT_EXPERIMENT,
        project_root=root,
        audit_key=Path(pick("audit_key") or home / "keys" / "audit-ed25519.pem"),
        audit_checkpoints=pick("audit_checkpoints") or str(home / "audit-checkpoints"),
    )


def credentials_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``cairn login`` keeps tokens: readable by its owner only."""
    env = os.environ if environ is None else environ
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "cairn" / "credentials.yaml"


def stored_tokens(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Server URL -> token, as ``cairn login`` stored them.

    Raises:
        InvalidInput: the file is unreadable or not what ``cairn login`` writes.
    """
    path = credentials_file(environ)
    if not path.is_file():
        return {}
    import yaml

    try:
        loaded: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read it as YAML ({exc})") from exc
    servers = loaded.get("servers", {}) if isinstance(loaded, dict) else None
    if not isinstance(servers, dict):
        raise InvalidInput(f"{path}: expected 'servers:' mapping each URL to its token")
    return {str(url): str(token) for url, token in servers.items()}


def check_server_uri(uri: str) -> str:
    if not uri.startswith(("http://", "https://")):
        raise InvalidInput(
            f"CAIRN_URI {uri!r}: expected the address of a Cairn server, "
            "such as http://127.0.0.1:5000"
        )
    return uri.rstrip("/")


def read_config_document(path: Path) -> dict[str, Any]:
    """The whole of a ``cairn.yaml`` (empty if there is none); each feature reads its own
    section of it.

    Raises:
        InvalidInput: the file is not YAML, or not a mapping at the top level.
    """
    if not path.is_file():
        return {}
    import yaml  # only projects with a cairn.yaml pay for the import

    try:
        loaded: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read it as YAML ({exc})") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InvalidInput(f"{path}: expected a mapping of settings at the top level")
    return loaded


def _read_config_file(path: Path) -> dict[str, str]:
    loaded = read_config_document(path)
    values: dict[str, str] = {}
    for key in _FILE_KEYS:
        value = loaded.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{path}: '{key}' must be a string, got {value!r}")
        if value is not None:
            values[key] = value
    return values
