"""Posting release events to webhooks: each delivery waits in the ledger's outbox (written
in the release's own transaction) until a subscriber answers 2xx.

A delivery is a POST of the event's JSON with ``X-Cairn-Event``, ``X-Cairn-Delivery`` (its
id: a subscriber may see one twice, if an answer is lost, and drops the repeat) and
``X-Cairn-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the body under the webhook's
secret — the scheme GitHub's webhooks use, so existing receivers verify it as they are.
A failed delivery is tried again with a growing pause, and stays in the outbox for the
next pass until it has failed ``give_up_after`` times.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import httpx

from cairn.core.ports import ReleaseLedger
from cairn.core.release import Delivery
from cairn.errors import InvalidInput

_log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Cairn-Signature-256"


def check_url(url: str) -> str:
    """Raises:
    InvalidInput: not an http:// or https:// address with a host.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"url: expected an http:// or https:// address, got {url!r}")
    return url


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    ledger: ReleaseLedger,
    tries: int = 3,
    pause: float = 0.5,
    timeout: float = 5.0,
    give_up_after: int = 10,
) -> tuple[int, int]:
    """Post every pending delivery, each up to ``tries`` times in this pass; returns how
    many were delivered and how many are still pending or failed."""
    delivered = left = 0
    with httpx.Client(timeout=timeout) as client:
        for delivery in ledger.pending_deliveries():
            body = delivery.body.encode()
            headers = {"Content-Type": "application/json", "X-Cairn-Event": delivery.event,
                       "X-Cairn-Delivery": str(delivery.id),
                       SIGNATURE_HEADER: signature(delivery.secret, body)}  # fmt: skip
            if _post(client, ledger, delivery, body, headers, tries, pause, give_up_after):
                delivered += 1
            else:
                left += 1
    return delivered, left


def _post(
    client: httpx.Client,
    ledger: ReleaseLedger,
    delivery: Delivery,
    body: bytes,
    headers: dict[str, str],
    tries: int,
    pause: float,
    give_up_after: int,
) -> bool:
    attempts, error = delivery.attempts, ""
    for attempt in range(tries):
        try:
            answer = client.post(delivery.url, content=body, headers=headers)
            if answer.is_success:
                ledger.mark_delivery(delivery.id, True, "", False)
                return True
            error = f"HTTP {answer.status_code}"
        except Exception as exc:  # noqa: BLE001  # whatever went wrong is this delivery's
            error = f"{type(exc).__name__}: {exc}"
        attempts += 1
        give_up = attempts >= give_up_after
        ledger.mark_delivery(delivery.id, False, error, give_up)
        if give_up:
            break
        if attempt < tries - 1:
            time.sleep(pause * 2**attempt)
    _log.warning("webhook %s: delivery %s failed: %s", delivery.url, delivery.id, error)
    return False
