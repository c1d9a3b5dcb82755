"""Pipeline runs, step runs and the step cache, as a run's system tags record them.

A pipeline run is a run tagged ``cairn.run.kind=pipeline`` and ``cairn.pipeline`` (its
pipeline's name). Each step call is a run nested in it, tagged ``cairn.step`` (the step's
name), ``cairn.step.state`` (``ran`` or ``cached``), its cache key (``cairn.cache_key``) and,
once it has one, its output's digest (``cairn.output.digest``). Tags under ``cairn.`` are
written only by the run's own account (``cairn.stores.metadata.system_tags``), so the
metadata store keeps its pipeline tables — pipeline runs, step runs, cache entries — from
these tags alone, in the transaction that writes them.
"""

from __future__ import annotations

import re

from cairn.errors import InvalidInput

RUN_KIND = "cairn.run.kind"
PIPELINE_KIND = "pipeline"  # the kind of a pipeline run
PIPELINE = "cairn.pipeline"
STEP = "cairn.step"
STEP_STATE = "cairn.step.state"
CACHE_KEY = "cairn.cache_key"
OUTPUT_DIGEST = "cairn.output.digest"
# What a step cache entry is made of; a write touching none of these changes no entry.
TAGS = frozenset({RUN_KIND, PIPELINE, STEP, STEP_STATE, CACHE_KEY, OUTPUT_DIGEST})

MAX_CACHE_KEY = 80
# A digest: the hash's name, then 64 hex digits (``blake3:…``), as ``digest_of`` makes it.
_CACHE_KEY = re.compile(r"[a-z0-9]{1,15}:[0-9a-f]{64}")


def is_cache_key(value: str) -> bool:
    return _CACHE_KEY.fullmatch(value) is not None


def check_cache_key(key: object, field: str = "cache_key") -> str:
    """Raises:
    InvalidInput: ``key`` is not a step's cache key, naming ``field``.
    """
    if not isinstance(key, str) or not is_cache_key(key):
        shown = repr(key[:MAX_CACHE_KEY] if isinstance(key, str) else key)
        raise InvalidInput(
            f"{field}: {shown} is not a step's cache key (the hash's name and 64 hex digits, "
            "'blake3:…', as the tag cairn.cache_key of a step run holds it)"
        )
    return key
