"""Serving released models: the models a server answers for (loaded through the verified
load path), the protocols requests arrive in (the Open Inference Protocol v2 and MLflow's
scoring protocol), and what the server counts about them (Prometheus metrics)."""
