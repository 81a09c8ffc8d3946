"""Bash words from argv tokens: shell references kept, every other character literal.

A token may refer to environment variables as ``${NAME}`` (``${BASE_FOLDER}/Qwen3-4B``); the
reference is expanded when the generated file is sourced, after ``require_set`` has stopped the
sourcing, naming the variable, if it is unset or empty. Everything else in a token is quoted so
bash reads it back byte for byte: quotes, ``$``, backticks, globs, newlines, leading dashes, unicode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SHELL_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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
    """The variable names a token refers to."""
    return SHELL_REF.findall(token)


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
        parts.append(f'"${{{match.group(1)}}}"')
        last = match.end()
    parts.append(_quote_literal(token[last:], first=last == 0))
    word = "".join(parts)
    return word if word else "''"


def expand(token: str, environ: Mapping[str, str]) -> str:
    """What sourcing does to a token: substitute each ``${NAME}``; unset or empty is an error naming it."""
    def substitute(match: re.Match) -> str:
        value = environ.get(match.group(1))
        if not value:
            raise KeyError(match.group(1))
        return value

    return SHELL_REF.sub(substitute, token)


def referenced_names(tokens: Iterable[str]) -> list[str]:
    """Every variable the tokens refer to, in first-use order."""
    names: dict[str, None] = {}
    for token in tokens:
        names.update(dict.fromkeys(shell_refs(token)))
    return list(names)
