"""Operator tools (`make redrive`, ...): they run on an operator's machine against the running local stack or a
deployed one, never inside a function."""
