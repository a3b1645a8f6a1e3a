"""connection-repair: keeps Meld bank connections healthy (webhook ingestion, repair API, notifications)."""
