"""Bash words from argv tokens: shell references kept, every other character literal.

A token may refer to environment variables as ``${NAME}`` (``${BASE_FOLDER}/Qwen3-4B``) or, with a
default used when the variable is unset or empty, as ``${NAME:-default}`` (``${BASE_DIR:-/data}/x``);
the default is literal text of letters, digits and ``_@%+=:,./-`` (no ``$(…)``, backticks, quotes,
spaces or nested expansions). A reference is expanded when the generated file is sourced; one
without a default first passes ``require_set``, which stops the sourcing, naming the variable, if it
is unset or empty. Everything else in a token is quoted so bash reads it back byte for byte: quotes,
``$``, backticks, globs, newlines, leading dashes, unicode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

DEFAULT_TEXT = r"[A-Za-z0-9_@%+=:,./-]*"  # what a default may hold: characters no shell treats specially
DEFAULT_CHARACTERS = "letters, digits and _@%+=:,./-"
SHELL_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(" + DEFAULT_TEXT + r"))?\}")
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# Names bash sets itself: a reference to one always passes the unset check and means something else
# than the user's own variable would.
BASH_SET = frozenset({"_", "RANDOM", "SRANDOM", "LINENO", "SECONDS", "EPOCHSECONDS", "EPOCHREALTIME", "PPID", "UID",
                      "EUID", "GROUPS", "FUNCNAME", "PIPESTATUS", "HISTCMD", "OPTIND", "OPTARG", "REPLY", "PWD",
                      "OLDPWD", "HOSTNAME", "HOSTTYPE", "MACHTYPE", "OSTYPE", "SHLVL", "SHELLOPTS", "DIRSTACK"})


def set_by_bash(name: str) -> bool:
    return name in BASH_SET or name.startswith("BASH")


def shell_refs(token: str) -> list[str]:
    """The variable names a token refers to, with a default or without."""
    return [match.group(1) for match in SHELL_REF.finditer(token)]


_DEFAULT_START = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-")


def unwritable_default(token: str) -> str | None:
    """The start of a ``${NAME:-…}`` in the token whose default is not literal text, if there is one:
    it would be neither a reference nor what its writer meant."""
    valid = {m.start() for m in SHELL_REF.finditer(token)}
    return next((m.group(0) for m in _DEFAULT_START.finditer(token) if m.start() not in valid), None)


def reference(name: str, default: str | None = None) -> str:
    """``${NAME}``, or ``${NAME:-default}`` when there is a default."""
    return f"${{{name}}}" if default is None else f"${{{name}:-{default}}}"


def _quote_literal(text: str, first: bool = False) -> str:
    if not text:
        return ""
    if _PLAIN.fullmatch(text) and not (first and text.startswith("=")):  # zsh expands a leading =ls
        return text
    if _CONTROL.search(text):
        # ANSI-C quoting keeps newlines and other control characters on one line.
        body = "".join(_ansi_c(ch) for ch in text)
        return f"$'{body}'"
    return "'" + text.replace("'", "'\\''") + "'"


def _ansi_c(ch: str) -> str:
    special = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    if ch in special:
        return special[ch]
    if _CONTROL.fullmatch(ch):
        return f"\\x{ord(ch):02x}"
    return ch


def require_set(name: str, file_label: str) -> str:
    """A line that stops the sourcing (``return``; ``exit`` if executed) when ``name`` is unset or empty.

    ``${NAME:?}`` is not enough: in an interactive shell it fails one command and sourcing goes on.
    """
    message = bash_word(f"{file_label}: {name} is not set; export {name} before sourcing this file")
    return f'[[ -n "${{{name}:-}}" ]] || {{ echo {message} >&2; return 1 2>/dev/null || exit 1; }}'


def bash_word(token: str) -> str:
    """One bash word that expands to ``token`` with its ``${NAME}`` references substituted."""
    if "\x00" in token:
        raise ValueError("a command-line argument cannot contain a NUL character")
    parts, last = [], 0
    for match in SHELL_REF.finditer(token):
        parts.append(_quote_literal(token[last:match.start()], first=last == 0))
        parts.append(f'"{match.group(0)}"')  # a default holds no character special inside double quotes
        last = match.end()
    parts.append(_quote_literal(token[last:], first=last == 0))
    word = "".join(parts)
    return word if word else "''"


def expand(token: str, environ: Mapping[str, str]) -> str:
    """What sourcing does to a token: substitute each reference, a variable unset or empty by its
    default; unset or empty without a default is an error naming it."""
    def substitute(match: re.Match) -> str:
        value = environ.get(match.group(1))
        if not value and match.group(2) is None:
            raise KeyError(match.group(1))
        return value or match.group(2)

    return SHELL_REF.sub(substitute, token)


def referenced_names(tokens: Iterable[str]) -> list[str]:
    """The variables that must be set: those the tokens refer to without a default, in first-use order."""
    names: dict[str, None] = {}
    for token in tokens:
        names.update(dict.fromkeys(m.group(1) for m in SHELL_REF.finditer(token) if m.group(2) is None))
    return list(names)


def defaulted_references(tokens: Iterable[str]) -> list[str]:
    """The references with a default (``${BASE_DIR:-/data}``) of variables that need not be set, in
    first-use order: a variable also referred to without a default must be set, so its defaults never apply."""
    tokens = list(tokens)
    required = set(referenced_names(tokens))
    found: dict[str, None] = {}
    for token in tokens:
        found.update(dict.fromkeys(m.group(0) for m in SHELL_REF.finditer(token)
                                   if m.group(2) is not None and m.group(1) not in required))
    return list(found)
