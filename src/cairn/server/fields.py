"""The check of path and query parameters (body fields are typed in ``cairn.core.wire``):
bad input is refused the same way on every route, as a
400 ``INVALID_INPUT`` naming the field (``cairn.server.errors``), before any service sees it.
"""

from __future__ import annotations

from fastapi import Request

from cairn.core.limits import check_text


async def plain_parameters(request: Request) -> None:
    """Path and query parameters are storable text too (installed on the whole app).

    Raises:
        InvalidInput: naming the parameter.
    """
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if isinstance(value, str):
            check_text(value, name)
