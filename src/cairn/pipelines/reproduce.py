"""``cairn reproduce RUN``: run a recorded pipeline run again from what it recorded, with
the cache off, and say whether each step's output came out the same.

What a pipeline run records is enough to do it: the pipeline (``cairn.pipeline.target``),
its parameters with their types (``cairn.pipeline.params``), the git commit it ran at,
the exact data version each step read (``cairn.step.data``: ``customers@latest`` then is
``customers@3`` now too), each step's output digest, and the environment
(``environment.json``). The code is the recorded commit's: when the work tree is at
another commit, or has uncommitted changes, the run happens in a temporary git worktree
of that commit, so the reproduction never depends on edits made since.

Each step's output is *identical* (same digest), *within tolerance* (both are dicts of
numbers, each pair within ``tolerance``, relative to the larger magnitude or absolute
below 1), or *different*. Values are compared for JSON and pickled outputs; a recorded
pickle is read only if ``cairn.pipelines.trust`` says it is safe to (your own run's, or
passing the registry's scan) — otherwise only its bytes are compared, and the detail says
why. Packages whose versions differ from the recorded environment are listed: they are
the usual reason for a difference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import CairnError, InvalidInput, InvalidState
from cairn.pipelines.executors import Stored, load, one_line
from cairn.pipelines.materialize import PICKLE
from cairn.pipelines.trust import Recorded, Vetting

IDENTICAL, WITHIN, DIFFERENT, MISSING = "identical", "within tolerance", "different", "missing"
_VALUE_FORMATS = ("json", PICKLE)  # whose values compare (as dicts of numbers)


@dataclass(frozen=True, slots=True)
class Compared:
    step: str
    recorded: str | None  # output digests
    reproduced: str | None
    verdict: str
    detail: str = ""


@dataclass
class Reproduction:
    original: str  # the run reproduced
    run_id: str  # the new run
    commit: str | None
    where: str  # "the work tree", or "a worktree of <commit>"
    steps: list[Compared] = field(default_factory=list)
    environment: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def reproduced(self) -> bool:
        return all(s.verdict in (IDENTICAL, WITHIN) for s in self.steps)


def compare(
    step: str,
    recorded: Recorded | None,
    reproduced: Stored | None,
    vetting: Vetting,
    tolerance: float,
) -> Compared:
    """Compare a recorded output with its reproduction; ``vetting`` says whether the
    recorded one may be read back (the reproduction's is this run's own)."""
    if recorded is None or reproduced is None:
        which = "the recorded run" if recorded is None else "the reproduction"
        return Compared(step, _digest(recorded), _digest(reproduced), MISSING,
                        f"{which} has no output for it")  # fmt: skip
    before = recorded.stored
    if before.digest == reproduced.digest:
        return Compared(step, before.digest, reproduced.digest, IDENTICAL)
    differ = Compared(
        step, before.digest, reproduced.digest, DIFFERENT, "the output's bytes differ"
    )
    if before.format != reproduced.format or before.format not in _VALUE_FORMATS:
        return differ
    recorded = vetting.scanned(recorded)
    if not recorded.stored.vetted:  # its bytes only: reading it would run code
        return dataclasses.replace(differ, detail=(
            f"the output's bytes differ; its values were not compared: the recorded output is "
            f"{recorded.refusal()}, and loading it would run code"
        ))  # fmt: skip
    return _compare_values(differ, recorded.stored, reproduced, vetting, tolerance)


def _compare_values(
    differ: Compared, before: Stored, after: Stored, vetting: Vetting, tolerance: float
) -> Compared:
    """Two outputs of differing bytes, by value: within tolerance, or different."""
    try:
        gaps = _numeric_gaps(load(vetting.artifacts, before), load(vetting.artifacts, after))
    except CairnError:
        raise  # the store's failure, not the value's
    except Exception as exc:  # noqa: BLE001  (a pickle's own objects failed to rebuild)
        return dataclasses.replace(differ, detail=(
            f"the output's bytes differ; its values could not be read back: {one_line(exc)}"
        ))  # fmt: skip
    if gaps is None:
        return differ
    worst = max(gaps.items(), key=lambda item: item[1], default=("", 0.0))
    verdict = WITHIN if worst[1] <= tolerance else DIFFERENT
    detail = f"largest difference: {worst[0]} by {worst[1]:.3g}" if worst[0] else ""
    return dataclasses.replace(differ, verdict=verdict, detail=detail)


def environment_changes(
    recorded: dict[str, str], now: dict[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Packages added, removed or at another version: name → (recorded, now)."""
    names = sorted(set(recorded) | set(now))
    return {n: (recorded.get(n), now.get(n)) for n in names if recorded.get(n) != now.get(n)}


@contextlib.contextmanager
def code_at(root: Path, commit: str | None, current: str | None, dirty: bool | None
            ) -> Iterator[tuple[Path, str]]:  # fmt: skip
    """The folder holding the code of ``commit``: the work tree if it is exactly there,
    else a temporary git worktree of it (removed afterwards).

    Raises:
        InvalidState: the commit cannot be checked out (not in this repository).
    """
    if commit is None or (commit == current and dirty is False):
        yield root, "the work tree"
        return
    folder = Path(tempfile.mkdtemp(prefix="cairn-reproduce-"))
    added = _git(root, "worktree", "add", "--detach", str(folder / "code"), commit)
    if added.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise InvalidState(
            f"cannot check out the recorded commit {commit[:12]} in {root}: "
            f"{added.stderr.strip() or 'git failed'}"
        )
    try:
        yield folder / "code", f"a worktree of {commit[:12]}"
    finally:
        _git(root, "worktree", "remove", "--force", str(folder / "code"))
        shutil.rmtree(folder, ignore_errors=True)


def _git(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *arguments], cwd=root, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(["git", *arguments], 1, "", str(exc))


def _numeric_gaps(before: Any, after: Any) -> dict[str, float] | None:
    """Per key, how far two dicts of numbers are apart (relative above 1, absolute
    below); None unless both are dicts of numbers with the same keys."""
    if not (isinstance(before, dict) and isinstance(after, dict)) or set(before) != set(after):
        return None
    gaps: dict[str, float] = {}
    for key, old in before.items():
        new = after[key]
        if old == new:
            gaps[key] = 0.0
            continue
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (old, new)):
            return None
        if not (math.isfinite(old) and math.isfinite(new)):
            return None
        gaps[key] = abs(old - new) / max(1.0, abs(old), abs(new))
    return gaps


def _digest(output: Recorded | Stored | None) -> str | None:
    if isinstance(output, Recorded):
        return output.stored.digest
    return output.digest if output is not None else None


def check_tolerance(tolerance: float) -> float:
    """Raises:
    InvalidInput: not a number of 0 or more.
    """
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidInput(f"--tolerance {tolerance}: expected a number of 0 or more")
    return tolerance
