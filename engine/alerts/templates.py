"""Annotations rendered with the numbers: Jinja2 in a sandbox.

A template sees ``value`` and ``threshold`` (the compared numbers), ``labels``, ``rule``,
``severity``, ``deployment``, ``window_start`` / ``window_end`` (ISO 8601, UTC) and
``state``. A template that fails to render yields its text with the error appended, so a
typo never loses an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["render", "render_all"]

_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=512)
def _template(source: str) -> Any:
    return _ENV.from_string(source)


def render(source: str, context: Mapping[str, Any]) -> str:
    """``source`` rendered with ``context``.

    >>> render("PSI {{ '%.2f'|format(value) }} >= {{ threshold }}", {"value": 0.234,
    ...        "threshold": 0.2})
    'PSI 0.23 >= 0.2'
    """
    try:
        return str(_template(source).render(**context))
    except TemplateError as error:
        return f"{source} [template error: {error}]"


def render_all(templates: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, str]:
    """Every annotation of ``templates`` rendered."""
    return {name: render(source, context) for name, source in templates.items()}
