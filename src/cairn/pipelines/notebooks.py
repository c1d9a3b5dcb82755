"""Running a Jupyter notebook as a step, with parameters, through nbclient.

Parameters go in as papermill does it: the cell tagged ``parameters`` holds the defaults,
and a new cell right after it (tagged ``injected-parameters``) assigns the step's values.
The executed notebook, outputs and all, is kept as an artifact of the step run, also when
a cell fails; the failure names the cell (its number in the notebook as written) and its
source. A kernel that dies (``os._exit``, a crash, out of memory) fails the step.

nbclient runs on a thread of its own: in the main thread it would take over SIGINT and
SIGTERM and answer them only by shutting the kernel down, so that Ctrl-C would fail one
step and let the run go on. Here an interrupt stays the runner's: the kernel is killed
and the interrupt goes on (the step run is recorded KILLED).
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput, MissingExtra
from cairn.localfs.digest import digest_of, hasher

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
TIMEOUT_S = 3600  # per cell


class CellFailed(RuntimeError):
    """A notebook cell raised: the message names the cell and shows its source."""


def source_digest(path: Path) -> str:
    """The digest of a notebook's cells as written (sources and kinds; outputs are not
    code, so re-saving a notebook with new outputs changes nothing).

    Raises:
        InvalidInput: the file is not a notebook.
    """
    notebook = _read(path)
    state = hasher()
    for cell in notebook.cells:
        state.update(f"{cell.cell_type}\0{cell.source}\n".encode())
    return digest_of(state)


def check_parameters_cell(path: Path, params: dict[str, Any], what: str) -> None:
    """Raises:
    InvalidInput: the step passes parameters and the notebook has no cell to put them after.
    """
    if params and _parameters_index(_read(path)) is None:
        raise InvalidInput(
            f"{what}: notebook {path.name} has no cell tagged {PARAMETERS_TAG!r} to put "
            "its parameters after (tag the cell that holds their defaults)"
        )


def execute(path: Path, params: dict[str, Any], cwd: Path, executed: Path) -> None:
    """Run the notebook with ``params`` in a fresh kernel, in ``cwd``; write what ran,
    with its outputs, to ``executed`` (also when a cell fails).

    Raises:
        CellFailed: a cell raised, or the kernel died.
    """
    nbformat, nbclient = _modules()
    notebook = _read(path)
    at = _parameters_index(notebook)
    if params:
        assert at is not None  # check_parameters_cell refused the notebook otherwise
        lines = [f"{name} = {value!r}" for name, value in params.items()]
        injected = nbformat.v4.new_code_cell("\n".join(lines))
        injected.metadata["tags"] = [INJECTED_TAG]
        notebook.cells.insert(at + 1, injected)
    # nbclient's own kernel manager (asynchronous: a synchronous one never notices a dead
    # kernel), which it shuts down however the execution ends; over local sockets (IPC),
    # not TCP: nothing listens on the network, and the kernel has nothing to warn about.
    from traitlets.config import Config

    config = Config({"KernelManager": {"transport": "ipc"}})
    where = {"metadata": {"path": str(cwd)}}
    client = nbclient.NotebookClient(
        notebook, timeout=TIMEOUT_S, kernel_name="python3", resources=where, config=config
    )
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="cairn-notebook") as thread:
            _wait(thread.submit(client.execute), client)
    except nbclient.exceptions.CellExecutionError as exc:
        raise CellFailed(_failure(notebook, at if params else None, exc)) from None
    except nbclient.exceptions.DeadKernelError:
        raise CellFailed("the kernel died (os._exit, a crash, or out of memory)") from None
    finally:
        nbformat.write(notebook, str(executed))


def _wait(execution: Any, client: Any) -> None:
    """The execution's end; interrupted (Ctrl-C, a signal), the kernel killed first, so that
    the execution ends too."""
    try:
        execution.result()
    except BaseException:
        if not execution.done():
            pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
            if pid is not None:  # the kernel leads a process group of its own
                os.killpg(pid, signal.SIGKILL)
        raise


def _failure(notebook: Any, injected_after: int | None, exc: Exception) -> str:
    for index, cell in enumerate(notebook.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            number = index + 1
            if injected_after is not None and index > injected_after + 1:
                number -= 1  # as the user numbers it, without the injected cell
            error = errors[0]
            return (
                f"cell {number} failed: {error.get('ename')}: {error.get('evalue')}\n{cell.source}"
            )
    return str(exc).strip().splitlines()[-1]


def _parameters_index(notebook: Any) -> int | None:
    for index, cell in enumerate(notebook.cells):
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index
    return None


def _read(path: Path) -> Any:
    nbformat, _ = _modules()
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"notebook {path}: cannot read it ({exc})") from exc


def _modules() -> tuple[Any, Any]:
    try:
        import nbclient
        import nbclient.exceptions
        import nbformat
    except ImportError as exc:
        raise MissingExtra(
            "notebook steps need nbclient and a kernel: pip install 'cairn-mlops[notebooks]'"
        ) from exc
    return nbformat, nbclient
