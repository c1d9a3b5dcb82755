"""Implementations of the ports in ``cairn.core.ports``: SQL metadata, artifact objects."""
