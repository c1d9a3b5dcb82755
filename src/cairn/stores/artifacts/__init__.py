"""Artifact stores: ``fsspec.FsspecArtifactStore`` implements the ``ArtifactStore`` port.

Nothing is imported here so that importing the package stays cheap; import the backend
module you need (``from cairn.stores.artifacts.fsspec import FsspecArtifactStore``).
"""
