"""Data versioning: content-addressed snapshots of files and folders (see ``service``)."""
