"""Following the references a server serves: every few seconds, each is resolved again,
and a version that moved (a promotion, a rollback) is loaded in the background and then
switched to (``ServedModels.refresh``). A failure — the store out of reach, a version that
does not load — is logged and tried again at the next look; the old version keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cairn.serving.served import ServedModel, ServedModels

logger = logging.getLogger(__name__)


def watch(
    served: ServedModels, seconds: float, switched: Callable[[ServedModel], None]
) -> threading.Event:
    """Start following ``served`` every ``seconds``; set the event returned to stop."""
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(seconds):
            try:
                for new in served.refresh():
                    logger.warning("now serving %s for %s", new.ref, new.reference)
                    switched(new)
            except Exception:  # the old versions keep serving; the next look tries again
                logger.exception("could not follow the served references")

    threading.Thread(target=follow, name="cairn-serve-watch", daemon=True).start()
    return stop
