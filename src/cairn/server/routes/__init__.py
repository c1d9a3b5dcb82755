"""One router per resource; ``cairn.server.app`` mounts them under ``/api/v1``."""
