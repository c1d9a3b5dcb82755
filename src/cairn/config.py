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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cairn.core.yaml_text import parse_yaml
from cairn.errors import InvalidInput

CONFIG_FILE = "cairn.yaml"
HOME_DIR = ".cairn"
DEFAULT_EXPERIMENT = "Default"
# Keys of cairn.yaml this module reads; other top-level sections belong to other features.
_FILE_KEYS = ("uri", "db", "artifacts", "experiment", "audit_key", "audit_checkpoints")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How much of a server one caller may hold; each is ``CAIRN_SERVER_<NAME>`` (e.g.
    ``CAIRN_SERVER_UPLOADS=32``). See docs/security.md, "Input at the boundary"."""

    threads: int = 40  # worker threads for blocking work (AnyIO's default)
    uploads: int = 64  # uploads received at once; one more is answered 503
    uploads_per_account: int = 16  # of those, what one account may hold
    body_idle_seconds: float = 60.0  # a request body silent this long is dropped (408)
    auth_failures: int = 20  # failed authentications audited per address and window
    auth_window_seconds: float = 60.0
    evaluations: int = 2  # gate evaluations at once, each a worker process (all callers')


def server_limits(environ: Mapping[str, str]) -> ServerLimits:
    """The server's limits, each from its ``CAIRN_SERVER_*`` variable or the default.

    Raises:
        InvalidInput: a variable is not a positive number (naming it).
    """
    given: dict[str, float] = {}
    for limit in fields(ServerLimits):
        variable = f"CAIRN_SERVER_{limit.name.upper()}"
        if environ.get(variable):
            kind = int if isinstance(limit.default, int) else float
            given[limit.name] = _positive(environ[variable], kind, variable)
    return ServerLimits(**given)  # type: ignore[arg-type]  # each parsed as its default's type


def _positive(text: str, kind: type[float], variable: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise InvalidInput(f"{variable}: expected a positive {kind.__name__}, got {text!r}")
    return value


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
    server: ServerLimits = ServerLimits()  # what `cairn server` lets one caller hold

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
        InvalidInput: ``cairn.yaml`` is unreadable, a value holds a NUL character, or
            ``uri`` is not an http(s) URL (each naming where the value came from).
    """
    env = os.environ if environ is None else environ
    root = find_project_root((cwd or Path.cwd()).resolve())
    config = root / CONFIG_FILE if root else None
    sources = _Sources(arguments, env, _read_config_file(config) if config else {}, config)
    pick = sources.pick
    home = Path(pick("home") or (root / HOME_DIR if root else Path.home() / HOME_DIR))
    home = home.expanduser().resolve()
    uri = pick("uri")
    if uri is not None:
        uri = check_server_uri(uri, sources.where("uri"))
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
        server=server_limits(env),
    )


@dataclass(frozen=True, slots=True)
class _Sources:
    """Where a setting is looked for, in order: the arguments, the environment, the file."""

    arguments: Mapping[str, str | None]
    env: Mapping[str, str]
    file_values: Mapping[str, str]
    file: Path | None

    def pick(self, name: str) -> str | None:
        """The setting's value, if any source has one.

        Raises:
            InvalidInput: the value holds a NUL character, which no path, URL or name can
                (the operating system would refuse it later, less clearly).
        """
        value = self._value(name)
        if value is not None and "\0" in value:
            raise InvalidInput(f"{self.where(name)} {value!r}: contains a NUL character")
        return value

    def where(self, name: str) -> str:
        """Where the value of ``name`` came from, as a user would look for it."""
        if self.arguments.get(name) is not None:
            return name
        variable = f"CAIRN_{name.upper()}"
        return variable if self.env.get(variable) else f"{self.file}: {name}"

    def _value(self, name: str) -> str | None:
        given = self.arguments.get(name)
        if given is not None:
            return given
        return self.env.get(f"CAIRN_{name.upper()}") or self.file_values.get(name)


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
    loaded = _read_yaml(path) or {}
    servers = loaded.get("servers", {}) if isinstance(loaded, dict) else None
    if not isinstance(servers, dict) or not all(isinstance(t, str) for t in servers.values()):
        raise InvalidInput(f"{path}: expected 'servers:' mapping each URL to its token")
    return {str(url): token for url, token in servers.items()}


def check_server_uri(uri: str, where: str = "CAIRN_URI") -> str:
    """The address of a Cairn server, without a trailing slash.

    Args:
        uri: what the user gave.
        where: where it was given, for the message.

    Raises:
        InvalidInput: ``uri`` is not an http(s) URL with a host (and a port from 0 to
            65535, if it has one).
    """
    if not _is_server_address(uri):
        raise InvalidInput(
            f"{where} {uri!r}: expected the address of a Cairn server, "
            "such as http://127.0.0.1:5000"
        )
    return uri.rstrip("/")


def _is_server_address(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  # raises for a port that is no number from 0 to 65535
    except ValueError:  # an IPv6 host without its closing bracket, say
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def read_config_document(path: Path) -> dict[str, Any]:
    """The whole of a ``cairn.yaml`` (empty if there is none); each feature reads its own
    section of it.

    Raises:
        InvalidInput: the file is not YAML, or not a mapping at the top level.
    """
    if not path.is_file():
        return {}
    loaded = _read_yaml(path)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InvalidInput(f"{path}: expected a mapping of settings at the top level")
    return loaded


def _read_yaml(path: Path) -> Any:
    """Raises:
    InvalidInput: naming the file: it cannot be read, or is not YAML.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    return parse_yaml(data, str(path))


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
