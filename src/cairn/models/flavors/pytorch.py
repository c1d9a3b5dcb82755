"""PyTorch modules: ``torch.export``, PyTorch's format for a model without its Python
class (TorchScript's successor), with the batch dimension left free — exported from the
input example, which is therefore required — loaded with ``torch.export.load`` on the CPU.
Predictions run without gradients and come back as NumPy arrays.

Loading an archive is not safe for one that was not made here: ``torch.export.load``
parses the symbolic shapes its program holds with ``sympy.sympify``, which evaluates them
as Python; unpickles with ``weights_only=False`` the weights and constants its configuration
marks ``use_pickle`` (and its sample inputs, where ``weights_only=True`` fails) and any
opaque constant with plain ``pickle``; loads an AOTInductor shared library it carries; and
resolves the program's call targets by name under ``torch``, ``operator`` and ``math``.
No scan of the archive covers all of that, so every PyTorch package is flagged: it loads
with ``trust=True`` only."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput
from cairn.models.flavors import Saved, unloadable

_FILE = "model.pt2"


class PyTorchFlavor:
    name = "pytorch"
    code_on_load: tuple[str, str] | None = (
        _FILE,
        "<torch.export: loading evaluates the archive's expressions and pickles>",
    )

    def detects(self, model: Any) -> bool:
        return any(
            f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module"
            for c in type(model).__mro__
        )

    def save(self, model: Any, folder: Path, files: Mapping[str, Path], example: Any) -> Saved:
        import torch

        if example is None:
            raise InvalidInput(
                "input_example: a PyTorch module is exported by running it once; pass an "
                "input it takes (a batch of a few rows)"
            )
        model.eval()
        free_batch = ({0: torch.export.Dim.DYNAMIC},)
        try:
            exported = torch.export.export(model, (_tensor(example),), dynamic_shapes=free_batch)
        except Exception as exc:  # noqa: BLE001  # torch raises many kinds; all mean one thing
            raise InvalidInput(
                f"model: the PyTorch module cannot be exported with torch.export ({exc}); wrap "
                "it in a custom Python model instead"
            ) from None
        torch.export.save(exported, str(folder / _FILE))
        return Saved((_FILE,), libraries=("torch",), details={"format": "torch.export"})

    def load(self, folder: Path, details: Mapping[str, Any], trust: bool = False) -> Any:
        """Raises:
        InvalidInput: the file is not an archive this PyTorch can load.
        """
        import torch

        logger = logging.getLogger("torch.export")
        level = logger.level
        logger.setLevel(logging.ERROR)  # it logs, as a traceback, what is raised below
        try:
            return torch.export.load(str(folder / _FILE)).module()
        except Exception as exc:  # noqa: BLE001  # torch raises many kinds; all mean one thing
            raise unloadable(_FILE, f"torch.export (PyTorch {torch.__version__})", exc) from None
        finally:
            logger.setLevel(level)

    def predict(self, model: Any, data: Any) -> Any:
        import torch

        with torch.no_grad():
            found = model(_tensor(data))
        return found.numpy() if hasattr(found, "numpy") else found


def _tensor(data: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(data, torch.Tensor):
        return data
    return torch.from_numpy(np.ascontiguousarray(np.asarray(data)))
