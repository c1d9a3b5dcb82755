"""Payload logging: what a served model was asked and answered, kept for monitoring.

Each answered request (or a sampled share, ``--log-sample``) is handed to a bounded buffer
without waiting; a background thread gathers them and, every ``flush_seconds`` or
``flush_rows`` requests, writes each model version's as one Parquet file — request id,
time, inputs and outputs (as JSON text) — to the artifact store and indexes it in the model
registry (``log_traffic``), so a window of a model's traffic is one indexed query
(``read_window``). When the log cannot keep up, the buffer being full, a request is
dropped and counted, never waited for.
"""

from __future__ import annotations

import io
import logging
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cairn.core.limits import INT64_MAX
from cairn.core.model import TrafficBatch
from cairn.serving.tensors import as_list

if TYPE_CHECKING:
    from cairn.core.ports import ArtifactStore, ModelRegistry

logger = logging.getLogger(__name__)
_LOOK = 1.0  # seconds between the writer's looks at what is pending


@dataclass(frozen=True, slots=True)
class Logged:
    """One answered request, as it is logged."""

    model: str
    version: int
    request_id: str
    at: int  # milliseconds since the epoch
    inputs: Any
    outputs: Any


Counted = Callable[[str, str, int], None]  # (model, "logged" or "dropped", how many)


class PayloadLog:
    def __init__(
        self,
        registry: ModelRegistry,
        artifacts: ArtifactStore,
        sample: float = 1.0,
        flush_seconds: float = 30.0,
        flush_rows: int = 10_000,
        capacity: int = 100_000,
        counted: Counted | None = None,
    ) -> None:
        self._registry, self._artifacts = registry, artifacts
        self._sample, self._flush_seconds, self._flush_rows = sample, flush_seconds, flush_rows
        self._capacity = capacity
        # A deque, not a queue.Queue: appending takes no lock and wakes no thread, so a
        # request pays a fraction of a microsecond; the writer looks every _LOOK seconds,
        # and is woken only when a batch is full or the log closes.
        self._pending: deque[Logged] = deque()
        self._wake, self._closing = threading.Event(), False
        self._counted = counted or (lambda model, outcome, count: None)
        self._thread = threading.Thread(target=self._run, name="cairn-payload-log", daemon=True)
        self._thread.start()

    def record(self, model: str, version: int, request_id: str, inputs: Any, outputs: Any) -> None:
        """Log one answered request, or drop and count it; never waits."""
        if self._sample < 1.0 and random.random() >= self._sample:  # noqa: S311  # sampling
            return
        pending = len(self._pending)
        if pending >= self._capacity or self._closing:
            self._counted(model, "dropped", 1)
            return
        self._pending.append(Logged(model, version, request_id, int(time.time() * 1000),
                                    inputs, outputs))  # fmt: skip
        if pending + 1 == self._flush_rows:
            self._wake.set()

    def close(self) -> None:
        """Write what is gathered, and stop."""
        self._closing = True
        self._wake.set()
        self._thread.join(60)

    def _run(self) -> None:
        closes = time.monotonic() + self._flush_seconds
        while True:
            closing = self._closing
            due = time.monotonic() >= closes
            while len(self._pending) >= self._flush_rows or (self._pending and (due or closing)):
                self._write(self._take(self._flush_rows))
            if due:
                closes = time.monotonic() + self._flush_seconds
            if closing:
                return
            self._wake.wait(min(_LOOK, max(closes - time.monotonic(), 0.001)))
            self._wake.clear()

    def _take(self, most: int) -> list[Logged]:
        taken: list[Logged] = []
        while self._pending and len(taken) < most:
            taken.append(self._pending.popleft())
        return taken

    def _write(self, gathered: list[Logged]) -> None:
        by_version: dict[tuple[str, int], list[Logged]] = {}
        for item in gathered:
            by_version.setdefault((item.model, item.version), []).append(item)
        for (model, version), items in by_version.items():
            try:
                self._write_batch(model, version, items)
                self._counted(model, "logged", len(items))
            except Exception:  # the store out of reach, a refusal: counted, the server goes on
                logger.exception("could not log %d requests to %s/%d", len(items), model,
                                 version)  # fmt: skip
                self._counted(model, "dropped", len(items))

    def _write_batch(self, model: str, version: int, items: list[Logged]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "request_id": [i.request_id for i in items],
            "at": pa.array([i.at for i in items], pa.int64()),
            "inputs": [_json(i.inputs) for i in items],
            "outputs": [_json(i.outputs) for i in items],
        })  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="cairn-payloads-") as folder:
            path = Path(folder) / "traffic.parquet"
            pq.write_table(table, path, compression="zstd")
            stored = self._artifacts.put_file(path)
        first, last = min(i.at for i in items), max(i.at for i in items)
        self._registry.log_traffic(TrafficBatch(model, version, first, last, len(items),
                                                stored.digest))  # fmt: skip


def _json(value: Any) -> str:
    """A model's input or output as JSON text: a table as its rows (column by name), a
    dict of arrays as a dict of lists, anything else as lists."""
    if hasattr(value, "columns") and hasattr(value, "to_dict"):  # a pandas DataFrame
        value = value.to_dict(orient="records")
    try:  # orjson writes a NumPy array itself, without making a list of it first
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:  # a dtype it does not write, or an array not contiguous
        if isinstance(value, dict):
            value = {str(k): as_list(v) for k, v in value.items()}
        return orjson.dumps(as_list(value), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def read_window(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    model: str,
    since: int = 0,
    until: int = INT64_MAX,
) -> Iterator[dict[str, Any]]:
    """Each logged request of ``model`` received in the window (milliseconds since the
    epoch), oldest batch first: its version, request id, time, inputs and outputs."""
    import pyarrow.parquet as pq

    for batch in registry.traffic(model, since, until):
        with artifacts.open(batch.digest) as chunks:
            table = pq.read_table(io.BytesIO(b"".join(chunks)))
        for row in table.to_pylist():
            if since <= row["at"] <= until:
                yield {"version": batch.version, "request_id": row["request_id"],
                       "at": row["at"], "inputs": orjson.loads(row["inputs"]),
                       "outputs": orjson.loads(row["outputs"])}  # fmt: skip
