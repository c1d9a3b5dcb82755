"""The platform the CLI works on: the SDK's, opened once from the configuration."""

from __future__ import annotations

from cairn.sdk import platform

__all__ = ["platform"]
