"""Loading a model runs no code of the file's choosing without ``trust=True``.

Each gadget below is a model file that runs code when loaded the ordinary way (the first
test proves it, in a process of its own): it creates a marker file. Registered as a
scikit-learn model, every one is flagged, refused by ``cairn.models.load`` without trust,
and creates nothing — neither while it is scanned nor while it is refused. The pickles are
written opcode by opcode, as an attacker writes them, not by ``pickle.dumps``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import cairn
import cairn.sdk
from cairn.core.identity import DEFAULT_PROJECT
from cairn.errors import UntrustedModel
from cairn.models.flavors import Saved
from cairn.models.package import package_from_files, scan_package
from cairn.models.service import stored_version
from cairn.models.stored import store_package

# --- A small pickle assembler (protocol 5 opcodes; protocol 0 where a gadget needs it). ---

PROTO, STOP, MARK, TUPLE, REDUCE, BUILD = b"\x80\x05", b".", b"(", b"t", b"R", b"b"
NEWOBJ, NONE, TRUE, FALSE, EMPTY_DICT, SETITEM = b"\x81", b"N", b"\x88", b"\x89", b"}", b"s"


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def raw(value: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(value)) + value


def number(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def named(module: str, name: str) -> bytes:
    """STACK_GLOBAL: protocol 4 and later resolve a dotted name attribute by attribute."""
    return text(module) + text(name) + b"\x93"


def items(*values: bytes) -> bytes:
    return MARK + b"".join(values) + TUPLE


def call(callee: bytes, *args: bytes) -> bytes:
    return callee + items(*args) + REDUCE


def mapping(values: dict[str, bytes]) -> bytes:
    return EMPTY_DICT + b"".join(text(k) + v + SETITEM for k, v in values.items())


def pickled(body: bytes) -> bytes:
    return PROTO + body + STOP


def _system(marker: Path) -> bytes:
    """``os.system("touch …")``: the plainest gadget, and the one nested inside others."""
    return pickled(call(named("os", "system"), text(f"touch {marker}")))


def _touch(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _os() -> bytes:
    return call(named("builtins", "__import__"), text("os"))


def _nested_npy(marker: Path) -> bytes:
    """``numpy.load`` of an object array, whose data after the header is a pickle."""
    path = marker.with_name("nested.npy")
    with path.open("wb") as out:
        header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
        np.lib.format.write_array_header_1_0(out, header)  # type: ignore[no-untyped-call]
        out.write(_system(marker))
    return pickled(call(named("numpy", "load"), text(str(path)), NONE, TRUE))


def _partial_restored_by_build(marker: Path) -> bytes:
    """A FunctionTransformer whose function is a partial of ``check_array`` — until BUILD
    restores the partial's state with ``numpy.savetxt`` in its place; predicting writes."""
    partial = call(named("functools", "partial"), named("sklearn.utils.validation", "check_array"))
    partial += items(named("numpy", "savetxt"), items(text(str(marker))), EMPTY_DICT, NONE) + BUILD
    cls = named("sklearn.preprocessing._function_transformer", "FunctionTransformer")
    state = {"func": partial, "inverse_func": NONE, "validate": FALSE, "accept_sparse": FALSE,
             "check_inverse": TRUE, "feature_names_out": NONE, "kw_args": NONE,
             "inv_kw_args": NONE, "n_features_in_": number(1)}  # fmt: skip
    return pickled(cls + items() + NEWOBJ + mapping(state) + BUILD)


def _class_patched_by_build(marker: Path) -> bytes:
    """Sets ``IdentityLink.inverse`` (what a regressor's predictions go through) to
    ``numpy.savetxt`` in the loading process."""
    cls = named("sklearn._loss.link", "IdentityLink")
    return pickled(cls + items(NONE, mapping({"inverse": named("numpy", "savetxt")})) + BUILD)


GADGETS: dict[str, Callable[[Path], bytes]] = {
    "os.system": _system,
    "builtins.eval": lambda m: pickled(call(named("builtins", "eval"), text(_touch(m)))),
    "builtins.exec": lambda m: pickled(call(named("builtins", "exec"), text(_touch(m)))),
    "a getattr chain": lambda m: pickled(
        call(call(named("builtins", "getattr"), _os(), text("system")), text(f"touch {m}"))
    ),
    "Python 2 names (protocol 0)": lambda m: (
        b"c__builtin__\neval\n(V" + _touch(m).encode() + b"\ntR."
    ),
    "the INST opcode": lambda m: b"(Vtouch " + str(m).encode() + b"\nios\nsystem\n.",
    "pandas' Expr, unpickling a second pickle": lambda m: pickled(
        call(
            named("pandas.core.computation.expr", "Expr"),
            text(f"pickle.loads({_system(m)!r})"),
            text("python"),
            text("pandas"),
            NONE,
            number(0),
        )
    ),
    "lightgbm.basic.NamedTemporaryFile (tempfile's)": lambda m: pickled(
        call(
            named("lightgbm.basic", "NamedTemporaryFile"),
            text("w"),
            number(-1),
            NONE,
            NONE,
            text(""),
            text(m.name),
            text(str(m.parent)),
            FALSE,
        )
    ),
    "numpy.testing's runstring": lambda m: pickled(
        call(named("numpy.testing._private.utils", "runstring"), text(_touch(m)), EMPTY_DICT)
    ),
    "numpy.load of a nested pickle": _nested_npy,
    "torch's loader of a nested pickle": lambda m: pickled(
        call(named("torch.storage", "_load_from_bytes"), raw(_system(m)))
    ),
    "a method of an allowed class (ndarray.tofile)": lambda m: pickled(
        call(
            named("numpy", "ndarray.tofile"),
            call(
                named("numpy._core.multiarray", "_reconstruct"),
                named("numpy", "ndarray"),
                items(number(0)),
                text("b"),
            ),
            text(str(m)),
        )
    ),
    "a scikit-learn function that runs a script": lambda m: pickled(
        call(
            named("sklearn.utils._testing", "assert_run_python_script_without_output"),
            text(_touch(m)),
        )
    ),
    "operator.methodcaller": lambda m: pickled(
        call(call(named("operator", "methodcaller"), text("system"), text(f"touch {m}")), _os())
    ),
    "operator.attrgetter": lambda m: pickled(
        call(call(call(named("operator", "attrgetter"), text("system")), _os()), text(f"touch {m}"))
    ),
    "functools.partial": lambda m: pickled(
        call(call(named("functools", "partial"), named("os", "system"), text(f"touch {m}")))
    ),
    "a partial's function restored by BUILD": _partial_restored_by_build,
    "copyreg._reconstructor with a dangerous base": lambda m: pickled(
        call(
            named("copyreg", "_reconstructor"),
            named("logging", "FileHandler"),
            named("logging", "FileHandler"),
            text(str(m)),
        )
    ),
    "a class patched by BUILD": _class_patched_by_build,
    "__setstate__ of the file's own class": lambda m: pickled(
        named(__name__, "Restores") + items() + NEWOBJ + text(str(m)) + BUILD
    ),
    "a library's __setstate__ that execs its state (scipy.stats)": lambda m: pickled(
        named("scipy.stats._continuous_distns", "norm_gen")
        + items()
        + NEWOBJ
        + mapping({"_parse_arg_template": text(_touch(m))})
        + BUILD
    ),
}


class Restores:
    """A class whose ``__setstate__`` runs code: the file names it, pickle calls it."""

    def __setstate__(self, state: str) -> None:
        Path(state).touch()


_TESTS = str(Path(__file__).parents[1])  # where this module is imported from, as a package


def _made(marker: Path) -> bool:
    """Whether the marker (or, for NamedTemporaryFile, a file named after it) exists."""
    return any(p.name.startswith(marker.name) for p in marker.parent.iterdir())


def _gadget(name: str, folder: Path) -> Path:
    """The gadget's marker, its model file written as ``folder/model.pkl``."""
    folder.mkdir(parents=True)
    marker = folder / "marker"
    (folder / "model.pkl").write_bytes(GADGETS[name](marker))
    return marker


# Loads each gadget as a trusted model loads, then uses what it made where using it is
# what runs the code (a transformer's transform; a patched class's method).
_RUNNER = """
import json, sys
from pathlib import Path
import numpy as np
from cairn.models.flavors import pickled

for folder, patches in json.load(sys.stdin):
    try:
        model = pickled.load(Path(folder))
        if hasattr(model, "transform"):
            model.transform(np.ones((1, 1)))
        if patches:
            from sklearn._loss.link import IdentityLink
            IdentityLink.inverse(str(Path(folder) / "marker"), np.ones(1))
    except Exception:
        pass
"""


@pytest.mark.slow
def test_every_gadget_runs_code_when_loaded_the_ordinary_way(tmp_path: Path) -> None:
    """Each gadget is real: unpickled (in a process of its own), it creates its marker."""
    if not shutil.which("touch"):
        pytest.skip("the gadgets' payload runs `touch`")
    markers = {name: _gadget(name, tmp_path / f"g{i}") for i, name in enumerate(GADGETS)}
    folders = [(str(m.parent), "patched" in name) for name, m in markers.items()]
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER], input=json.dumps(folders),
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([_TESTS, *sys.path])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [name for name, marker in markers.items() if not _made(marker)] == []


# The flavor and format a file registers as, by its name.
_REGISTERED_AS = {"model.pkl": ("sklearn", "pickle"), "model.skops": ("sklearn", "skops"),
                  "model.pt2": ("pytorch", "torch.export")}  # fmt: skip


def _register(folder: Path, name: str, model_file: str = "model.pkl") -> str:
    """Register the file as a model of its flavor, the way a server does: stored, then
    scanned from the stored bytes (``stored_version``)."""
    flavor, fmt = _REGISTERED_AS[model_file]
    pickles = (model_file,) if fmt == "pickle" else ()
    saved = Saved((model_file,), pickled=pickles, details={"format": fmt})
    package = package_from_files(folder, flavor, saved, [])
    models = cairn.sdk.models()
    store_package(package, models.artifacts)
    new = stored_version(models.artifacts, name, package.digest, None)
    return models.registry.register_version(new, DEFAULT_PROJECT).ref


@pytest.mark.parametrize("gadget", list(GADGETS))
def test_a_gadget_is_flagged_refused_and_runs_nothing(gadget: str, tmp_path: Path) -> None:
    marker = _gadget(gadget, tmp_path / "package")
    ref = _register(marker.parent, "gadget")
    version = cairn.models.get_version(ref)
    assert version.flagged, gadget
    with pytest.raises(UntrustedModel, match=r"gadget/1 is flagged: model\.pkl imports "):
        cairn.models.load(ref)
    assert not _made(marker)  # neither the scan nor the refusal ran it


def test_a_version_recorded_unflagged_is_scanned_again_when_loaded(tmp_path: Path) -> None:
    """A version an older Cairn registered with "no findings" (its scan missed the gadget)
    is judged again by this Cairn's scan before its bytes are loaded."""
    marker = _gadget("pandas' Expr, unpickling a second pickle", tmp_path / "package")
    saved = Saved(("model.pkl",), pickled=("model.pkl",), details={"format": "pickle"})
    package = package_from_files(marker.parent, "sklearn", saved, [])
    models = cairn.sdk.models()
    store_package(package, models.artifacts)
    recorded = replace(package, findings=()).version_of("old")  # what the old scan said
    models.registry.register_version(recorded, DEFAULT_PROJECT)
    assert not cairn.models.get_version("old/1").flagged
    with pytest.raises(UntrustedModel, match=r"old/1 is flagged: .*computation\.expr\.Expr"):
        cairn.models.load("old/1")
    assert not _made(marker)


def test_a_custom_model_is_flagged_even_when_its_pickle_names_only_allowed_classes(
    tmp_path: Path,
) -> None:
    """Loading a custom model runs its own code (``load_context``, ``predict``): it is
    flagged whatever its pickle names."""
    from sklearn.utils import Bunch

    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(Bunch(predict=None)))
    package = package_from_files(folder, "custom", Saved(("model.pkl",), ("model.pkl",)), [])
    assert [str(f) for f in scan_package(package)] == ["model.pkl imports code of a custom model"]


def test_the_scan_imports_no_module_outside_the_allowed_libraries(tmp_path: Path) -> None:
    """Verifying a name imports its module only inside the allowed libraries: a module
    whose import runs code is never imported by a scan."""
    marker = tmp_path / "imported"
    (tmp_path / "cairn_test_side_effect.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(
        pickled(named("cairn_test_side_effect", "Anything") + items() + NEWOBJ)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        ref = _register(folder, "importer")
    finally:
        sys.path.remove(str(tmp_path))
    assert cairn.models.get_version(ref).flagged
    assert not marker.exists()


def _skops_gadget(marker: Path) -> Path:
    """A scikit-learn model in skops' format, whose schema adds a node skops builds by
    calling its type with the file's arguments: ``os.system("touch …")``."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    path = marker.with_name("model.skops")
    skops.io.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    schema = json.loads(files["schema.json"])
    command = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
               "content": json.dumps(f"touch {marker}"), "is_json": True}  # fmt: skip
    arguments = {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                 "content": [command]}  # fmt: skip
    attributes = schema["content"]  # the estimator's __dict__: keys, their types, values
    attributes["key_types"]["content"].append(
        {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
    )
    attributes["content"]["evil"] = {
        "__class__": "system", "__module__": "os", "__loader__": "ConstructorFromReduceNode",
        "content": arguments,
    }  # fmt: skip
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _distribution_in_skops(marker: Path) -> Path:
    """A scikit-learn model in skops' format that holds a scipy.stats distribution whose
    argument-parser template — what its ``__setstate__`` execs — is the file's code."""
    import copy

    import scipy.stats
    import skops.io
    from sklearn.linear_model import LogisticRegression

    distribution = copy.deepcopy(scipy.stats.norm)
    distribution._parse_arg_template = _touch(marker)
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    model.prior_ = distribution  # an attribute an estimator may hold
    path = marker.with_name("model.skops")
    skops.io.dump(model, path)
    return path


SKOPS_GADGETS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "a schema calling os.system": (_skops_gadget, ("os.system",)),
    # skops trusts what it is told to: the class is scipy's own, and its __setstate__
    # (Python, not audited) execs a string of the file's.
    "a library class that execs its state (scipy.stats)": (
        _distribution_in_skops, ("scipy.stats._continuous_distns.norm_gen",)
    ),
}  # fmt: skip


@pytest.mark.parametrize("gadget", list(SKOPS_GADGETS))
def test_a_skops_gadget_is_flagged_refused_and_runs_nothing(gadget: str, tmp_path: Path) -> None:
    skops_io = pytest.importorskip("skops.io")
    write, flagged = SKOPS_GADGETS[gadget]
    folder = tmp_path / "package"
    folder.mkdir()
    marker = folder / "marker"
    path = write(marker)
    ref = _register(folder, "skopsed", model_file="model.skops")
    [finding] = cairn.models.get_version(ref).findings
    assert (finding.path, finding.imports) == ("model.skops", flagged)
    with pytest.raises(UntrustedModel, match=r"skopsed/1 is flagged: model\.skops imports "):
        cairn.models.load(ref)
    assert not marker.exists()
    with contextlib.suppress(Exception):  # what the gadget leaves undefined fails after
        skops_io.load(path, trusted=skops_io.get_untrusted_types(file=path))
    assert marker.exists()  # trusting it runs it


def _exported_members() -> dict[str, bytes]:
    """The members of a torch.export archive of a small module, batch dimension free, as
    Cairn's PyTorch flavor writes one."""
    torch = pytest.importorskip("torch")
    free_batch = ({0: torch.export.Dim.DYNAMIC},)
    exported = torch.export.export(torch.nn.Linear(2, 1), (torch.zeros(3, 2),),
                                   dynamic_shapes=free_batch)  # fmt: skip
    buffer = io.BytesIO()
    torch.export.save(exported, buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _member(members: dict[str, bytes], suffix: str) -> str:
    return next(name for name in members if name.endswith(suffix))


def _pickled_weight(marker: Path) -> dict[str, bytes]:
    """The bias marked ``use_pickle``: torch.export.load unpickles it with
    ``weights_only=False`` — and the file holds a pickle of ``os.system``."""
    members = _exported_members()
    config_name = _member(members, "data/weights/model_weights_config.json")
    config = json.loads(members[config_name])
    config["config"]["bias"]["use_pickle"] = True
    members[config_name] = json.dumps(config).encode()
    weight = config["config"]["bias"]["path_name"]
    members[_member(members, f"data/weights/{weight}")] = _system(marker)
    return members


def _evaluated_shape(marker: Path) -> dict[str, bytes]:
    """A symbolic shape of the program, which torch.export.load parses with
    ``sympy.sympify`` — an ``eval`` — rewritten to run a command first. No pickle."""
    members = _exported_members()
    program = _member(members, "models/model.json")
    document = members[program].decode()
    found = re.search(r'"expr_str": ("(?:[^"\\]|\\.)*")', document)
    assert found is not None, "the exported program has no symbolic shape"
    symbol = json.loads(found[1])
    evaluated = f"__import__('os').system('touch {marker}') + {symbol}"
    members[program] = document.replace(found[1], json.dumps(evaluated), 1).encode()
    return members


TORCH_GADGETS: dict[str, Callable[[Path], dict[str, bytes]]] = {
    "a weight marked use_pickle": _pickled_weight,
    "a symbolic shape sympy evaluates": _evaluated_shape,
}


def _torch_gadget(name: str, folder: Path) -> Path:
    """The gadget's marker, its archive written as ``folder/model.pt2``."""
    folder.mkdir(parents=True)
    marker = folder / "marker"
    with zipfile.ZipFile(folder / "model.pt2", "w") as archive:
        for member, data in TORCH_GADGETS[name](marker).items():
            archive.writestr(member, data)
    return marker


@pytest.mark.slow
def test_every_torch_gadget_runs_code_when_loaded_the_ordinary_way(tmp_path: Path) -> None:
    """Each archive is real: ``torch.export.load`` (in a process of its own) runs it."""
    if not shutil.which("touch"):
        pytest.skip("the gadgets' payload runs `touch`")
    markers = [_torch_gadget(name, tmp_path / f"t{i}") for i, name in enumerate(TORCH_GADGETS)]
    loads = "".join(
        f"try: torch.export.load({str(m.with_name('model.pt2'))!r})\nexcept Exception: pass\n"
        for m in markers
    )
    done = subprocess.run([sys.executable, "-c", f"import torch\n{loads}"], capture_output=True,
                          text=True, timeout=240, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [m.parent.name for m in markers if not m.exists()] == []


@pytest.mark.parametrize("gadget", list(TORCH_GADGETS))
def test_a_torch_gadget_is_flagged_refused_and_runs_nothing(gadget: str, tmp_path: Path) -> None:
    """No scan of an archive covers what torch.export.load runs: every PyTorch package is
    flagged, and loads only with trust."""
    marker = _torch_gadget(gadget, tmp_path / "package")
    ref = _register(marker.parent, "exported", model_file="model.pt2")
    [finding] = cairn.models.get_version(ref).findings
    assert finding.path == "model.pt2"
    with pytest.raises(UntrustedModel, match=r"exported/1 is flagged: model\.pt2 imports <torch"):
        cairn.models.load(ref)
    assert not marker.exists()
