"""The step cache never serves a stale result: a change to any value a step's code reads
re-runs it, and a value its key cannot follow is said, not passed over in silence.

Each case is a project as a user writes it: the pipeline runs, runs again (cached),
then a file is edited as a user would edit it, the project's modules are imported
afresh (as the next ``cairn run`` does) and the pipeline runs a third time: the step
must run again and return the new result.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.pipelines import canonical
from cairn.pipelines.executors import load
from cairn.pipelines.runner import CACHE_WARNING, PipelineResult
from cairn.sdk import run_pipeline, session

PIPELINE = """
import dataclasses, enum, functools, os
import config
from cairn import pipeline, step

{code}

@pipeline
def churn(x: float = 10.0):
    train(x)
"""


def plain_step(body: str, before: str = "") -> str:
    return f"{before}\n\n@step\ndef train(x: float):\n    {body}\n"


def lr_read(code: str) -> tuple[str, str, tuple[str, str, str]]:
    """A case where config.py holds ``LR = 0.1`` and the user makes it 0.2."""
    return "LR = 0.1", code, ("config", "LR = 0.1", "LR = 0.2")


def settings_read(code: str) -> tuple[str, str, tuple[str, str, str]]:
    """A case where pkg/settings.py holds ``LR = 0.1`` and the user makes it 0.2."""
    return "", code, ("pkg/settings", "LR = 0.1", "LR = 0.2")


class Project:
    """A project folder whose modules are imported from scratch for each run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, name: str, text: str) -> None:
        path = self.folder / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.folder / f"{name}.py"
        text = path.read_text()
        assert old in text, f"{old!r} is not in {name}.py"
        path.write_text(text.replace(old, new))

    def forget(self) -> None:
        """Unload the modules written for the test (the project's, and a sibling folder's):
        the next import reads the files again."""
        around = str(self.folder.parent)
        for name, module in list(sys.modules.items()):
            # Read from the module's namespace: a module with a ``__getattr__`` (torch's
            # ``torch.classes``) answers any attribute, ``__path__`` included.
            namespace = getattr(module, "__dict__", {})
            places = [namespace.get("__file__") or "", *(namespace.get("__path__") or [])]
            if any(isinstance(place, str) and place.startswith(around) for place in places):
                del sys.modules[name]
        importlib.invalidate_caches()

    def run(self) -> PipelineResult:
        self.forget()
        flow = importlib.import_module("flow")
        return run_pipeline(flow.churn.build(), root=self.folder)

    def outcome(self) -> tuple[str, Any]:
        """How the step ``train`` went in a new run, and what it returned."""
        done = self.run().step("train")
        assert done.output is not None
        value = load(session().artifacts, done.output)
        return done.state, round(value, 6) if isinstance(value, float) else value


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    folder = tmp_path / "project"
    folder.mkdir()
    # A folder beside the project on sys.path, as an editable install of a team's library
    # (or a .pth file) puts it: its code is no installed distribution's.
    monkeypatch.syspath_prepend(str(tmp_path / "shared"))
    monkeypatch.syspath_prepend(str(folder))
    # Edits within one second keep a file's size and mtime: no bytecode cache to go stale.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    made = Project(folder)
    yield made
    made.forget()


# A callable object of the project: functools.update_wrapper sets its __wrapped__.
SCALED = """
import functools

class Scaled:
    def __init__(self, function, factor):
        functools.update_wrapper(self, function)
        self.factor = factor

    def __call__(self, v):
        return self.__wrapped__(v) * self.factor

def raw(v):
    return v

SCALE = Scaled(raw, {factor})
"""

# name → (config.py, the step's code in flow.py, the edit: file, old, new)
CHANGES: dict[str, tuple[str, str, tuple[str, str, str]]] = {
    "a constant read through a local module (config.LR)": lr_read(
        plain_step("return x * config.LR")
    ),
    "a constant imported from a local module (from config import LR)": lr_read(
        plain_step("return x * LR", before="from config import LR")
    ),
    "a module-level dict (config.SETTINGS['lr'])": (
        'SETTINGS = {"lr": 0.1, "depth": 3}',
        plain_step('return x * config.SETTINGS["lr"]'),
        ("config", '"lr": 0.1', '"lr": 0.2'),
    ),
    "a module-level dict imported by name": (
        'SETTINGS = {"lr": 0.1}',
        plain_step('return x * SETTINGS["lr"]', before="from config import SETTINGS"),
        ("config", '"lr": 0.1', '"lr": 0.2'),
    ),
    "a module-level list": (
        "LAYERS = [0.1, 3]",
        plain_step("return x * config.LAYERS[0]"),
        ("config", "[0.1, 3]", "[0.2, 3]"),
    ),
    "a nested structure of dicts, lists and tuples": (
        'SETTINGS = {"optimizer": {"schedule": [(0, 0.1)]}}',
        plain_step('return x * config.SETTINGS["optimizer"]["schedule"][0][1]'),
        ("config", "(0, 0.1)", "(0, 0.2)"),
    ),
    "a set": (
        'NAMES = {"a", "b"}',
        plain_step("return x * len(config.NAMES) / 20"),
        ("config", '{"a", "b"}', '{"a", "b", "c", "d"}'),
    ),
    "a default argument bound to a module constant": lr_read(
        plain_step(
            "return scale(x)", before="def scale(v, factor=config.LR):\n    return v * factor"
        )
    ),
    "a keyword-only default bound to a module constant": lr_read(
        plain_step("return scale(x)", before="def scale(v, *, f=config.LR):\n    return v * f")
    ),
    "a functools.partial's bound keyword": lr_read(
        plain_step(
            "return scaled(x)",
            before="def scale(v, factor):\n    return v * factor\n\n"
            "scaled = functools.partial(scale, factor=config.LR)",
        )
    ),
    "a functools.partial's bound positional argument": lr_read(
        plain_step(
            "return scaled(x)",
            before="def scale(factor, v):\n    return v * factor\n\n"
            "scaled = functools.partial(scale, config.LR)",
        )
    ),
    "a closure's captured value": lr_read(
        plain_step(
            "return scale(x)",
            before="def make(factor):\n    def scale(v):\n        return v * factor\n"
            "    return scale\n\nscale = make(config.LR)",
        )
    ),
    "a step that is itself a closure": lr_read(
        "def make(factor):\n    @step\n    def train(x: float):\n        return x * factor\n"
        "    return train\n\ntrain = make(config.LR)\n"
    ),
    "a lambda": lr_read(plain_step("return scale(x)", before="scale = lambda v: v * config.LR")),
    "a decorator's argument (a decorator of the project)": (
        "N = 0.1",
        plain_step(
            "return scale(x)",
            before="def times(n):\n    def decorate(f):\n        @functools.wraps(f)\n"
            "        def wrapper(v):\n            return f(v) * n\n        return wrapper\n"
            "    return decorate\n\n@times(config.N)\ndef scale(v):\n    return v",
        ),
        ("config", "N = 0.1", "N = 0.2"),
    ),
    "a decorator's argument on the step itself": (
        "N = 0.1",
        "def times(n):\n    def decorate(f):\n        @functools.wraps(f)\n"
        "        def wrapper(x):\n            return f(x) * n\n        return wrapper\n"
        "    return decorate\n\n@step\n@times(config.N)\ndef train(x: float):\n    return x\n",
        ("config", "N = 0.1", "N = 0.2"),
    ),
    "a helper cached with functools.cache": lr_read(
        plain_step(
            "return x * factor()",
            before="@functools.cache\ndef factor():\n    return config.LR",
        )
    ),
    "a global reached through a called function of another module": (
        'SETTINGS = {"lr": 0.1}',
        plain_step("return helpers.scale(x)", before="import helpers"),
        ("config", '"lr": 0.1', '"lr": 0.2'),
    ),
    "a class attribute": lr_read(
        plain_step("return x * Hyper.LR", before="class Hyper:\n    LR = config.LR")
    ),
    "an attribute inherited from a base class": lr_read(
        plain_step(
            "return x * Hyper.LR",
            before="class Base:\n    LR = config.LR\n\nclass Hyper(Base):\n    pass",
        )
    ),
    "a method's default argument": lr_read(
        plain_step(
            "return Model().scale(x)",
            before="class Model:\n    def scale(self, v, factor=config.LR):\n"
            "        return v * factor",
        )
    ),
    "a property": lr_read(
        plain_step(
            "return x * Hyper().lr",
            before="class Hyper:\n    @property\n    def lr(self):\n        return config.LR",
        )
    ),
    "a dataclass field's default": lr_read(
        plain_step(
            "return x * Params().lr",
            before="@dataclasses.dataclass\nclass Params:\n    lr: float = config.LR",
        )
    ),
    "a dataclass field's default factory": lr_read(
        plain_step(
            "return x * Params().lr[0]",
            before="@dataclasses.dataclass\nclass Params:\n"
            "    lr: list = dataclasses.field(default_factory=lambda: [config.LR])",
        )
    ),
    "an enum member's value": lr_read(
        plain_step(
            "return x * Rate.SLOW.value",
            before="class Rate(enum.Enum):\n    SLOW = config.LR\n    FAST = 1.0",
        )
    ),
    "an instance of a project class": (
        "class Hyper:\n    def __init__(self, lr):\n        self.lr = lr\n\nHYPER = Hyper(0.1)",
        plain_step("return x * config.HYPER.lr"),
        ("config", "Hyper(0.1)", "Hyper(0.2)"),
    ),
    "a global rebound by a function with a global statement": (
        "LR = None\n\ndef configure(value):\n    global LR\n    LR = value\n\nconfigure(0.1)",
        plain_step("return x * config.LR"),
        ("config", "configure(0.1)", "configure(0.2)"),
    ),
    "a NumPy array": (
        "import numpy as np\nWEIGHTS = np.array([0.1, 0.5])",
        plain_step("return float(x * config.WEIGHTS[0])"),
        ("config", "[0.1, 0.5]", "[0.2, 0.5]"),
    ),
    "a constant of a module inside a package (pkg.settings.LR)": settings_read(
        plain_step("return x * pkg.settings.LR", before="import pkg.settings")
    ),
    "a module imported in the step's body (import pkg.settings)": settings_read(
        plain_step("import pkg.settings\n\n    return x * pkg.settings.LR")
    ),
    "a constant imported in the step's body (from pkg.settings import LR)": settings_read(
        plain_step("from pkg.settings import LR\n\n    return x * LR")
    ),
    "a helper imported in the step's body": (
        "",
        plain_step("from tools import scale\n\n    return scale(x)"),
        ("tools", "0.1", "0.2"),
    ),
    "an import in a function nested in the step's body": settings_read(
        plain_step(
            "def rate():\n        from pkg.settings import LR\n\n        return LR\n\n"
            "    return x * rate()"
        ),
    ),
    "a relative import in the body of a helper of a package": settings_read(
        plain_step("return x * rate()", before="from pkg.tools import rate")
    ),
    "a module in a folder beside the project on sys.path (an editable install)": (
        "",
        plain_step("return x * team_lib.rate()", before="import team_lib"),
        ("../shared/team_lib", "0.1", "0.2"),
    ),
    "a constant of a module in a namespace package (no __init__.py)": (
        "",
        plain_step("return x * nspkg.settings.LR", before="import nspkg.settings"),
        ("nspkg/settings", "LR = 0.1", "LR = 0.2"),
    ),
    "a helper made to look like an installed function (functools.wraps)": (
        "",
        plain_step(
            "return x * rate()",
            before="import math\n\n@functools.wraps(math.floor)\ndef rate():\n    return 0.1",
        ),
        ("flow", "return 0.1", "return 0.2"),
    ),
    "a callable object's own state (a wrapper with __wrapped__)": (
        SCALED.format(factor="0.1"),
        plain_step("return config.SCALE(x)"),
        ("config", "Scaled(raw, 0.1)", "Scaled(raw, 0.2)"),
    ),
    "the code of a callable object's class": (
        SCALED.format(factor="0.1"),
        plain_step("return config.SCALE(x)"),
        ("config", "* self.factor", "* self.factor * 2"),
    ),
    "a method made by exec": (
        "class Model:\n    pass\n\nexec('def scale(self, v):\\n    return v * 0.1', globals())\n"
        "Model.scale = scale\ndel scale",
        plain_step("return config.Model().scale(x)"),
        ("config", "v * 0.1", "v * 0.2"),
    ),
    "a function made by exec in a namespace of its own": (
        "made = {}\nexec('def scale(v):\\n    return v * 0.1', made)\nscale = made['scale']",
        plain_step("return config.scale(x)"),
        ("config", "v * 0.1", "v * 0.2"),
    ),
    "a constant read through the module's __dict__": lr_read(
        plain_step("return x * config.__dict__['LR']")
    ),
    "a constant read through vars(module)": lr_read(plain_step("return x * vars(config)['LR']")),
    "a constant read by getattr, its name written out": lr_read(
        plain_step("return x * getattr(config, 'LR')")
    ),
    "a module imported by importlib.import_module, its name written out": settings_read(
        plain_step("import importlib\n\n    return x * importlib.import_module('pkg.settings').LR")
    ),
}


@pytest.mark.parametrize("case", list(CHANGES))
def test_a_changed_value_the_step_reads_runs_it_again(project: Project, case: str) -> None:
    config, code, (file, old, new) = CHANGES[case]
    project.write("config", config)
    project.write(
        "helpers", "import config\n\ndef scale(v):\n    return v * config.SETTINGS['lr']\n"
    )
    project.write("pkg/__init__", "")
    project.write("pkg/settings", "LR = 0.1\n")
    project.write("pkg/tools", "def rate():\n    from .settings import LR\n\n    return LR\n")
    project.write("nspkg/settings", "LR = 0.1\n")
    project.write("tools", "def scale(v):\n    return v * 0.1\n")
    project.write("../shared/team_lib", "def rate():\n    return 0.1\n")
    project.write("flow", PIPELINE.format(code=code))
    assert project.outcome() == ("ran", 1.0)
    assert project.outcome() == ("cached", 1.0)  # nothing changed: the key is stable
    project.edit(file, old, new)
    assert project.outcome() == ("ran", 2.0)


@pytest.fixture
def library_settings() -> Iterator[None]:
    """Decimal's context and NumPy's print options are the process's: put them back."""
    import decimal

    import numpy as np

    context, printing = decimal.getcontext().copy(), np.get_printoptions()
    yield
    decimal.setcontext(context)
    np.set_printoptions(**printing)


# name → (effects.py, where it is imported, the step's code, the edit, outputs before/after)
EFFECTS: dict[str, tuple[str, str, str, tuple[str, str], tuple[Any, Any]]] = {
    "decimal's precision, set by a module the pipeline imports for its effects": (
        "import decimal\n\ndecimal.getcontext().prec = 1\n",
        "flow",
        "return float(decimal.Decimal(x) / decimal.Decimal(8))",
        ("prec = 1", "prec = 2"),
        (1.0, 1.2),
    ),
    "NumPy's print options, set by a module that config.py imports for its effects": (
        "import numpy as np\n\nnp.set_printoptions(precision=1)\n",
        "config",
        "return str(np.array([x / 3]))",
        ("precision=1", "precision=3"),
        ("[3.3]", "[3.333]"),
    ),
}


@pytest.mark.parametrize("case", list(EFFECTS))
@pytest.mark.usefixtures("library_settings")
def test_a_module_imported_for_its_effects_is_part_of_the_key(project: Project, case: str) -> None:
    """``import effects  # noqa: F401``: what importing it sets (a library's settings) is
    what the step computes with, though no code names the module again."""
    effects, importer, code, (old, new), (before, after) = EFFECTS[case]
    project.write("effects", effects)
    project.write(
        "config", "LR = 0.1\n" + ("import effects  # noqa: F401\n" * (importer == "config"))
    )
    imports = "import decimal\nimport numpy as np\n" + "import effects  # noqa: F401\n" * (
        importer == "flow"
    )
    project.write("flow", PIPELINE.format(code=plain_step(code + " or config.LR", before=imports)))
    assert project.outcome() == ("ran", before)
    assert project.outcome() == ("cached", before)
    project.edit("effects", old, new)
    assert project.outcome() == ("ran", after)


def test_a_module_the_step_imports_that_cannot_be_imported_yet_is_named(
    project: Project,
) -> None:
    """A module that imports only once the step has prepared for it: when the key is
    computed, what it defines cannot be read, and every run says so."""
    project.write("config", "READY = False\n")
    project.write(
        "late", "import config\n\nif not config.READY:\n    raise RuntimeError('not ready')\n"
    )
    project.write(
        "flow",
        PIPELINE.format(
            code=plain_step("config.READY = True\n    import late  # noqa: F401\n\n    return x")
        ),
    )
    for state in ("ran", "cached"):
        done = project.run().step("train")
        assert done.state == state
        assert (
            "flow.train imports late, which could not be imported (RuntimeError: not ready): "
            "what it defines is not part of the cache key"
        ) in done.warning


# name → (config.py, the step's code, what the warning must say)
UNFOLLOWED: dict[str, tuple[str, str, str]] = {
    "an object of a type the key does not know": (
        "import array\nWEIGHTS = array.array('d', [0.1])",
        plain_step("return x * config.WEIGHTS[0]"),
        "the value of config.WEIGHTS (a array.array) is not part of the cache key",
    ),
    "environment variables": (
        "",
        plain_step("return x * float(os.environ.get('RATE', '0.1'))"),
        "the environment variables flow.train reads are not part of the cache key",
    ),
    "environment variables read with getenv, by a helper": (
        "from os import getenv\n\ndef rate():\n    return float(getenv('RATE', '0.1'))",
        plain_step("return x * config.rate()"),
        "the environment variables config.rate reads are not part of the cache key",
    ),
    "a file the step opens": (
        "",
        plain_step("with open('rate.txt') as f:\n        return x * float(f.read())"),
        "the files flow.train opens with open() are not part of the cache key",
    ),
    "a value with too many items": (
        "BIG = list(range(200_000))",
        plain_step("return x * 0.1 * (len(config.BIG) > 0)"),
        "the value of config.BIG has more than 100000 items: it was not followed",
    ),
    "an array too large to hash": (
        "import numpy as np\nWEIGHTS = np.full(1000, 0.1)",
        plain_step("return float(x * config.WEIGHTS[0])"),
        "the value of config.WEIGHTS (8000 bytes) is too large to follow and is not part",
    ),
}


@pytest.mark.parametrize("case", list(UNFOLLOWED))
def test_a_value_the_key_cannot_follow_is_named_on_every_run(
    project: Project, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(canonical, "MAX_BYTES", 4096)  # a large array, without the memory
    config, code, expected = UNFOLLOWED[case]
    project.write("config", config)
    project.write("flow", PIPELINE.format(code=code))
    (project.folder / "rate.txt").write_text("0.1")
    monkeypatch.chdir(project.folder)
    for state in ("ran", "cached"):
        result = project.run()
        done = result.step("train")
        assert done.state == state
        assert done.warning.startswith("step train: ")
        assert expected in done.warning
        assert result.warnings.count(done.warning) == 1  # once for the step
        [recorded] = cairn.search_runs(
            experiment="churn", filter=f"attributes.run_id = '{done.run_id}'"
        )
        assert expected in recorded.tags[CACHE_WARNING]


def test_a_step_that_reads_only_what_the_key_follows_has_no_warning(project: Project) -> None:
    project.write("config", "LR = 0.1\nSETTINGS = {'layers': [1, 2]}\n")
    project.write("flow", PIPELINE.format(code=plain_step("return x * config.LR")))
    result = project.run()
    assert result.step("train").warning == ""
    assert result.warnings == []
