"""Experiment tracking: runs, their params, metrics, tags and artifacts."""
