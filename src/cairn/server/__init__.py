"""The REST server: an adapter that turns HTTP requests into port calls.

``app.create_app`` wires the routers of ``routes/`` (one module per resource) to a
MetadataStore and an ArtifactStore; ``errors`` turns every exception into the one error
shape; ``launch.serve`` runs it with uvicorn. Routes hold no business logic: to add an
endpoint, add it to its resource's router and the matching method to ``cairn.client.http``.
"""
