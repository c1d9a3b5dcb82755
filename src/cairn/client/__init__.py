"""The ports over HTTP: ``http.HttpMetadataStore`` and ``http.HttpArtifactStore`` talk to a
Cairn server, so the SDK and CLI run unchanged against a remote one. ``transport`` holds the
connection pool and turns error responses back into the classes of ``cairn.errors``.
"""
