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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from cairn.core.limits import INT64_MAX
from cairn.core.model import TrafficBatch
from cairn.serving.tensors import as_list

if TYPE_CHECKING:
    from cairn.core.ports import ArtifactStore, ModelRegistry

logger = logging.getLogger(__name__)
_LOOK = 1.0  # seconds between the writer's looks at what is pending


class Logged(NamedTuple):
    """One answered request, as it is logged (a tuple: made on every request, it must
    cost next to nothing)."""

    model: str
    version: int
    request_id: str
    at: int  # milliseconds since the epoch
    inputs: Any
    outputs: Any


Counted = Callable[[str, str, int], None]  # (model, "logged" or "dropped", how many)


@dataclass
class _Gathered:
    """One model version's requests, encoded, waiting to be written as one file."""

    request_ids: list[str] = field(default_factory=list)
    at: list[int] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def add(self, item: Logged) -> None:
        self.request_ids.append(item.request_id)
        self.at.append(item.at)
        self.inputs.append(_json(item.inputs))
        self.outputs.append(_json(item.outputs))


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
        # and is woken early only when many are pending or the log closes.
        self._pending: deque[Logged] = deque()
        self._gathered: dict[tuple[str, int], _Gathered] = {}
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
        _warm_parquet()  # before traffic comes, not in the middle of it
        closes = time.monotonic() + self._flush_seconds
        while True:
            closing = self._closing
            due = time.monotonic() >= closes
            # Encoded as they come, a look's worth at a time: the writer holds the
            # interpreter for a few milliseconds a second, never for a whole batch at once.
            self._encode_pending()
            for key in [k for k, rows in self._gathered.items()
                        if due or closing or len(rows.at) >= self._flush_rows]:  # fmt: skip
                self._write(key, self._gathered.pop(key))
            if due:
                closes = time.monotonic() + self._flush_seconds
            if closing:
                return
            self._wake.wait(min(_LOOK, max(closes - time.monotonic(), 0.001)))
            self._wake.clear()

    def _encode_pending(self) -> None:
        for _ in range(len(self._pending)):
            item = self._pending.popleft()
            key = (item.model, item.version)
            gathered = self._gathered.get(key)
            if gathered is None:
                gathered = self._gathered[key] = _Gathered()
            gathered.add(item)
            if len(gathered.at) >= self._flush_rows:
                self._write(key, self._gathered.pop(key))

    def _write(self, key: tuple[str, int], rows: _Gathered) -> None:
        model, version = key
        try:
            self._write_file(model, version, rows)
            self._counted(model, "logged", len(rows.at))
        except Exception:  # the store out of reach, a refusal: counted, the server goes on
            logger.exception("could not log %d requests to %s/%d", len(rows.at), model, version)
            self._counted(model, "dropped", len(rows.at))

    def _write_file(self, model: str, version: int, rows: _Gathered) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "request_id": pa.array(rows.request_ids, pa.string()),
            "at": pa.array(rows.at, pa.int64()),
            "inputs": pa.array(rows.inputs, pa.string()),
            "outputs": pa.array(rows.outputs, pa.string()),
        })  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="cairn-payloads-") as folder:
            path = Path(folder) / "traffic.parquet"
            pq.write_table(table, path, compression="zstd")
            stored = self._artifacts.put_file(path)
        self._registry.log_traffic(TrafficBatch(model, version, min(rows.at), max(rows.at),
                                                len(rows.at), stored.digest))  # fmt: skip


def _warm_parquet() -> None:
    """Import pyarrow and write one small table: its first table costs ~0.5 s of
    interpreter time on top of the import, which would otherwise stall the server's
    requests at the first batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"at": pa.array([0], pa.int64()), "text": ["warm"]}),
                   io.BytesIO(), compression="zstd")  # fmt: skip


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


def logged_batches(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    model: str,
    since: int = 0,
    until: int = INT64_MAX,
) -> Iterator[tuple[TrafficBatch, Any]]:
    """Each batch of ``model``'s traffic overlapping the window, oldest first, with its
    file read as a pyarrow table (every row of it: the caller keeps those in the window)."""
    import pyarrow.parquet as pq

    for batch in registry.traffic(model, since, until):
        with artifacts.open(batch.digest) as chunks:
            yield batch, pq.read_table(io.BytesIO(b"".join(chunks)))


def read_window(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    model: str,
    since: int = 0,
    until: int = INT64_MAX,
) -> Iterator[dict[str, Any]]:
    """Each logged request of ``model`` received in the window (milliseconds since the
    epoch), oldest batch first: its version, request id, time, inputs and outputs."""
    for batch, table in logged_batches(registry, artifacts, model, since, until):
        for row in table.to_pylist():
            if since <= row["at"] <= until:
                yield {"version": batch.version, "request_id": row["request_id"],
                       "at": row["at"], "inputs": orjson.loads(row["inputs"]),
                       "outputs": orjson.loads(row["outputs"])}  # fmt: skip
