"""The Open Inference Protocol v2's gRPC service: its ``.proto`` and the modules generated
from it (``scripts/grpc-codegen``)."""
