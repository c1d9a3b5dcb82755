"""Pipelines: steps cached, tracked and retried as runs; see ``definition`` and ``runner``."""
