"""Release governance: the evidence a policy's gates decide on, fresh evaluations, the
release service over the ledger, and webhook deliveries (``docs/governance.md``)."""
