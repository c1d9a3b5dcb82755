"""The :class:`~cairn.core.ports.Monitors` over a Cairn server's REST API: what ``cairn
monitor`` and ``cairn.monitoring`` keep monitors and evaluations in when ``CAIRN_URI`` is
set."""

from __future__ import annotations

from cairn.client.operations import OperationClient
from cairn.core.monitor_api import OPERATIONS


class HttpMonitors(OperationClient):
    operations = OPERATIONS
