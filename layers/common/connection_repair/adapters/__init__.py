"""Adapters: one implementation per port in ``connection_repair.ports``."""
