"""Pure domain: value types, references, ports and rules. No I/O happens here."""
