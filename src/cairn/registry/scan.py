"""Scanning pickle-based files for what they would import when loaded.

Loading a pickle calls whatever callables it names: ``os.system`` as easily as a
scikit-learn estimator's class. Before a package is registered, each of its pickle-based
files is read at the opcode level (by picklescan, which follows every protocol, memo
references and PyTorch's zip archives) and each global it names is judged:

- named dangerous by picklescan (``os.*``, ``builtins.eval``, ``subprocess.*`` …): flagged;
- one of the few functions model pickles are rebuilt with (NumPy's array and random-state
  reconstructors, ``copyreg._reconstructor`` …), or a plain container: fine;
- a class of the libraries models are made of (scikit-learn, XGBoost, LightGBM, NumPy,
  SciPy's sparse matrices, pandas' core, PyTorch's tensors), outside the parts of them
  that load or compile code (``torch.jit``, ``torch.hub`` …): fine;
- anything else — every other function, whatever its module (``numpy.savetxt`` writes a
  file as surely as ``os.system`` runs one): flagged, as outside the allow-list.

A flagged package is registered with its findings, shown with the version, and loads only
with an explicit ``trust=True``. Nothing in a file is run to scan it.
"""

from __future__ import annotations

import re
from pathlib import Path

from picklescan.scanner import SafetyLevel, scan_file_path

# Functions (and lowercase types) a model's pickle is rebuilt with: each only builds a value.
ALLOWED_GLOBALS = frozenset(
    {"copyreg._reconstructor", "copyreg.__newobj__", "_codecs.encode",
     "numpy.dtype", "numpy.ndarray",
     "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
     "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
     "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
     "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__bit_generator_ctor",
     "numpy.random._pickle.__generator_ctor",
     "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
     "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"}
)  # fmt: skip
# Modules whose classes a model's pickle may name (a class, rebuilt, holds state).
ALLOWED_CLASS_MODULES = (
    "sklearn", "xgboost", "lightgbm", "numpy", "scipy.sparse", "pandas.core", "pandas._libs",
    "torch", "joblib.numpy_pickle", "collections", "datetime", "decimal", "uuid",
)  # fmt: skip
ALLOWED_BUILTINS = frozenset(
    {"bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
     "object", "range", "set", "slice", "str", "tuple"}
)  # fmt: skip
# Parts of those libraries whose classes load, compile or fetch code.
DENIED_MODULES = ("torch.jit", "torch.hub", "torch.serialization", "torch._inductor",
                  "torch.utils", "torch.package", "numpy.lib.npyio", "numpy.f2py",
                  "numpy.testing")  # fmt: skip
_SPARSE = re.compile(r"^_?(csr|csc|coo|bsr|dia|dok|lil)_(matrix|array)$")


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
    if f"{module}.{name}" in ALLOWED_GLOBALS:
        return True
    is_class = name[:1].isupper() or (module.startswith("scipy.sparse") and _SPARSE.match(name))
    return (
        bool(is_class)
        and _within(module, ALLOWED_CLASS_MODULES)
        and not _within(module, DENIED_MODULES)
    )


def _within(module: str, modules: tuple[str, ...]) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in modules)
