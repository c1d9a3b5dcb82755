"""Recording a batch: the ingest endpoint (the hot path), a route of its own beside
tracking's table (``cairn.server.routes.tracking``), over the same service.

A batch of 100k points must not pay for 100k pydantic objects, so the body is parsed with
orjson and checked column by column (``codec.batch_from_dict``); the pydantic-free
schema below only documents it in OpenAPI. Parsing and the store call both run in a worker
thread, so neither a large body nor a SQLite write blocks the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cairn.core.codec import batch_from_dict
from cairn.core.limits import check_optional_text, check_params, check_tags
from cairn.errors import InvalidInput
from cairn.server.auth import AUTHENTICATED
from cairn.server.responses import parse_json_object
from cairn.server.routes._stores import Metadata
from cairn.tracking.metadata import MetadataService

router = APIRouter(prefix="/runs", tags=["metrics"])

_BATCH_FIELDS = ("metrics", "params", "tags", "batch_id")
MAX_BATCH_ID = 64  # what the store's column of batch ids holds
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_NUMBER = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}
_PACKED = {
    "type": "string",
    "format": "byte",
    "description": "packed: base64 of the column's little-endian 8-byte numbers "
    "(IEEE-754 doubles for values, int64 for steps and timestamps)",
}
_SERIES_SCHEMA = {
    "type": "object",
    "description": "One metric's points as parallel columns of equal length, in logged order; "
    "each column is a JSON array or packed.",
    "properties": {
        "values": {"anyOf": [{"type": "array", "items": _NUMBER}, _PACKED]},
        "steps": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, _PACKED]},
        "timestamps": {
            "anyOf": [{"type": "array", "items": {"type": "integer"}}, _PACKED],
            "description": "milliseconds since the epoch",
        },
    },
    "required": ["values", "steps", "timestamps"],
}
_METRICS_SCHEMA = {
    "type": "object",
    "description": "Each metric key mapped to its series.",
    "additionalProperties": _SERIES_SCHEMA,
}
_BATCH_SCHEMA = {
    "type": "object",
    "properties": {
        "metrics": _METRICS_SCHEMA,
        "params": _STRING_MAP,
        "tags": _STRING_MAP,
        "batch_id": {
            "type": ["string", "null"],
            "maxLength": MAX_BATCH_ID,
            "description": "A batch sent again with the same id is ignored (safe retries).",
        },
    },
    "additionalProperties": False,
}
_BATCH_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _BATCH_SCHEMA}},
    }
}


@router.post(
    "/{run_id}/batch", status_code=204, openapi_extra=_BATCH_OPENAPI, dependencies=[AUTHENTICATED]
)
async def log_batch(run_id: str, request: Request, metadata: Metadata) -> Response:
    """Record metrics, params and tags in one transaction: all or nothing. Any valid token
    reaches it; the store decides the write for the caller inside its transaction."""
    body = await request.body()
    await run_in_threadpool(_log_batch, metadata, run_id, body)
    return Response(status_code=204)


def _log_batch(metadata: MetadataService, run_id: str, body: bytes) -> None:
    batch = parse_json_object(body)
    unknown = sorted(set(batch) - set(_BATCH_FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown field; expected {', '.join(_BATCH_FIELDS)}")
    metadata.log_batch(
        run_id,
        metrics=batch_from_dict(batch.get("metrics") or {}),
        params=check_params(_string_map(batch.get("params"), "params")),
        tags=check_tags(_string_map(batch.get("tags"), "tags")),
        batch_id=check_optional_text(batch.get("batch_id"), "batch_id", MAX_BATCH_ID),
    )


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(f"{field}: expected an object whose values are strings")
    return value
