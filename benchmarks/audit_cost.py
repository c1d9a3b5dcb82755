"""What the audit trail costs metric ingest: the same client against two Cairn servers.

    .venv/bin/python benchmarks/audit_cost.py --baseline 9dce5d9     # about 3 minutes

One server runs this checkout's code (every batch appends an audit event in its
transaction); the other runs ``--baseline``, a commit from before the audit trail, checked
out into a temporary git worktree and run with the same interpreter and packages. The
client is this checkout's SDK in both cases, as in benchmarks/tracking.py's ingest
measurement: 1,000,000 points through ``log_metric`` and ``flush()``, timed from the first
call to the return of ``flush()``. Rounds alternate after a warm-up of each, the order
turning each round (benchmarks/_method.py). The target: the audited server keeps at least
90% of the baseline's rate.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _method import Spread, alternate, machine, ratios, source_state, verdict
from tracking import (
    CAIRN_PYTHON,
    CAIRN_START_TIMEOUT,
    CAIRN_WORKER,
    ROOT,
    WORK,
    Server,
    Tool,
    admin_token,
    free_port,
    worker_env,
)

TARGET_KEPT = 0.90  # the audited rate over the baseline's, at least


def start_server(name: str, source: Path, work: Path, authenticated: bool) -> Server:
    """The server of ``source``; with authentication (this checkout's, as by default, and
    a baseline's when it has accounts too) its client presents a token."""
    port = free_port()
    (work / name).mkdir(parents=True)
    db_url = f"sqlite:///{work / name / 'cairn.db'}"
    token = admin_token(db_url) if authenticated else ""
    env = worker_env({"PYTHONPATH": str(source / "src"), "CAIRN_HOME": str(work / name)})
    command = [
        str(CAIRN_PYTHON),
        "-m",
        "cairn.server.launch",
        "--db",
        db_url,
        "--artifacts",
        str(work / name / "artifacts"),
        "--port",
        str(port),
    ]
    server = Server(name, command, f"http://127.0.0.1:{port}/health", env, work)
    server.token = token
    server.start(CAIRN_START_TIMEOUT)
    server.settle()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a commit without the audit trail")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument(
        "--authenticated-baseline",
        action="store_true",
        help="the baseline has accounts and tokens too (any commit since they came): its "
        "client presents a token and leaves the run's user to it",
    )
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="audit-cost-", dir=WORK))
    baseline_tree = work / "baseline-src"
    git = ["git", "-C", str(ROOT)]
    subprocess.run(
        [*git, "worktree", "add", "--detach", str(baseline_tree), args.baseline],
        check=True,
        capture_output=True,
    )
    servers: list[Server] = []
    try:
        for name, source in (("baseline", baseline_tree), ("audited", ROOT)):
            authenticated = source == ROOT or args.authenticated_baseline
            servers.append(start_server(name, source, work, authenticated))
        tools = {
            s.name: Tool(
                s.name,
                CAIRN_PYTHON,
                CAIRN_WORKER,
                worker_env(
                    {
                        "CAIRN_URI": s.health.removesuffix("/health"),
                        "CAIRN_TOKEN": s.token,
                        "CAIRN_HOME": str(work / f"{s.name}-client"),
                    }
                ),
            )
            for s in servers
        }

        def step(name: str) -> Callable[[int], dict[str, Any]]:
            named = name == "baseline" and not args.authenticated_baseline
            return lambda _index: tools[name].run(
                "ingest", 600, points=args.points, name_user=named
            )

        results = alternate(
            [("baseline", step("baseline")), ("audited", step("audited"))], args.rounds, "ingest"
        )
    finally:
        for server in servers:
            server.stop()
        subprocess.run([*git, "worktree", "remove", "--force", str(baseline_tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    rates = {name: [r["points_per_s"] for r in runs] for name, runs in results.items()}
    for name, runs in results.items():
        assert all(r["stored_first_key"] == r["expected_first_key"] for r in runs), name
    kept = ratios(rates["audited"], rates["baseline"])
    print(
        f"\nCairn ingest through the server, {args.points:,} points a round, "
        f"medians of {args.rounds} rounds after a warm-up (range), the order turning each round"
    )
    print(f"{machine(WORK)}")
    print(f"source: {source_state()} (audited) against {args.baseline} (baseline)")
    for name in ("baseline", "audited"):
        print(f"  {name:9} {Spread.of(rates[name]).show(',.0f')} points/s")
    met = kept.median >= TARGET_KEPT
    print(
        f"audited / baseline: {kept.show('.1%')} kept (target ≥ {TARGET_KEPT:.0%}: {verdict(met)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
