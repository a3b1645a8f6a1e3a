"""Erasing a customer: their contact details, preferences and notification history removed, their connections and
stored events no longer naming them (docs/operations.md, Erasure)."""
