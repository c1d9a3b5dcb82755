"""Registered models and their versions: the shapes, and the references users type.

A model is a name (``churn``) in a project; each registration adds a version, numbered
from 1, made of one model package (``cairn.models.package``) named by the digest of its
manifest. An alias (``champion``) points at one version and can be moved.

References: ``churn/3`` (version 3), ``churn@champion`` (what the alias points at),
``churn@latest`` or ``churn`` (the newest version); each may be written as an MLflow
models URI too (``models:/churn@champion``, ``models:/churn/3``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.core.artifact import check_digest
from cairn.core.limits import MAX_KEY, check_int64, check_text, text_problem
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
class TrafficBatch:
    """A batch of what a served model version answered: a columnar file (``digest``, in
    the artifact store) of ``rows`` requests received from ``first_at`` to ``last_at``
    (milliseconds since the epoch)."""

    model: str
    version: int
    first_at: int
    last_at: int
    rows: int
    digest: str
    logged_at: int = 0  # set by the store
    logged_by: str = ""

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"


def check_traffic(batch: TrafficBatch) -> TrafficBatch:
    """Raises:
    InvalidInput: naming the field that is not as a batch of traffic must be.
    """
    check_model_name(batch.model)
    bounds = (("version", batch.version, 1), ("first_at", batch.first_at, 0),
              ("last_at", batch.last_at, batch.first_at), ("rows", batch.rows, 1))  # fmt: skip
    for name, value, least in bounds:
        if check_int64(value, name) < least:
            raise InvalidInput(f"{name}: expected {least} or more, got {value}")
    check_digest(batch.digest)
    return batch


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
# Pages of prose a field, and more metrics than any card shows: a card is read with every
# gate check of its version, so it stays small.
MAX_CARD_TEXT = 64 * 1024  # characters
MAX_CARD_METRICS = 1000


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
    """A card from what someone wrote (a mapping, as JSON or YAML gives it).

    Raises:
        InvalidInput: naming the field: an unknown one; text that is not a string, is
            longer than ``MAX_CARD_TEXT`` or cannot be stored; more than
            ``MAX_CARD_METRICS`` metrics, a metric name that is empty, longer than
            ``MAX_KEY`` or cannot be stored, or a value that is not a finite number a
            64-bit float holds (a NaN would be stored as null).
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{where}: expected a mapping of {', '.join(CARD_FIELDS)}")
    unknown = sorted(set(data) - set(CARD_FIELDS))
    if unknown:
        raise InvalidInput(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))}; a card has "
            f"{', '.join(CARD_FIELDS)}"
        )
    text = {name: _card_text(data.get(name, ""), f"{where}.{name}") for name in CARD_TEXT_FIELDS}
    return ModelCard(**text, metrics=_card_metrics(data.get("metrics") or {}, f"{where}.metrics"))


def stored_card(data: Any) -> ModelCard:
    """A card as it was stored, whichever Cairn stored it: what an older one let through
    is left out (a NaN metric, stored as null) or kept (a longer text), never refused —
    a card once accepted must not make every read and gate check of its version fail."""
    if not isinstance(data, Mapping):
        return ModelCard()
    text = {name: value for name in CARD_TEXT_FIELDS if isinstance(value := data.get(name), str)}
    found = data.get("metrics")
    metrics = {
        key: number
        for key, value in (found.items() if isinstance(found, Mapping) else ())
        if isinstance(key, str) and (number := _finite(value)) is not None
    }
    return ModelCard(**text, metrics=metrics)


def _card_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected text")
    if len(value) > MAX_CARD_TEXT:
        raise InvalidInput(f"{field}: longer than {MAX_CARD_TEXT} characters ({len(value)})")
    return check_text(value, field).strip()


def _card_metrics(metrics: Any, field: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise InvalidInput(f"{field}: expected a mapping of metric names to numbers")
    if len(metrics) > MAX_CARD_METRICS:
        raise InvalidInput(f"{field}: {len(metrics)} metrics; a card has at most "
                           f"{MAX_CARD_METRICS}")  # fmt: skip
    found = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY or text_problem(key):
            raise InvalidInput(f"{field}: {_shown(key)} is no metric name (text of 1 to "
                               f"{MAX_KEY} characters, without NUL)")  # fmt: skip
        number = _finite(value)
        if number is None:
            raise InvalidInput(f"{field}[{key!r}]: expected a finite number a 64-bit float "
                               f"holds, got {_shown(value)}")  # fmt: skip
        found[key] = number
    return found


def _shown(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**1024:
        return "an integer beyond 1.8e308"  # and maybe beyond what repr() will write
    return f"{value!r:.60}"


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number a 64-bit float holds, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond 1.8e308
        return None
    return number if math.isfinite(number) else None
