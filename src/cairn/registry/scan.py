"""Scanning pickle-based files for what they would import when loaded.

Loading a pickle calls whatever callables it names: ``os.system`` as easily as a
scikit-learn estimator's class. Before a package is registered, each of its pickle-based
files is read at the opcode level (by picklescan, which follows every protocol, memo
references and PyTorch's zip archives) and each global it names is judged:

- named dangerous by picklescan (``os.*``, ``builtins.eval``, ``subprocess.*`` …): flagged;
- a function whose name says it loads, executes or opens something (``pandas.read_pickle``,
  ``numpy.load``): flagged, whatever its module;
- in a module of the allow-list (the libraries whose objects models are made of): fine;
- anything else: flagged, as outside the allow-list.

A flagged package is registered with its findings, shown with the version, and loads only
with an explicit ``trust=True``. Nothing in a file is run to scan it.
"""

from __future__ import annotations

import re
from pathlib import Path

from picklescan.scanner import SafetyLevel, scan_file_path

# Modules whose globals a model's pickle may name: the libraries models are made of, and
# the standard library's plain containers.
ALLOWED_MODULES = (
    "sklearn", "numpy", "scipy", "pandas", "xgboost", "lightgbm", "torch", "joblib",
    "collections", "copyreg", "datetime", "decimal", "uuid", "_codecs", "pathlib",
)  # fmt: skip
ALLOWED_BUILTINS = frozenset(
    {"bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
     "object", "range", "set", "slice", "str", "tuple"}
)  # fmt: skip
_RISKY_NAME = re.compile(r"(^|[._])(load|loads|read_pickle|exec|eval|system|compile|open|run)")


def unsafe_imports(path: Path) -> tuple[str, ...]:
    """The globals the pickle-based file at ``path`` names that are not allowed, as
    ``module.name``, sorted; ``("<unreadable pickle>",)`` when it cannot be read."""
    result = scan_file_path(str(path))
    if result.scan_err:
        return ("<unreadable pickle>",)
    found = {
        f"{imported.module}.{imported.name}"
        for imported in result.globals
        if imported.safety is SafetyLevel.Dangerous or not allowed(imported.module, imported.name)
    }
    return tuple(sorted(found))


def allowed(module: str, name: str) -> bool:
    if module in ("builtins", "__builtin__"):
        return name in ALLOWED_BUILTINS
    if _RISKY_NAME.search(name):
        return False
    return any(module == m or module.startswith(f"{m}.") for m in ALLOWED_MODULES)
