"""One record per command-line flag, shared by the parser, the argument docs and the config generator.

A ``Flag`` says everything a reader of the parser needs: its option strings, how it takes a
value (its *kind*), type, default, choices, help, the argument group it belongs to, who owns
it (slime, Megatron-LM or SGLang) and, for Megatron flags, which megatron-core config field
it feeds or which training-loop setting it controls.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

# Kinds: how the flag appears on a command line.
SWITCH = "switch"  # `--flag` stores `const`: True, or False for a `--no-x` flag whose dest is x
NEGATABLE = "negatable"  # `--flag` stores True, `--no-flag` stores False, default may be None
VALUE = "value"  # `--flag VALUE` (or several values when nargs is set)
APPEND = "append"  # `--flag VALUE`, repeatable: every occurrence's value, in order
CONST = "const"  # `--flag` (or `--flag CHOICE`) stores a fixed value: SGLang's deprecated spellings

SLIME, MEGATRON, SGLANG = "slime", "megatron", "sglang"


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    help: str
    group: str
    kind: str = VALUE
    type: Callable[[str], Any] | None = None
    default: Any = None
    nargs: str | int | None = None
    choices: tuple | None = None
    dest: str | None = None
    const: Any = None
    off_names: tuple[str, ...] = ()  # the `--no-` spellings of a NEGATABLE flag
    owner: str = SLIME
    feeds: str | None = None
    controls: str | None = None
    # What the trainer does not do yet: the flag parses, and a value other than its default is a
    # validation error that says so (slime.arguments.validation), never silently ignored.
    unimplemented: str | None = None

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def attr(self) -> str:
        if self.dest:
            return self.dest
        return self.name.lstrip("-").replace("-", "_")

    @property
    def is_list(self) -> bool:
        return self.kind == APPEND or (self.kind == VALUE and self.nargs not in (None, "?"))

    @property
    def type_name(self) -> str:
        if self.kind in (SWITCH, NEGATABLE) or (self.kind == CONST and self.nargs == 0):
            return "flag"
        base = getattr(self.type, "__name__", "str") if self.type else "str"
        return f"list[{base}]" if self.is_list else base

    def add_to(self, group: argparse._ActionsContainer) -> argparse.Action:
        common = {"dest": self.attr, "help": self.help}
        if self.kind == SWITCH:
            return group.add_argument(*self.names, action="store_const", const=self.const, default=self.default, **common)
        if self.kind == NEGATABLE:
            action = group.add_argument(*self.names, *self.off_names, action=_Negatable, nargs=0, default=self.default, **common)
            action.off_names = self.off_names
            return action
        if self.kind == APPEND:
            return group.add_argument(*self.names, action="append", type=self.type, default=self.default,
                                      metavar=_metavar(self), **common)
        if self.kind == CONST:
            return group.add_argument(
                *self.names, action=_ConstAfterChoice, nargs=self.nargs, const=self.const,
                default=self.default, choices=self.choices, **common,
            )
        return group.add_argument(
            *self.names, type=self.type, default=self.default, nargs=self.nargs,
            choices=self.choices, metavar=_metavar(self), **common,
        )


class _Negatable(argparse.Action):
    """`--x` stores True and `--no-x` stores False; unlike BooleanOptionalAction the default may stay None."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string not in self.off_names)


class _ConstAfterChoice(argparse.Action):
    """Stores `const` whether the flag takes no value or one of `choices` (SGLang's retired spellings)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const)


def _metavar(flag: Flag) -> str | None:
    if flag.choices:
        return "{" + ",".join(str(c) for c in flag.choices) + "}"
    return None


def flag(*names: str, help: str, group: str, **fields) -> Flag:
    """Shorthand used by the flag tables: ``flag("--lr", type=float, help=..., group=...)``."""
    if "choices" in fields and fields["choices"] is not None:
        fields["choices"] = tuple(fields["choices"])
    return Flag(names=names, help=help, group=group, **fields)


def negatable(*names: str, help: str, group: str, **fields) -> Flag:
    """`--x` / `--no-x`: True, False, or the default (often None: derived from other flags)."""
    off = tuple("--no-" + name[2:] for name in names)
    return Flag(names=names, off_names=off, help=help, group=group, kind=NEGATABLE, **fields)


def switch(*names: str, help: str, group: str, **fields) -> Flag:
    """A flag without a value: present means True, or False for a `--no-x` flag declared with ``default=True``."""
    default = fields.pop("default", False)
    return Flag(names=names, help=help, group=group, kind=SWITCH, default=default, const=not default, **fields)
