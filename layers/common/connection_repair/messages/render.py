"""Messages rendered from templates: the project's own, a deployment's over them, in the customer's language.

Each kind of message has a subject, an HTML and a text template (``templates/``); the words are in one catalog per
language (``templates/locales/<language>.json``). A deployment's source may override any template, for every
language (``first_notice.html``) or one (``es/first_notice.html``), and any phrase (``locales/es.json``, merged over
the shipped catalog); what it does not override comes from the project. A rendered message is checked for what a
customer must find in it before it can be sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import escape

from connection_repair.messages.kinds import MessageKind
from connection_repair.messages.ports import TemplateSource

if TYPE_CHECKING:
    from jinja2 import BaseLoader
    from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = tuple(sorted(path.stem for path in (TEMPLATES / "locales").glob("*.json")))
PARTS = ("subject", "html", "txt")
MAX_SUBJECT = 200


class TemplateProblem(Exception):
    """A template or phrase that cannot make a message a customer may receive."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Required:
    """What a customer must find in every part: each bank's name, each link, the link that stops the messages."""

    banks: Sequence[str]
    links: Sequence[str]
    unsubscribe_url: str


def _environment(loader: BaseLoader) -> ImmutableSandboxedEnvironment:
    # Sandboxed: a deployment's templates reach only what they are given. Strict: a misspelt placeholder fails the
    # render instead of leaving a gap in the message.
    from jinja2 import StrictUndefined, select_autoescape
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over``'s phrases over ``base``'s, key by key at every level."""
    merged = dict(base)
    for key, value in over.items():
        inner = merged.get(key)
        merged[key] = merge(inner, value) if isinstance(inner, Mapping) and isinstance(value, Mapping) else value
    return merged


def most_specific_first(tag: str) -> list[str]:
    """A language tag, then its language (``es-MX``, ``es``); a bare language alone."""
    return list(dict.fromkeys([tag, tag.split("-", maxsplit=1)[0]]))


@cache
def _shipped(language: str) -> dict[str, Any] | None:
    # Read once per process; never changed (merge copies, templates cannot write).
    path = TEMPLATES / "locales" / f"{language}.json"
    if language not in LANGUAGES:
        return None
    catalog: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return catalog


def check(rendered: Rendered, required: Required) -> None:
    """Refuse a message that misses what the customer needs, wherever the template came from."""
    if not rendered.subject or "\n" in rendered.subject or len(rendered.subject) > MAX_SUBJECT:
        raise TemplateProblem(f"the subject must be one line of 1 to {MAX_SUBJECT} characters")
    for bank in required.banks:
        if bank not in rendered.text or str(escape(bank)) not in rendered.html:
            raise TemplateProblem(f"the message does not name {bank!r} in both its text and HTML parts")
    for link in [*required.links, required.unsubscribe_url]:
        if link not in rendered.text or f'href="{escape(link)}"' not in rendered.html:
            raise TemplateProblem(f"the message does not link to {link!r} in both its text and HTML parts")


class MessageRenderer:
    """Renders a kind of message in a language, with the deployment's templates (``own``) or the project's only."""

    def __init__(self, source: TemplateSource | None = None) -> None:
        self._source = source
        self._environments: tuple[ImmutableSandboxedEnvironment, ImmutableSandboxedEnvironment | None] | None = None

    @property
    def has_own(self) -> bool:
        return self._source is not None

    def _environment(self, own: bool) -> ImmutableSandboxedEnvironment:
        # Built (and Jinja2 imported, ~65 ms) on the first message: most notifier invocations send none.
        if self._environments is None:
            from jinja2 import ChoiceLoader, FileSystemLoader, FunctionLoader

            defaults = FileSystemLoader(TEMPLATES)
            mine = _environment(ChoiceLoader([FunctionLoader(self._load), defaults])) if self._source else None
            self._environments = (_environment(defaults), mine)
        project, mine = self._environments
        return mine if own and mine is not None else project

    def _load(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        assert self._source is not None  # only the environment built with a source loads through here
        text = self._source.read(name)
        if text is None:
            return None
        source = self._source
        return text, f"own:{name}", lambda: source.read(name) == text

    def _own_catalog(self, language: str) -> dict[str, Any] | None:
        text = self._source.read(f"locales/{language}.json") if self._source else None
        if text is None:
            return None
        try:
            catalog = json.loads(text)
        except ValueError as error:
            raise TemplateProblem(f"locales/{language}.json is not JSON: {error}") from error
        if not isinstance(catalog, dict):
            raise TemplateProblem(f"locales/{language}.json is not an object of phrases")
        return catalog

    def language(self, preferred: Sequence[str | None], *, own: bool) -> str:
        """The first of ``preferred`` (BCP 47 tags, best first) with a catalog, or its language; else English."""
        for tag in preferred:
            if not tag:
                continue
            for candidate in most_specific_first(tag):
                if candidate in LANGUAGES or (own and self._own_catalog(candidate) is not None):
                    return candidate
        return "en"

    def phrases(self, language: str, *, own: bool) -> dict[str, Any]:
        """The language's words, each key from the most specific catalog that has it: the deployment's over the
        shipped ones, a regional one (es-MX) over its language's (es), any of them over English."""
        names = most_specific_first(language)[::-1]
        catalogs = [_shipped(name) for name in names] + [self._own_catalog(name) for name in names if own]
        catalog = _shipped("en") or {}
        for more in catalogs:
            catalog = merge(catalog, more or {})
        return catalog

    def render(
        self, kind: MessageKind, language: str, context: Mapping[str, Any], required: Required, *, own: bool
    ) -> Rendered:
        environment = self._environment(own)
        folders = most_specific_first(language)
        parts: dict[str, str] = {}
        for part in PARTS:
            template = environment.select_template(
                [*(f"{folder}/{kind}.{part}" for folder in folders), f"{kind}.{part}"]
            )
            parts[part] = template.render(context)
        rendered = Rendered(subject=parts["subject"].strip(), html=parts["html"], text=parts["txt"].strip() + "\n")
        check(rendered, required)
        return rendered
