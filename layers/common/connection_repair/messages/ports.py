"""Where a deployment keeps its own templates and phrases (an S3 prefix, a directory), read by name."""

from __future__ import annotations

from typing import Protocol


class TemplateSource(Protocol):
    def read(self, name: str) -> str | None:
        """The file's text (``first_notice.html``, ``es/reminder.subject``, ``locales/es.json``), None when the
        deployment does not override it. Raises when the source cannot be read."""
        ...
