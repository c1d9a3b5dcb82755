"""Steps and pipelines as users write them, and the graph a pipeline's body describes.

    @step
    def train(df, lr: float = 0.1): ...

    @pipeline
    def churn(lr: float = 0.1):
        df = load("customers@latest")
        train(df, lr=lr)

A pipeline's body runs once, when the pipeline is built, with a *build context* active:
inside it, calling a step runs nothing — it records a node and returns an ``Output``, a
placeholder for what the step will return, which later steps take as an argument. Every
other argument is a parameter of that step call and must be JSON (a number, a string, a
list …): it is part of the step's cache key, so a value that cannot be put in the key is
an error naming it, never silently left out. Outside a build context a step is the plain
function it wraps.

Running is not this module's: ``Pipeline.__call__`` hands the built graph to the runner
the SDK installs (``use_runner``), so that defining a pipeline needs no store.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from cairn.core.artifact import ArtifactEntry
from cairn.core.limits import finite
from cairn.core.ports import ArtifactStore
from cairn.errors import InvalidInput, InvalidState

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Output:
    """What a step call will return, as a later step's argument."""

    node: str  # the name of the step call that makes it

    def __repr__(self) -> str:
        return f"<output of {self.node}>"

    def __bool__(self) -> bool:
        raise InvalidState(
            f"the output of {self.node} is not known while the pipeline is built: a "
            "pipeline's body describes steps, it cannot branch on their results (branch "
            "inside a step instead)"
        )


@dataclass(frozen=True, slots=True)
class Node:
    """One step call in a pipeline."""

    name: str  # unique in its graph: the step's name, then name-2, name-3 …
    step: Step[..., Any]
    inputs: dict[str, str]  # argument → the node whose output it takes
    params: dict[str, Any]  # argument → a JSON value


@dataclass
class Graph:
    """The steps of one pipeline run, in the order they were called (a topological
    order: a step can only take outputs of steps called before it)."""

    pipeline: str
    params: dict[str, Any]
    nodes: dict[str, Node] = field(default_factory=dict)
    target: str = ""  # how to find the pipeline again (``cairn run TARGET``), if known

    def upstream(self, name: str) -> list[str]:
        return sorted(set(self.nodes[name].inputs.values()))

    def downstream(self, name: str) -> list[str]:
        return [n.name for n in self.nodes.values() if name in n.inputs.values()]


_building: contextvars.ContextVar[Graph | None] = contextvars.ContextVar("building", default=None)
# The artifact store of the run a step executes in, for steps that store files themselves,
# and the artifacts they want on their run (an executed notebook).
running_store: contextvars.ContextVar[ArtifactStore | None] = contextvars.ContextVar(
    "running_store", default=None
)
running_artifacts: contextvars.ContextVar[list[ArtifactEntry] | None] = contextvars.ContextVar(
    "running_artifacts", default=None
)


class Step(Generic[P, R]):
    """A function the runner caches, tracks and retries as one unit of a pipeline."""

    # Hooks for steps that are not plain Python functions (a shell command, a notebook):
    code: str | None = None  # their code fingerprint, given instead of walking a function
    origin: Any = None  # the function whose code identifies the step, if not ``function``
    key_parts: Callable[[], dict[str, Any]] | None = None  # more of the key (file digests)
    # Given the cached output and the artifact store: put the step's files back in place.
    on_cached: Callable[[Any, ArtifactStore], None] | None = None

    def __init__(
        self,
        function: Callable[P, R],
        retries: int = 0,
        backoff: float = 1.0,
        register: str | None = None,
    ) -> None:
        if retries < 0 or not finite(backoff) or backoff < 0:
            raise InvalidInput(
                f"step {function.__name__!r}: retries must be 0 or more and backoff a "
                f"number of seconds, got retries={retries!r}, backoff={backoff!r}"
            )
        if register is not None:
            from cairn.core.model import check_model_name  # only steps that register

            check_model_name(register)
        self.register = register  # the model its output is registered as a version of
        functools.update_wrapper(self, function)
        self.function = function
        self.name = function.__name__
        self.retries = retries
        self.backoff = backoff
        self.signature = inspect.signature(function)

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        graph = _building.get()
        if graph is None:
            return self.function(*args, **kwargs)  # outside a pipeline: the plain function
        return self._record(graph, args, kwargs)  # type: ignore[return-value]

    def _record(self, graph: Graph, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Output:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name}: {exc}") from None
        bound.apply_defaults()
        name = self.name
        count = 2
        while name in graph.nodes:
            name, count = f"{self.name}-{count}", count + 1
        inputs: dict[str, str] = {}
        params: dict[str, Any] = {}
        given = dict(bound.arguments)
        for parameter in self.signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:  # **kwargs: each on its own
                given.update(given.pop(parameter.name, {}))
        for argument, value in given.items():
            if isinstance(value, Output):
                inputs[argument] = value.node
            else:
                params[argument] = check_json(value, f"step {name}, argument {argument!r}")
        graph.nodes[name] = Node(name, self, inputs, params)
        return Output(name)


# What runs a built graph: installed by the SDK, over the configured stores.
PipelineRunner = Callable[..., Any]
_runner: PipelineRunner | None = None


def use_runner(runner: PipelineRunner) -> None:
    global _runner
    _runner = runner


class Pipeline:
    """A function whose body calls steps; calling the pipeline builds and runs them."""

    def __init__(self, function: Callable[..., Any]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.name = function.__name__
        self.signature = inspect.signature(function)
        # What `cairn run` and `cairn reproduce` import it by (a cairn.yaml name for a
        # declared pipeline; nothing for one defined in a script run as __main__).
        module = function.__module__
        self.target = "" if module == "__main__" else f"{module}:{self.name}"

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    def build(self, **params: Any) -> Graph:
        """The graph of this pipeline for these parameters (defaults for the rest).

        Raises:
            InvalidInput: an unknown parameter, a value of the wrong type, an argument
                that is not JSON, a step called with arguments it does not take.
        """
        values = self.parameters(params)
        with building(Graph(self.name, values, target=self.target)) as graph:
            self.function(**values)
        if not graph.nodes:
            raise InvalidInput(f"pipeline {self.name} calls no step")
        return graph

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` checked against the pipeline's signature, defaults filled in."""
        known = self.signature.parameters
        unknown = sorted(set(given) - set(known))
        if unknown:
            expected = ", ".join(known) or "none"
            raise InvalidInput(
                f"pipeline {self.name}: unknown parameter {unknown[0]!r} (its parameters: "
                f"{expected})"
            )
        values: dict[str, Any] = {}
        for name, parameter in known.items():
            if name in given:
                values[name] = _checked(self.name, name, given[name], parameter.annotation)
            elif parameter.default is not inspect.Parameter.empty:
                values[name] = parameter.default
            else:
                raise InvalidInput(f"pipeline {self.name}: parameter {name!r} has no value")
        return values

    def __call__(self, **params: Any) -> Any:
        """Build the graph and run it with the installed runner (see ``use_runner``)."""
        graph = self.build(**params)
        if _runner is None:
            raise InvalidState("no pipeline runner is installed: import cairn first")
        return _runner(graph)


@overload
def step(function: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(
    *, retries: int = 0, backoff: float = 1.0, register: str | None = None
) -> Callable[[Callable[P, R]], Step[P, R]]: ...
def step(
    function: Callable[P, R] | None = None,
    /,
    *,
    retries: int = 0,
    backoff: float = 1.0,
    register: str | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a function a pipeline step: ``@step``, or ``@step(retries=2, backoff=1.0)``
    (a failed attempt is tried again after ``backoff`` seconds, doubling each time).
    ``register="churn"``: the model the step returns is registered as a version of
    ``churn``, made by the step's run (once per distinct package: a cached step's model is
    not registered again)."""
    if function is not None:
        return Step(function)

    def wrap(inner: Callable[P, R]) -> Step[P, R]:
        return Step(inner, retries, backoff, register)

    return wrap


def pipeline(function: Callable[..., Any]) -> Pipeline:
    """Make a function a pipeline: its body calls steps (see this module's docstring)."""
    return Pipeline(function)


@contextmanager
def building(graph: Graph) -> Iterator[Graph]:
    """Record step calls into ``graph`` (what ``Pipeline.build`` does around the body)."""
    token = _building.set(graph)
    try:
        yield graph
    finally:
        _building.reset(token)


_JSON_SCALARS = (str, int, float, bool, type(None))


def check_json(value: Any, what: str) -> Any:
    """``value`` if it is JSON (finite numbers; string keys), else InvalidInput naming
    ``what`` and the value's type."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{what}: {value!r} cannot be part of a cache key (not finite)")
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [check_json(v, what) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise InvalidInput(f"{what}: a dict with keys that are not strings")
        return {k: check_json(v, what) for k, v in value.items()}
    raise InvalidInput(
        f"{what}: a {type(value).__name__} cannot be part of the step's cache key; pass "
        "numbers, strings, booleans, lists or dicts of them, or the output of a step"
    )


def _checked(pipeline_name: str, name: str, value: Any, annotation: Any) -> Any:
    """A parameter's value, checked against a simple annotation (int, float, str, bool)."""
    expected = {"int": int, "float": float, "str": str, "bool": bool}.get(
        annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    )
    if expected is None:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise InvalidInput(
            f"pipeline {pipeline_name}: parameter {name!r} expects {expected.__name__}, got "
            f"{value!r}"
        )
    return value
