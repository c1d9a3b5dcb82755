"""The SQLite planner's statistics, kept fresh as runs are added.

SQLite plans a search well only with table statistics, and only exact ones: a sampled
ANALYZE misjudges how many runs a metric key has and keeps the slow plan. A full ANALYZE
costs ~90 ms on 10,000 runs, so it runs only when the statistics are missing or the runs
have doubled since they were taken (checked at open and every N new runs). PostgreSQL's
autovacuum keeps its statistics itself.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, inspect, select

from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import read_connection, write_transaction

_STATISTICS_FROM_RUNS = 1_000


class PlannerStatistics:
    """Counts the runs this store adds; refreshes the statistics when they are due."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._runs_added = 0

    def runs_added(self, count: int) -> None:
        before = self._runs_added
        self._runs_added += count
        if self._runs_added // _STATISTICS_FROM_RUNS > before // _STATISTICS_FROM_RUNS:
            self.refresh()

    def refresh(self) -> None:
        if self.engine.dialect.name != "sqlite":
            return
        with read_connection(self.engine) as conn:
            runs = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
            analyzed = _analyzed_runs(conn)
        if runs >= _STATISTICS_FROM_RUNS and runs >= 2 * analyzed:
            with write_transaction(self.engine) as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit=0")  # exact, not sampled
                conn.exec_driver_sql("ANALYZE")


def _analyzed_runs(conn: Connection) -> int:
    """How many runs the stored SQLite statistics describe (0 when there are none)."""
    if not inspect(conn).has_table("sqlite_stat1"):
        return 0
    stat = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs'").scalar()
    return int(str(stat).split()[0]) if stat else 0
