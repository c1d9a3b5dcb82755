"""The error tree: every error Cairn raises on purpose is in ``cairn.errors``, in the one
table the server and the HTTP client share, and drawn where the tree is drawn."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cairn.errors
from cairn.errors import ERRORS_BY_CODE, CairnError, StepFailed, error_from_code

SOURCE = Path(cairn.errors.__file__).resolve().parent


def test_every_error_class_cairn_defines_lives_in_the_errors_module() -> None:
    """An error class defined elsewhere is missing from the table until its module happens
    to be imported: the server would answer with its code and the client not know it."""
    known = {cls.__name__ for cls in ERRORS_BY_CODE.values()}
    elsewhere = []
    for path in SOURCE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SOURCE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & known:
                    elsewhere.append(f"{path.relative_to(SOURCE)}: {node.name}")
    assert elsewhere == []


def test_a_step_failure_reported_by_a_server_is_raised_again_as_itself() -> None:
    again = error_from_code(StepFailed.code, "step train failed: ValueError: boom")
    assert type(again) is StepFailed
    assert again.message == "step train failed: ValueError: boom"


def test_the_tree_in_the_docstring_draws_every_error_under_its_parent() -> None:
    drawn: dict[str, tuple[str, str]] = {}  # name → (parent, built-in in parentheses)
    parents: list[str] = []
    for line in (cairn.errors.__doc__ or "").splitlines():
        found = re.match(r"^ {4}([│ ]*)(?:[├└]── )?([A-Z]\w+)(?: \((\w+)\))?", line)
        if found is None or not re.search(r"CairnError|──", line):
            continue
        depth = len(found.group(1)) // 4 + (1 if "──" in line else 0)
        del parents[depth:]
        drawn[found.group(2)] = (parents[-1] if parents else "", found.group(3) or "")
        parents.append(found.group(2))
    expected = {
        cls.__name__: (
            cls.__bases__[0].__name__ if cls is not CairnError else "",
            next((b.__name__ for b in cls.__bases__[1:]), ""),
        )
        for cls in ERRORS_BY_CODE.values()
    }
    assert drawn == expected
