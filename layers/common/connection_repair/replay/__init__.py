"""Replaying a connection: its state recomputed from its stored events by today's logic, what differs written and
announced once (`make replay`, docs/operations.md)."""
