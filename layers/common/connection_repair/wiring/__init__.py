"""The composition root: one module per function builds its use case from configuration, once per cold start.

Handlers call these factories; tests clear their caches between environments. Each module imports only what its
function runs, so one function's cold start never loads another's adapters.
"""
