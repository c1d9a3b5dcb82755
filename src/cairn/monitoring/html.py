"""A monitor's report as one self-contained HTML page: no script, no font or style fetched
from anywhere, the charts drawn as inline SVG — it opens offline, from a mail attachment
as from a CI artifact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_HEIGHT = 100  # pixels of the tallest bar
_WIDTH = 310


def render_html(report: dict[str, Any]) -> str:
    """The page of a report (``MonitorService.report``)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("cairn.monitoring", "templates"),
        autoescape=True,  # column names and categories come from the data
    )
    drift = report.get("drift") or {"columns": []}
    return environment.get_template("report.html.j2").render(
        r=report,
        since=_when(report.get("since")),
        until=_when(report.get("until")),
        drifted={c["column"] for c in drift["columns"] if c["drifted"]},
        history=report.get("history", []),
        history_width=max(28 * len(report.get("history", [])) + 12, 300),
        charts=[(name, _bars(found)) for name, found in report.get("distributions", {}).items()],
    )


def _bars(distribution: dict[str, Any]) -> dict[str, Any]:
    """Pairs of bars (reference, current) scaled to the taller of the two sets."""
    ref, cur = distribution.get("reference", []), distribution.get("current", [])
    if not ref:
        return {"bars": [], "first": "", "last": "", "ticks": False}
    tallest = max(max(ref), max(cur or [0]), 1e-12)
    width = _WIDTH / len(ref) / 2
    if distribution["kind"] == "numeric":
        edges = distribution["edges"]
        labels = [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(len(ref))]
        first, last = f"{edges[0]:.3g}", f"{edges[-1]:.3g}"
    else:
        labels = distribution["categories"]
        first, last = labels[0], labels[-1]
    bars = [{"x": round(i * 2 * width, 2), "w": round(width * 0.95, 2),
             "ref": round(r / tallest * _HEIGHT, 2), "cur": round(c / tallest * _HEIGHT, 2),
             "ref_share": r, "cur_share": c, "label": labels[i]}
            for i, (r, c) in enumerate(zip(ref, cur, strict=True))]  # fmt: skip
    # A category is named under its bars; a numeric axis by its two ends.
    return {"bars": bars, "first": first, "last": last, "ticks": distribution["kind"] != "numeric"}


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
