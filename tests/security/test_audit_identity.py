"""Spoofed identity: embedded use is recorded as the account the process runs as, whatever
``$USER`` and its siblings say (anyone who starts a process sets those as they like)."""

from __future__ import annotations

import os
import pwd

import pytest

import cairn
from cairn.core.actor import local_user
from cairn.stores.metadata.audit import EventQuery

REAL = pwd.getpwuid(os.getuid()).pw_name
SPOOFED = "root" if REAL != "root" else "not-root"
# What getpass.getuser() reads, in its order, before it asks the account database.
IDENTITY_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")


@pytest.fixture
def spoofed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in IDENTITY_VARIABLES:
        monkeypatch.setenv(name, SPOOFED)


@pytest.mark.usefixtures("spoofed")
def test_the_audit_actor_and_the_run_user_are_the_real_account() -> None:
    with cairn.start_run(experiment="spoof") as run:
        run.log_param("lr", "0.1")
    stored = cairn.get_run(run.id)
    assert stored.user == REAL
    trail = cairn.sdk.session().audit_log
    actors = {e.content.actor for e in trail.events(EventQuery(limit=100))}
    assert actors == {f"local:{REAL}"}


def test_an_account_without_a_name_is_its_user_id(monkeypatch: pytest.MonkeyPatch) -> None:
    unnamed = 2**31 - 7  # no account database entry (a container's arbitrary uid)
    with pytest.raises(KeyError):
        pwd.getpwuid(unnamed)
    monkeypatch.setattr(os, "getuid", lambda: unnamed)
    monkeypatch.setenv("USER", SPOOFED)
    assert local_user() == f"local:uid-{unnamed}"
