"""Registered models and their versions: the shapes, and the references users type.

A model is a name (``churn``) in a project; each registration adds a version, numbered
from 1, made of one model package (``cairn.registry.package``) named by the digest of its
manifest. An alias (``champion``) points at one version and can be moved.

References: ``churn/3`` (version 3), ``churn@champion`` (what the alias points at),
``churn@latest`` or ``churn`` (the newest version); each may be written as an MLflow
models URI too (``models:/churn@champion``, ``models:/churn/3``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.core.limits import check_text
from cairn.errors import InvalidInput

MODELS_URI = "models:/"
LATEST = "latest"
# Aliases that mean something already: `latest` is always the newest version.
RESERVED_ALIASES = frozenset({LATEST})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a reference names: a version number, an alias, or the newest version."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias or LATEST}"


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One file of a model package, by its path inside the package."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a scan of a pickle-based file found: an import outside the allow-list."""

    path: str  # the package file
    imports: tuple[str, ...]  # "module.name" of each global it would load

    def __str__(self) -> str:
        return f"{self.path} imports {', '.join(self.imports)}"


@dataclass(frozen=True, slots=True)
class NewModelVersion:
    """What registration records: the package, and where the model came from."""

    name: str
    digest: str  # of the package's manifest, which holds every file's digest
    flavor: str
    files: Sequence[PackageFile]
    manifest: Mapping[str, Any]
    run_id: str | None = None
    findings: Sequence[Finding] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    digest: str
    flavor: str
    files: tuple[PackageFile, ...]
    manifest: Mapping[str, Any]
    run_id: str | None
    findings: tuple[Finding, ...]
    created_at: int
    created_by: str
    description: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def flagged(self) -> bool:
        """Loading it runs code outside the allow-list: it needs an explicit trust."""
        return bool(self.findings)


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    project: str
    created_at: int
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)


def check_model_name(name: str) -> str:
    """Raises:
    InvalidInput: naming what a model name may hold.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"model name {name!r}: expected 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    """Raises:
    InvalidInput: the alias is malformed, a version number, or reserved.
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(
            f"alias {alias!r}: expected 1 to 63 lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"alias {alias!r} is reserved ({alias!r} always means the newest version); "
            "choose another name"
        )
    return alias


def parse_model_ref(text: str) -> ModelRef:
    """``churn``, ``churn@latest``, ``churn@champion``, ``churn/3``, or any of them after
    ``models:/``.

    Raises:
        InvalidInput: the reference has none of those forms.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"model reference: expected a string such as 'churn/3', got {text!r}")
    body = text.removeprefix(MODELS_URI)
    if "/" in body:
        name, _, version = body.partition("/")
        check_model_name(name)
        if version.isdigit() and 1 <= int(version) < 10**9:
            return ModelRef(name, version=int(version))
        raise InvalidInput(
            f"model reference {text!r}: after '/' expected a version number (such as {name}/3)"
        )
    name, at, alias = body.partition("@")
    check_model_name(name)
    if not at or alias == LATEST:
        return ModelRef(name)
    if alias.isdigit():
        raise InvalidInput(
            f"model reference {text!r}: a version is written {name}/{alias}; '@' names an alias"
        )
    if not _ALIAS.match(alias):
        raise InvalidInput(
            f"model reference {text!r}: after '@' expected an alias (lowercase letters, "
            "digits, '_' or '-') or 'latest'"
        )
    return ModelRef(name, alias=alias)


# A model card's fields, in the order a card shows them.
CARD_TEXT_FIELDS = ("intended_use", "limitations", "training_data", "ethical_considerations")
CARD_FIELDS = (*CARD_TEXT_FIELDS, "metrics")


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What people need to know before using a version: structured, so a release policy
    can require fields, and rendered as Markdown for people."""

    intended_use: str = ""
    limitations: str = ""
    training_data: str = ""
    ethical_considerations: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {name: getattr(self, name) for name in CARD_TEXT_FIELDS}
        return {**found, "metrics": dict(self.metrics)}

    def missing(self, required: Sequence[str]) -> list[str]:
        """The required fields this card leaves empty."""
        return [name for name in required if not getattr(self, name)]

    def to_markdown(self, title: str) -> str:
        lines = [f"# Model card: {title}", ""]
        for name in CARD_TEXT_FIELDS:
            lines += [
                f"## {name.replace('_', ' ').capitalize()}",
                "",
                getattr(self, name) or "—",
                "",
            ]
        lines += ["## Metrics", ""]
        if self.metrics:
            lines += ["| metric | value |", "|---|---:|"]
            lines += [f"| {key} | {value:.6g} |" for key, value in sorted(self.metrics.items())]
        else:
            lines.append("—")
        return "\n".join(lines) + "\n"


def card_from_dict(data: Any, where: str = "card") -> ModelCard:
    """Raises:
    InvalidInput: an unknown field, text that is not a string, a metric not a number.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{where}: expected a mapping of {', '.join(CARD_FIELDS)}")
    unknown = sorted(set(data) - set(CARD_FIELDS))
    if unknown:
        raise InvalidInput(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))}; a card has "
            f"{', '.join(CARD_FIELDS)}"
        )
    for name in CARD_TEXT_FIELDS:
        if not isinstance(data.get(name, ""), str):
            raise InvalidInput(f"{where}.{name}: expected text")
        check_text(data.get(name, ""), f"{where}.{name}")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in metrics.items()
    ):
        raise InvalidInput(f"{where}.metrics: expected a mapping of metric names to numbers")
    text = {name: str(data.get(name, "")).strip() for name in CARD_TEXT_FIELDS}
    return ModelCard(**text, metrics={k: float(v) for k, v in metrics.items()})
