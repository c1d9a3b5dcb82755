"""The environment a step ran in: Python and every installed distribution's version,
as one digest (part of each cache key) and as the list ``reproduce`` compares."""

from __future__ import annotations

import functools
import platform
import site
from importlib import metadata

from cairn.localfs.digest import digest_of, hasher


@functools.cache
def installed() -> dict[str, str]:
    """``{distribution: version}`` of this interpreter, with Python itself (read once per
    process: listing the distributions costs tens of milliseconds)."""
    found = {"python": platform.python_version()}
    # The interpreter's own package folders, not all of sys.path: a library that adds its
    # vendored copies to sys.path once imported (Ray does) must not change the answer.
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    for distribution in metadata.distributions(path=folders):
        name = distribution.name
        if name:
            found[name.lower().replace("_", "-")] = distribution.version
    return dict(sorted(found.items()))


@functools.cache
def environment_digest() -> str:
    state = hasher()
    for name, version in installed().items():
        state.update(f"{name}=={version}\n".encode())
    return digest_of(state)
