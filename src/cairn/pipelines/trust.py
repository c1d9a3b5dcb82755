"""Which recorded step outputs this process may load: a pickle runs code when it is read.

Whoever may write a project's runs may record a step run whose tags point at any object
they stored, under a cache key anyone can compute from the code; and a run's tags stay
writable by every writer of its project, whoever the run's user is. So an output recorded
in the pickle format is loaded only when one of these holds:

- **it is your own**: the step run that recorded it is the account running now (a run's
  user is the token's account on a server, the operating-system account embedded) *and*
  the output carries this Cairn home's seal (tag ``cairn.output.seal``): an HMAC of the
  cache key, the output's digest and its format, with a secret kept in the home
  (``keys/pipeline-outputs.key``, readable by its owner only). The runner seals every
  output it records; a teammate who rewrites your run's tags cannot seal what they wrote.
- **its pickle passes the registry's scan** (``cairn.models.scan.unsafe_imports``),
  read opcode by opcode without running it: plain data — containers, numbers, strings,
  NumPy arrays — passes; a class of your project or anything that calls code does not.

The other formats are safe to read (JSON, ``.npy`` without pickles, Parquet, model
packages, whose pickles are scanned when they load). An output whose pickle fails is not
loaded: the cache does not use it (the step runs again), and ``cairn reproduce`` compares
its bytes only. ``Stored.vetted`` carries the decision to whatever loads the output, and
``executors.load`` refuses a pickle that was not vetted, so a path that forgot to ask
fails closed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cairn.core.pipeline import CACHE_KEY, OUTPUT_DIGEST
from cairn.core.ports import ArtifactStore
from cairn.core.run import Run
from cairn.errors import InvalidInput, MissingExtra
from cairn.pipelines.executors import Stored
from cairn.pipelines.materialize import PICKLE

OUTPUT_FORMAT = "cairn.output.format"
HAS_METRICS = "cairn.output.metrics"  # "1": the output is a dict with numbers
SEAL = "cairn.output.seal"
SECRET_FILE = Path("keys") / "pipeline-outputs.key"
_SHOWN_IMPORTS = 3  # of what a refused pickle imports, in the line that says so


@dataclass(frozen=True, slots=True)
class Recorded:
    """An output as a step run recorded it; ``stored.vetted`` once it may be loaded."""

    stored: Stored
    user: str  # the step run's
    own: bool  # recorded by the account running now (sealed or not)
    imports: tuple[str, ...] = ()  # what loading its pickle would run, once scanned

    def refusal(self) -> str:
        """Why it may not be loaded, as a clause: "a pickle recorded by bob that imports
        builtins.exec"."""
        who = f"{self.user} (not sealed by this Cairn home)" if self.own else self.user
        names = ", ".join(self.imports[:_SHOWN_IMPORTS])
        if len(self.imports) > _SHOWN_IMPORTS:
            names += f" and {len(self.imports) - _SHOWN_IMPORTS} more"
        return f"a pickle recorded by {who} that imports {names}"


class Vetting:
    """Decides, for the account running now, which recorded outputs may be loaded, and
    seals the outputs its runs record."""

    def __init__(self, artifacts: ArtifactStore, secret: bytes, user: str) -> None:
        self.artifacts, self.user = artifacts, user
        self._secret = secret

    def seal(self, cache_key: str, stored: Stored) -> str:
        """The seal of an output recorded under ``cache_key``."""
        message = f"{cache_key}\n{stored.digest}\n{stored.format}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def recorded(self, run: Run) -> Recorded | None:
        """The output a step run recorded (None if it recorded none), vetted when that
        needs no reading: any format but pickle, or a pickle that is your own."""
        tags = run.tags
        digest, fmt = tags.get(OUTPUT_DIGEST), tags.get(OUTPUT_FORMAT)
        if not digest or not fmt:
            return None
        stored = Stored(digest, fmt, tags.get(HAS_METRICS) == "1")
        own = run.user == self.user
        vetted = fmt != PICKLE or (own and self._sealed(tags, stored))
        return Recorded(dataclasses.replace(stored, vetted=vetted), run.user, own)

    def _sealed(self, tags: Mapping[str, str], stored: Stored) -> bool:
        """Whether a step run's tags carry this home's seal of ``stored``."""
        expected = self.seal(tags.get(CACHE_KEY, ""), stored)
        return hmac.compare_digest(tags.get(SEAL, ""), expected)

    def scanned(self, recorded: Recorded) -> Recorded:
        """``recorded``, vetted if its pickle passes the scan (its object is read, never
        run); else with what loading it would import."""
        if recorded.stored.vetted:
            return recorded
        imports = _pickle_imports(self.artifacts, recorded.stored.digest)
        stored = dataclasses.replace(recorded.stored, vetted=not imports)
        return dataclasses.replace(recorded, stored=stored, imports=imports)


def _pickle_imports(artifacts: ArtifactStore, digest: str) -> tuple[str, ...]:
    """What loading the pickle stored as ``digest`` would import beyond the allow-list."""
    from cairn.models.scan import unsafe_imports  # the allow-list loads only when needed

    with tempfile.TemporaryDirectory(prefix="cairn-scan-") as folder:
        local = Path(folder) / "output"
        artifacts.get_file(digest, local)
        try:
            return unsafe_imports(local)
        except MissingExtra:  # a skops archive posing as a pickle: nothing to load anyway
            return ("<not a pickle>",)


def home_secret(home: Path) -> bytes:
    """The secret that seals this home's outputs, created (readable by its owner only) on
    first use. A home that cannot be written gets a secret for this process alone: what
    it seals is its own only while it runs (later, its pickles are judged by the scan).

    Raises:
        InvalidInput: the secret's file holds something else than a secret.
    """
    path = home.resolve() / SECRET_FILE
    try:
        return _secret(path)
    except OSError:
        return _PROCESS_SECRET
    except ValueError:
        raise InvalidInput(
            f"{path}: expected the 64 hex digits of a Cairn seal key; remove the file to make "
            "a new one (your cached pickles are then judged by the scan once)"
        ) from None


_PROCESS_SECRET = os.urandom(32)


@lru_cache(maxsize=8)
def _secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, written = tempfile.mkstemp(dir=path.parent, prefix=".cairn-", suffix=".part")
        try:  # mkstemp makes it 0600; linked into place only if no process got there first
            os.write(fd, os.urandom(32).hex().encode())
            os.close(fd)
            os.link(written, path)
        except FileExistsError:
            pass
        finally:
            Path(written).unlink(missing_ok=True)
    secret = bytes.fromhex(path.read_text().strip())
    if len(secret) != 32:
        raise ValueError(f"{len(secret)} bytes")
    return secret
