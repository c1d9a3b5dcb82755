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
from cairn.sdk import platform, run_pipeline

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
        """Unload the project's modules: the next import reads the files again."""
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if file.startswith(str(self.folder)):
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
        value = load(platform().artifacts, done.output)
        return done.state, round(value, 6) if isinstance(value, float) else value


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    # Edits within one second keep a file's size and mtime: no bytecode cache to go stale.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    made = Project(folder)
    yield made
    made.forget()


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
    "a constant of a module inside a package (pkg.settings.LR)": (
        "",
        plain_step("return x * pkg.settings.LR", before="import pkg.settings"),
        ("pkg/settings", "LR = 0.1", "LR = 0.2"),
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
    project.write("flow", PIPELINE.format(code=code))
    assert project.outcome() == ("ran", 1.0)
    assert project.outcome() == ("cached", 1.0)  # nothing changed: the key is stable
    project.edit(file, old, new)
    assert project.outcome() == ("ran", 2.0)


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
