"""The figures of a model's performance measured on labelled traffic
(``cairn.monitoring.performance``) that a monitor's ``degraded_when`` and a canary gate
name, and whether more of each is better."""

from __future__ import annotations

HIGHER_IS_BETTER = {"accuracy": True, "precision": True, "recall": True, "f1": True,
                    "roc_auc": True, "mae": False, "rmse": False}  # fmt: skip
