"""What may be loaded of a recorded step output: a pickle only when vetted, whatever path
reads it; and what ``cairn reproduce`` compares of a pickle it may read."""

from __future__ import annotations

import io
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest

from cairn.backends import open_artifact_store
from cairn.core.ports import ArtifactStore
from cairn.errors import InvalidInput, PermissionDenied
from cairn.pipelines.executors import Stored, load
from cairn.pipelines.reproduce import DIFFERENT, WITHIN, compare
from cairn.pipelines.trust import Recorded, Vetting, home_secret


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "objects"))


def put(store: ArtifactStore, content: bytes) -> str:
    return store.put_stream(io.BytesIO(content)).digest


def test_a_pickle_not_vetted_is_never_loaded(store: ArtifactStore, tmp_path: Path) -> None:
    """Whatever path reads an output (a step's input in a worker process, a Ray task, a
    reproduction) reads it with ``load``: an output no one judged fails closed."""
    marker = tmp_path / "pwned"
    # A hand-written pickle that calls exec on load.
    gadget = f"cbuiltins\nexec\n(Vopen({str(marker)!r}, 'w').close()\ntR.".encode()
    digest = put(store, gadget)
    with pytest.raises(PermissionDenied, match="a pickle is loaded only from your own runs"):
        load(store, Stored(digest, "pickle"))
    assert not marker.exists()
    plain = put(store, pickle.dumps({"rows": [1, 2]}))
    assert load(store, Stored(plain, "pickle", vetted=True)) == {"rows": [1, 2]}


def test_the_homes_secret_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = home_secret(home)
    assert len(secret) == 32
    assert home_secret(home) == secret
    file = home / "keys" / "pipeline-outputs.key"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    other = tmp_path / "other"
    (other / "keys").mkdir(parents=True)
    (other / "keys" / "pipeline-outputs.key").write_text("abcd\n")  # too short to be one
    with pytest.raises(InvalidInput, match=r"pipeline-outputs\.key: expected the 64 hex digits"):
        home_secret(other)


def test_a_readable_pickle_is_compared_by_value(store: ArtifactStore) -> None:
    """Pickled dicts of numbers (here NumPy's float32, which JSON does not take) are within
    tolerance or not, like JSON ones."""
    vetting = Vetting(store, b"s" * 32, "alice")
    before = put(store, pickle.dumps({"auc": np.float32(0.9)}))
    after = put(store, pickle.dumps({"auc": np.float32(0.9004)}))
    recorded = Recorded(Stored(before, "pickle", vetted=True), "alice", own=True)
    again = Stored(after, "pickle", vetted=True)
    assert compare("score", recorded, again, vetting, 1e-3).verdict == WITHIN
    assert compare("score", recorded, again, vetting, 1e-5).verdict == DIFFERENT
