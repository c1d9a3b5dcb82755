"""A moto S3 server over real HTTP for tests marked ``s3``.

The server starts once per session on a free port of 127.0.0.1, with dummy credentials
and no proxy. When it cannot start (moto or s3fs not installed, no loopback networking)
the tests that need it are skipped — or fail when ``CAIRN_REQUIRE_S3=1``, which CI sets
so that S3 coverage cannot silently disappear.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

BUCKET = "cairn-contract"
_START_TIMEOUT_S = 10
S3_ENV = {  # what a process that talks to the moto server needs in its environment
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Keep a developer's ~/.aws profile (endpoint, credentials) out of the tests.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


@dataclass(frozen=True)
class S3Endpoint:
    """Where the moto server listens, and a bucket that exists on it."""

    endpoint_url: str
    bucket: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}}


def s3_unavailable(reason: str) -> NoReturn:
    """Skip, or fail when CAIRN_REQUIRE_S3=1 says S3 tests must run."""
    if os.environ.get("CAIRN_REQUIRE_S3") == "1":
        pytest.fail(f"CAIRN_REQUIRE_S3=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """A running moto S3 server with an empty bucket ``cairn-contract``."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in S3_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        server = _start_server()
        try:
            host, port = server.get_host_and_port()
            endpoint = S3Endpoint(f"http://{host}:{port}", BUCKET)
            _create_bucket(endpoint)
            yield endpoint
        finally:
            server.stop()


def _start_server() -> Any:
    try:
        import s3fs  # noqa: F401  (the store needs it; fail here with a clear reason)
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        s3_unavailable(f"the S3 test server needs moto[server] and s3fs: {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits forever if the server thread dies while binding, so wait for it here.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(_START_TIMEOUT_S)
    if starter.is_alive():
        s3_unavailable(f"the moto S3 server did not start within {_START_TIMEOUT_S} s")
    return server


def _create_bucket(endpoint: S3Endpoint) -> None:
    import boto3
    import botocore.exceptions

    client = boto3.client("s3", endpoint_url=endpoint.endpoint_url)
    try:
        client.create_bucket(Bucket=endpoint.bucket)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        s3_unavailable(f"could not create a bucket on the moto S3 server: {exc}")
    finally:
        client.close()
