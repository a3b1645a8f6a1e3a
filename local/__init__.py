"""Local-only tools (simulators, local stack); never deployed."""
