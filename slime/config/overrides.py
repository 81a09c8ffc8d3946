"""Writing Hydra overrides for arbitrary strings (for tools and tests that build overrides).

``quote_value(text)`` is a quoted override value that composes to exactly ``text``: OmegaConf's
interpolation marker ``${`` is escaped (a ``${NAME}`` thus stays a shell reference for the
generated file), and quotes and backslashes follow Hydra's quoted-string grammar.
"""

from __future__ import annotations

import re

_INTERPOLATION = re.compile(r"(\\*)\$\{")
_BEFORE_QUOTE_OR_END = re.compile(r"(\\*)('|$)")


def escape_interpolation(text: str) -> str:
    r"""``text`` as OmegaConf reads it back unchanged: every ``${`` becomes ``\${`` (backslashes right
    before it doubled), so ``${NAME}`` stays a shell reference instead of an interpolation."""
    return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", text)


def quote_value(text: str) -> str:
    escaped = escape_interpolation(text)
    # Hydra's quoted strings: backslashes before a quote (or the closing quote) double, quotes escape.
    escaped = _BEFORE_QUOTE_OR_END.sub(lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), escaped)
    return f"'{escaped}'"


def override(key: str, text: str) -> str:
    """``key='…'`` setting ``key`` to exactly ``text``."""
    return f"{key}={quote_value(text)}"
