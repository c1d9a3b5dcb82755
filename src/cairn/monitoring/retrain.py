"""The closed loop: a monitor whose data drifted, or whose model degraded, retrains its
model and asks for the new version's release.

``on_drift: retrain:PIPELINE`` (or ``on_degradation``) runs the pipeline (a name declared
in ``cairn.yaml``, or ``module:attribute``, as ``cairn run`` finds it; it reads its data
itself, the latest version as it names it), its run tagged with the monitor and the
window that caused it. When the run registered a new version of the monitored model and
the monitor watches an environment (``churn@production``), the version is promoted there:
a promotion request that goes through the environment's gates and approvals as any
other, its reason naming the monitor and window. What a policy allows automatically
happens; what needs a person waits for one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.core.model import parse_model_ref
from cairn.core.monitor import check_action
from cairn.errors import NotFound

if TYPE_CHECKING:
    from cairn.core.monitor import Monitor, MonitorResult
    from cairn.core.ports import Releases


@dataclass(frozen=True)
class Retrained:
    """What a retrain did: the pipeline run, the version it registered (if any), and the
    promotion it asked for (if any) with that request's state."""

    pipeline: str
    run_id: str
    version: str | None = None
    request_id: str | None = None
    request_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "run_id": self.run_id, "version": self.version,
                "request_id": self.request_id, "request_state": self.request_state}  # fmt: skip


# (pipeline name or module:attribute, run tags) -> the pipeline run's id
RunPipeline = Callable[[str, dict[str, str]], str]


class Retrainer:
    """``resolve`` names the version a model reference stands for now (``churn/3``)."""

    def __init__(self, run_pipeline: RunPipeline, releases: Callable[[], Releases],
                 resolve: Callable[[str], str]) -> None:  # fmt: skip
        self._run, self._releases, self._resolve = run_pipeline, releases, resolve

    def retrain(self, monitor: Monitor, result: MonitorResult, action: str,
                cause: str) -> Retrained:  # fmt: skip
        """Run the pipeline of ``action`` (the monitor's ``retrain:PIPELINE``) and promote
        what it registered, the promotion's reason naming the monitor and ``cause`` (the
        window, and what it found, in words).

        Raises:
            CairnError: the pipeline is not found or fails; the promotion is refused.
        """
        _, pipeline = check_action(action, "action")
        watched = parse_model_ref(monitor.model)
        tags = {"cairn.monitor": monitor.name, "cairn.monitor.window": str(result.number)}
        # Whatever way the pipeline registers (a step's register=, log_model in a step), the
        # model's newest version tells whether it made one.
        newest = f"{watched.name}@latest"
        before = self._resolve(newest)
        run_id = self._run(pipeline, tags)
        version = self._resolve(newest)
        if version in (before, self._resolve(monitor.model)):
            # Nothing new: the pipeline's steps were cached (its data unchanged), or it
            # registers another model.
            return Retrained(pipeline, run_id)
        environment = watched.alias
        releases = self._releases()
        try:
            if environment is None:
                raise NotFound("the monitor watches no environment")
            releases.get_environment(environment)
        except NotFound:  # an alias, not an environment: nothing to release to
            return Retrained(pipeline, run_id, version)
        reason = f"retrained by monitor {monitor.name}: {cause}; pipeline run {run_id}"
        request = releases.promote(version, environment, reason)
        return Retrained(pipeline, run_id, version, request.id, request.state.value)
