"""``cairn login URL``: check a token against a server and keep it for that server."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.output import console
from cairn.config import check_server_uri, credentials_file, stored_tokens
from cairn.core.yaml_text import dump_yaml
from cairn.localfs.atomic import write_atomically


def login(
    url: Annotated[str, typer.Argument(help="The Cairn server, e.g. https://cairn.internal")],
    token: Annotated[
        str | None, typer.Option(help="The API token (asked for, hidden, when not given).")
    ] = None,
) -> None:
    """Store an API token for a server, after checking it there.

    The token is kept in ~/.config/cairn/credentials.yaml (readable by you only) and used
    whenever CAIRN_URI names that server and CAIRN_TOKEN is not set.
    """
    server = check_server_uri(url, "URL")
    secret = token or typer.prompt("API token", hide_input=True)
    from cairn.client.transport import HttpTransport  # httpx: only for this command

    transport = HttpTransport(server, secret.strip())
    try:
        me = transport.call("GET", "/api/v1/whoami")
    finally:
        transport.close()
    tokens = {**stored_tokens(), server: secret.strip()}
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = dump_yaml({"servers": tokens}, sort_keys=True)
    write_atomically([text.encode()], path)  # created 0600, and stays so
    roles = ", ".join(f"{role} in {project}" for project, role in me["roles"].items())
    status = "an installation admin" if me["admin"] else (roles or "no role in any project")
    console.print(f"logged in to {server} as {me['name']} ({status}); token kept in {path}")
