"""The :class:`~cairn.core.ports.Releases` over a Cairn server's REST API: what ``cairn
envs``, ``promote``, ``approve``, ``rollback`` and ``cairn.releases`` use when
``CAIRN_URI`` is set. The server gathers the evidence and decides."""

from __future__ import annotations

from cairn.client.operations import OperationClient
from cairn.core.release_api import OPERATIONS


class HttpReleases(OperationClient):
    operations = OPERATIONS
