"""The ``cairn`` command: typer commands that parse, call the library and print."""
