"""A run search as the stores receive it, and the page they return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cairn.core.run import Run, ViewType
from cairn.errors import InvalidInput

MAX_RESULTS = 50_000


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filter and order are kept as the user wrote them; each store parses and compiles."""

    experiment_ids: Sequence[str] = ()
    filter: str = ""
    order_by: Sequence[str] = ()
    limit: int = 1000
    page_token: str | None = None
    view: ViewType = ViewType.ACTIVE

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise InvalidInput(f"limit: expected a whole number, got {self.limit!r}")
        if not 1 <= self.limit <= MAX_RESULTS:
            raise InvalidInput(f"limit: expected 1 to {MAX_RESULTS}, got {self.limit}")


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[Run] = field(default_factory=list)
    next_page_token: str | None = None
