"""Pipelines declared in ``cairn.yaml``: steps that are a Python function, a shell
command (like DVC's stages) or a Jupyter notebook (``cairn.pipelines.notebooks``).

    pipelines:
      prepare:
        params: {rows: 100}
        steps:
          extract:
            cmd: python extract.py --rows ${rows}
            deps: [extract.py, data/raw.csv]
            outs: [data/clean.csv]
          train:
            python: train:fit              # module:function, called with its params
            params: {lr: 0.1, source: data/clean.csv}
            after: [extract]               # runs after extract (its outputs are not passed)
          score:
            python: train:score
            inputs: {model: train}         # the output of train, as the argument model

``${name}`` in a command or a string parameter is the pipeline parameter ``name``. The
order of the steps comes from ``after``, ``inputs``, and files: a step that depends on a
file another step outputs runs after it. A cycle is an error that names it.

A command step's cache key is its command (parameters filled in) and the digests of its
``deps`` (files or folders) as they are when it is about to run; its ``outs`` are stored
in the artifact store, and a cache hit puts them back where they belong if they are
missing or different. A command that exits non-zero fails the step with its output's
tail; a declared output it did not write is an error naming it.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cairn.core.artifact import ArtifactEntry, check_digest, clean_artifact_path
from cairn.data.fence import Fence
from cairn.errors import IntegrityError, InvalidInput
from cairn.localfs.digest import digest_of, hash_file, hasher
from cairn.pipelines import notebooks
from cairn.pipelines.definition import (
    Output,
    Pipeline,
    Step,
    running_artifacts,
    running_store,
)
from cairn.pipelines.loading import import_target

_PARAM = re.compile(r"\$\{([A-Za-z_]\w*)\}")
_KINDS = ("python", "cmd", "notebook")
_SHOWN_OUTPUT = 2000  # characters of a failed command's output kept in the error


def declared_pipeline(name: str, spec: Any, root: Path, where: str) -> Pipeline:
    """The pipeline ``spec`` (a ``cairn.yaml`` mapping) declares.

    Raises:
        InvalidInput: a malformed spec, naming the step and the field; a cycle.
        NotFound: a ``python:`` target that cannot be imported.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), dict) or not spec["steps"]:
        raise InvalidInput(f"{where}: pipeline {name!r}: expected 'steps', a mapping of steps")
    defaults = spec.get("params") or {}
    if not isinstance(defaults, dict):
        raise InvalidInput(f"{where}: pipeline {name!r}: 'params' must be a mapping")
    steps = {
        step_name: _DeclaredStep(name, step_name, body, root, where)
        for step_name, body in spec["steps"].items()
    }
    order = _order(name, steps, where)

    def body(**params: Any) -> None:
        made: dict[str, Output] = {}
        for step_name in order:
            made[step_name] = steps[step_name].call(params, made)

    body.__name__ = body.__qualname__ = name
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
            for k, v in defaults.items()
        ]
    )
    made = Pipeline(body)
    made.target = name  # found again by its name in cairn.yaml
    return made


class _DeclaredStep:
    def __init__(self, pipeline: str, name: str, body: Any, root: Path, where: str) -> None:
        self.name, self.root = name, root
        what = f"{where}: pipeline {pipeline!r}, step {name!r}"
        if not isinstance(body, dict):
            raise InvalidInput(f"{what}: expected a mapping with one of {', '.join(_KINDS)}")
        kinds = [k for k in _KINDS if k in body]
        if len(kinds) != 1:
            raise InvalidInput(f"{what}: expected exactly one of {', '.join(_KINDS)}")
        self.kind = kinds[0]
        self.params = _mapping(body, "params", what)
        self.inputs = {k: str(v) for k, v in _mapping(body, "inputs", what).items()}
        self.after = [str(s) for s in _list(body, "after", what)]
        self.deps = [str(p) for p in _list(body, "deps", what)]
        self.outs = [str(p) for p in _list(body, "outs", what)]
        self.needs: set[str] = set()  # the steps it runs after (set once all are known)
        if self.kind == "python":
            self.step = _python_step(_python_target(body["python"], root, what), self)
        elif self.kind == "notebook":
            self.notebook = root / str(body["notebook"])
            if not self.notebook.is_file():
                raise InvalidInput(f"{what}: notebook {body['notebook']} does not exist")
            notebooks.check_parameters_cell(self.notebook, self.params, what)
            self.step = _notebook_step(self)
        else:
            self.command = str(body["cmd"])
            self.step = _command_step(name, self)

    def upstream(self, producers: dict[str, str]) -> set[str]:
        found = set(self.after) | set(self.inputs.values())
        for dep in self.deps:
            for out, producer in producers.items():
                if (
                    dep == out
                    or dep.startswith(f"{out.rstrip('/')}/")
                    or out.startswith(f"{dep.rstrip('/')}/")
                ):
                    found.add(producer)
        found.discard(self.name)
        return found

    def call(self, params: dict[str, Any], made: dict[str, Output]) -> Output:
        values = {k: _filled(v, params) for k, v in self.params.items()}
        if self.kind == "cmd":
            values = {"command": _filled(self.command, params)}
        inputs = {arg: made[step] for arg, step in self.inputs.items()}
        after = {f"after_{s}": made[s] for s in sorted(self.needs - set(self.inputs.values()))}
        output: Output = self.step(**values, **inputs, **after)
        return output


def _order(pipeline: str, steps: dict[str, _DeclaredStep], where: str) -> list[str]:
    """The steps in an order where each comes after what it needs (Kahn's algorithm).

    Raises:
        InvalidInput: a step names one that does not exist, or the steps form a cycle.
    """
    producers = {out: s.name for s in steps.values() for out in s.outs}
    needs = {name: step.upstream(producers) for name, step in steps.items()}
    for name, upstream in needs.items():
        for other in sorted(upstream - set(steps)):
            raise InvalidInput(f"{where}: pipeline {pipeline!r}, step {name!r}: no step {other!r}")
        steps[name].needs = upstream
    order: list[str] = []
    ready = [n for n in steps if not needs[n]]
    while ready:
        current = ready.pop(0)
        order.append(current)
        for name in steps:
            if name not in order and name not in ready and needs[name] <= set(order):
                ready.append(name)
    if len(order) < len(steps):
        raise InvalidInput(
            f"{where}: pipeline {pipeline!r}: the steps form a cycle: {_cycle(needs, order)}"
        )
    return order


def _cycle(needs: dict[str, set[str]], done: list[str]) -> str:
    start = next(n for n in needs if n not in done)
    path = [start]
    while True:
        following = sorted(needs[path[-1]] - set(done))[0]
        if following in path:
            loop = [*path[path.index(following) :], following]
            return " → ".join(reversed(loop))
        path.append(following)


def _python_target(target: Any, root: Path, what: str) -> Step[..., Any]:
    found = import_target(str(target), root, f"{what}: python {target!r}")
    if isinstance(found, Step):
        return found
    if not callable(found):
        raise InvalidInput(f"{what}: python {target!r} is not a function")
    return Step(found)


def _command_step(name: str, declared: _DeclaredStep) -> Step[..., Any]:
    root, outs = declared.root, declared.outs

    def run_command(command: str, **_after: Any) -> dict[str, Any]:
        # A command the project declares, run by the shell as DVC runs its stages.
        done = subprocess.run(  # noqa: S602
            command, shell=True, cwd=root, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-_SHOWN_OUTPUT:].strip()
            raise RuntimeError(f"the command exited with {done.returncode}: {command}\n{tail}")
        return {"outs": _store_outs(root, outs, name)}

    run_command.__name__ = run_command.__qualname__ = name
    step: Step[..., Any] = Step(run_command)
    step.code = "cmd/1"  # the command itself is a parameter of the step
    step.key_parts = lambda: {"deps": _digests(root, declared.deps, name)}
    step.on_cached = lambda value, artifacts: _restore_outs(declared, value, artifacts)
    return step


def _notebook_step(declared: _DeclaredStep) -> Step[..., Any]:
    root, name, path = declared.root, declared.name, declared.notebook

    def run_notebook(**arguments: Any) -> dict[str, Any]:
        params = {k: v for k, v in arguments.items() if not k.startswith("after_")}
        with tempfile.TemporaryDirectory(prefix="cairn-notebook-") as folder:
            executed = Path(folder) / path.name
            try:
                notebooks.execute(path, params, root, executed)
            finally:
                if executed.exists():  # kept whether it ran through or not
                    _keep_artifact(f"notebook/{path.name}", executed)
        return {"outs": _store_outs(root, declared.outs, name)}

    run_notebook.__name__ = run_notebook.__qualname__ = name
    step: Step[..., Any] = Step(run_notebook)
    step.code = "notebook/1"  # the notebook's cells are in the key (key_parts)
    step.key_parts = lambda: {
        "notebook": notebooks.source_digest(path),
        "deps": _digests(root, declared.deps, name),
    }
    step.on_cached = lambda value, artifacts: _restore_outs(declared, value, artifacts)
    return step


def _keep_artifact(path: str, local: Path) -> None:
    artifacts, kept = running_store.get(), running_artifacts.get()
    assert artifacts is not None  # the runner sets both around every step
    assert kept is not None
    info = artifacts.put_file(local)
    kept.append(ArtifactEntry(path, info.digest, info.size))


def _python_step(step: Step[..., Any], declared: _DeclaredStep) -> Step[..., Any]:
    """A Python function as a declared step: it also takes the ``after`` steps' outputs
    (only to run after them), and its ``deps`` and ``outs`` are handled as a command's."""
    root, name = declared.root, declared.name
    inner = step.function

    def run(**arguments: Any) -> Any:
        kept = {k: v for k, v in arguments.items() if not k.startswith("after_")}
        value = inner(**kept)
        if declared.outs:
            _store_outs(root, declared.outs, name)
        return value

    parameters = list(inspect.signature(inner).parameters.values())
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        parameters.append(inspect.Parameter("after", inspect.Parameter.VAR_KEYWORD))
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = name
    wrapped: Step[..., Any] = Step(run, step.retries, step.backoff)
    wrapped.origin = inner  # its code is the user's function, not this wrapper
    wrapped.key_parts = lambda: {"deps": _digests(root, declared.deps, name)}
    return wrapped


def _digests(root: Path, paths: list[str], step: str) -> dict[str, str]:
    found = {}
    for path in paths:
        full = root / path
        if not full.exists():
            raise InvalidInput(f"step {step}: its dependency {path} does not exist")
        found[path] = _path_digest(full)
    return found


def _path_digest(path: Path) -> str:
    if path.is_file():
        return hash_file(path)
    state = hasher()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        state.update(f"{file.relative_to(path).as_posix()}\0{hash_file(file)}\n".encode())
    return digest_of(state)


def _store_outs(root: Path, outs: list[str], step: str) -> dict[str, str]:
    artifacts = running_store.get()
    assert artifacts is not None  # the runner sets it around every step
    stored: dict[str, str] = {}
    for out in outs:
        full = root / out
        if not full.exists():
            raise FileNotFoundError(f"step {step} did not write its declared output {out}")
        files = [full] if full.is_file() else sorted(p for p in full.rglob("*") if p.is_file())
        for file in files:
            stored[file.relative_to(root).as_posix()] = artifacts.put_file(file).digest
    return stored


def _restore_outs(declared: _DeclaredStep, value: Any, artifacts: Any) -> None:
    """Write back the files of a cached run's declared outputs. The cached value is a
    record anyone who may write in the experiment could have made: only files of the
    outputs the step declares are written, each a clean path inside the project, into
    folders that lead nowhere else (no link out, no Python environment, no ``.git``).

    Raises:
        IntegrityError: the cached value names a file the step does not declare, or a
            path no output may have.
    """
    root, outs = declared.root, declared.outs
    recorded = value.get("outs") if isinstance(value, dict) else None
    files = _restored_files(recorded if isinstance(recorded, dict) else {}, outs, declared.name)
    project = str(root)
    Fence(project, project, "declare outputs inside the project").check(
        {os.path.dirname(os.path.join(project, relative)) for relative in files}
    )
    for relative, digest in files.items():
        target = root / relative
        if not target.is_file() or hash_file(target) != digest:
            artifacts.get_file(digest, target)


def _restored_files(recorded: dict[Any, Any], outs: list[str], step: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for relative, digest in recorded.items():
        try:
            if clean_artifact_path(str(relative), "outs") != relative:
                raise InvalidInput("not a clean relative path")
            if not any(_is_within(relative, out) for out in outs):
                raise InvalidInput(f"not under a declared output ({', '.join(outs) or 'none'})")
            files[relative] = check_digest(digest)
        except InvalidInput as exc:
            raise IntegrityError(
                f"step {step}: the cached run lists {str(relative)[:200]!r}, which it may "
                f"not write ({exc.message}); run the step again with --force"
            ) from None
    return files


def _is_within(relative: str, out: str) -> bool:
    out = out.strip("/")
    return relative == out or relative.startswith(f"{out}/")


def _filled(value: Any, params: dict[str, Any]) -> Any:
    """``${name}`` replaced by the pipeline parameter; a value that is only ``${name}``
    takes the parameter's own type."""
    if not isinstance(value, str):
        return value
    whole = _PARAM.fullmatch(value)
    if whole is not None and whole.group(1) in params:
        return params[whole.group(1)]

    def one(found: re.Match[str]) -> str:
        if found.group(1) not in params:
            raise InvalidInput(f"${{{found.group(1)}}}: the pipeline has no such parameter")
        return str(params[found.group(1)])

    return _PARAM.sub(one, value)


def _mapping(body: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what}: {key!r} must be a mapping")
    return value


def _list(body: dict[str, Any], key: str, what: str) -> list[Any]:
    value = body.get(key) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidInput(f"{what}: {key!r} must be a list")
    return value
