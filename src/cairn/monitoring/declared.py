"""Monitors declared in the project's ``cairn.yaml``, made by ``cairn monitor apply``:

monitors:
  churn-prod:
    model: churn@production
    reference: data/train.parquet      # the training data, relative to the project, or
                                       # the data version it was trained on: customers@3
    window: 1h                         # 90s, 15m, 1h, 7d
    features: [age, spend, plan]       # default: every column of the reference
    methods: {age: "psi:0.2"}          # a column's own drift method[:threshold]
    share: 0.5                         # the dataset drifts at this share of columns
    on_drift: retrain:retrain          # a pipeline of this cairn.yaml
    degraded_when: "accuracy < 0.85"   # realised on labels, or estimated before they come
    on_degradation: retrain:retrain
    alerts: [log, "webhook:https://hooks.example.com/ml"]   # signed: CAIRN_WEBHOOK_SECRET
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.config import CONFIG_FILE, read_config_document
from cairn.core.monitor import LOG, ColumnChoice
from cairn.errors import InvalidInput

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_KEYS = {"model", "reference", "window", "features", "methods", "share", "on_drift", "alerts",
         "degraded_when", "on_degradation"}  # fmt: skip


@dataclass(frozen=True)
class Declared:
    """One monitor as ``cairn.yaml`` declares it (the arguments of ``create``)."""

    name: str
    model: str
    reference: Path | str  # a file, or a data version (customers@3)
    window_seconds: int = 3600
    features: tuple[str, ...] = ()
    choices: dict[str, ColumnChoice] = field(default_factory=dict)
    share: float = 0.5
    on_drift: str | None = None
    alerts: tuple[str, ...] = (LOG,)
    degraded_when: str | None = None
    on_degradation: str | None = None


def parse_duration(text: str, where: str) -> int:
    """``90s``, ``15m``, ``1h``, ``7d`` as seconds.

    Raises:
        InvalidInput: naming ``where`` and the forms a duration takes.
    """
    found = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise InvalidInput(f"{where} {text!r}: expected a number and a unit, s, m, h or d "
                           "(90s, 15m, 1h, 7d)")  # fmt: skip
    return int(found.group(1)) * _SECONDS[found.group(2)]


def parse_choice(text: str, where: str) -> tuple[str, ColumnChoice]:
    """``COLUMN=METHOD[:THRESHOLD]``.

    Raises:
        InvalidInput: naming ``where`` and the form it takes.
    """
    column, _, said = text.partition("=") if isinstance(text, str) else ("", "", "")
    return column, _method(said, f"{where} {text!r}", column)


def _method(said: str, where: str, column: str) -> ColumnChoice:
    method, _, threshold = said.partition(":")
    try:
        value = float(threshold) if threshold else None
    except ValueError:
        method = ""
    if not column or not method:
        raise InvalidInput(f"{where}: expected COLUMN=METHOD or COLUMN=METHOD:THRESHOLD "
                           "(age=psi:0.2)")  # fmt: skip
    return ColumnChoice(method, value if threshold else None)


def declared_monitors(root: Path) -> list[Declared]:
    """The ``monitors`` section of the project's ``cairn.yaml``.

    Raises:
        InvalidInput: naming the monitor and key that is not as a monitor's must be.
    """
    path = root / CONFIG_FILE
    section = read_config_document(path).get("monitors") or {}
    if not isinstance(section, dict):
        raise InvalidInput(f"{path}: 'monitors' must map monitor names to their settings")
    return [_declared(str(name), found, root, f"{path}: monitors.{name}")
            for name, found in section.items()]  # fmt: skip


def _reference(given: str, root: Path) -> Path | str:
    """A file of the project, or a data version (``customers@3``) when no such file is."""
    path = root / given
    return given if "@" in given and not path.exists() else path


def _declared(name: str, found: Any, root: Path, where: str) -> Declared:
    if not isinstance(found, dict):
        raise InvalidInput(f"{where}: expected a mapping with model and reference")
    unknown = sorted(set(found) - _KEYS)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    for key in ("model", "reference"):
        if not isinstance(found.get(key), str):
            raise InvalidInput(f"{where}.{key}: expected text")
    features, alerts = found.get("features") or [], found.get("alerts") or [LOG]
    methods = found.get("methods") or {}
    if not isinstance(features, list) or not isinstance(alerts, list):
        raise InvalidInput(f"{where}: features and alerts must be lists")
    if not isinstance(methods, dict):
        raise InvalidInput(f"{where}.methods: expected a mapping of column to METHOD[:THRESHOLD]")
    share = found.get("share", 0.5)
    if not isinstance(share, int | float) or isinstance(share, bool):
        raise InvalidInput(f"{where}.share: expected a number")
    return Declared(
        name, found["model"], _reference(found["reference"], root),
        parse_duration(str(found.get("window", "1h")), f"{where}.window"),
        tuple(str(f) for f in features),
        {str(c): _method(str(m), f"{where}.methods.{c}", str(c)) for c, m in methods.items()},
        float(share), found.get("on_drift"), tuple(str(a) for a in alerts),
        found.get("degraded_when"), found.get("on_degradation"),
    )  # fmt: skip
