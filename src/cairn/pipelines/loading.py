"""Finding a pipeline by what a user types: ``module:name``, ``path/to/file.py:name``, or
a name listed in ``cairn.yaml``:

    pipelines:
      churn: pipelines.churn:churn      # module:attribute, imported from the project folder
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import orjson

from cairn.config import CONFIG_FILE, read_config_document
from cairn.errors import InvalidInput, NotFound
from cairn.pipelines.definition import Pipeline


def declared(root: Path) -> dict[str, Any]:
    """The ``pipelines`` section of the project's cairn.yaml: name → ``module:attribute``,
    or the mapping that declares the pipeline's steps (``cairn.pipelines.declared``).

    Raises:
        InvalidInput: the section is not a mapping of names to either.
    """
    path = root / CONFIG_FILE
    section = read_config_document(path).get("pipelines") or {}
    if not isinstance(section, dict) or not all(
        isinstance(k, str) and (isinstance(v, dict) or (isinstance(v, str) and ":" in v))
        for k, v in section.items()
    ):
        raise InvalidInput(
            f"{path}: 'pipelines' must map names to 'module:attribute' (such as "
            "churn: pipelines.churn:churn) or to a mapping with 'steps'"
        )
    return dict(section)


def load_pipeline(target: str, root: Path) -> Pipeline:
    """The pipeline ``target`` names, imported with the project folder on ``sys.path``.

    Raises:
        NotFound: no such name, module, file or attribute.
        InvalidInput: what it names is not a pipeline; a malformed declaration.
    """
    known = declared(root)
    where = known.get(target, target)
    if isinstance(where, dict):
        from cairn.pipelines.declared import declared_pipeline

        return declared_pipeline(target, where, root, str(root / CONFIG_FILE))
    if ":" not in where:
        listed = ", ".join(sorted(known)) or "none in cairn.yaml"
        raise NotFound(
            f"pipeline {target!r}: expected a name from cairn.yaml ({listed}), "
            "module:name, or path/to/file.py:name"
        )
    found = import_target(where, root, f"pipeline {target!r}")
    if not isinstance(found, Pipeline):
        raise InvalidInput(
            f"pipeline {target!r}: {where} is a {type(found).__name__}, not a function "
            "decorated with @cairn.pipeline"
        )
    return found


def import_target(target: str, root: Path, what: str) -> Any:
    """What ``module:attribute`` or ``path/file.py:attribute`` names, imported with the
    project folder on ``sys.path``.

    Raises:
        NotFound: no such module, file or attribute (the message starts with ``what``).
    """
    module_name, colon, attribute = target.rpartition(":")
    if not colon or not module_name or not attribute:
        raise NotFound(f"{what}: expected module:name or path/to/file.py:name")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = _import(module_name, root, what)
    found = getattr(module, attribute, None)
    if found is None:
        raise NotFound(f"{what}: {module_name} has no {attribute!r}")
    return found


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["lr=0.05", "name=x"]`` → ``{"lr": 0.05, "name": "x"}``: a value that reads as
    JSON is that (numbers, true, lists …), anything else is a string.

    Raises:
        InvalidInput: a pair without ``=``.
    """
    found: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name.strip():
            raise InvalidInput(f"-p {pair!r}: expected NAME=VALUE, such as -p lr=0.05")
        try:
            found[name.strip()] = orjson.loads(text)
        except orjson.JSONDecodeError:
            found[name.strip()] = text
    return found


def _import(module_name: str, root: Path, what: str) -> Any:
    if module_name.endswith(".py"):
        path = (root / module_name).resolve()
        if not path.is_file():
            raise NotFound(f"{what}: no such file {module_name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None  # a .py file always has a spec and a loader
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # so that its functions' module can be found
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise NotFound(
                f"{what}: module {module_name!r} not found (looked in {root} and the "
                "installed packages)"
            ) from exc
        raise
