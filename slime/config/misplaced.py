"""Upstream habits on a Hydra command line, answered with the override that was meant.

A user coming from bash launchers types the trainer's flags (``--lr 2e-6``) or a flag's bare key
(``lr=2e-6``) where Hydra takes overrides; Hydra's answer is its usage text or "no group or key".
``split`` takes such tokens off a command line (so that Hydra composes the rest), and ``hints``
says, with the composed config at hand, which override each meant: ``optimizer.lr=2e-6`` when the
config has the key in a group, ``+group.key=value`` in the group that holds the flag's neighbours
when it has not. Nothing here imports Hydra.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from slime.config.flatten import ARRAY_GROUPS, SETTINGS
from slime.config.overrides import quote_value
from slime.arguments.registry import flag_by_option
from slime.arguments.flags import CONST, NEGATABLE, SWITCH, Flag

# Hydra's own options (and their short forms): never a trainer flag here.
HYDRA_OPTIONS = {"--help", "--hydra-help", "--version", "--cfg", "--resolve", "--package", "--run", "--multirun",
                 "--shell-completion", "--config-path", "--config-name", "--config-dir", "--experimental-rerun",
                 "--info", "-h", "-c", "-p", "-r", "-m", "-sc", "-cp", "-cn", "-cd", "-i"}
_PLAIN_VALUE = r"[A-Za-z0-9_@%+:,./-]+"


@dataclass(frozen=True)
class Misplaced:
    """A trainer flag (``--lr 2e-6``) or a flag's bare key (``lr=2e-6``) where an override belongs."""

    typed: str  # as the user typed it
    flag: Flag
    key: str  # the config key of the flag (its name without dashes, in snake_case)
    values: tuple[str, ...]  # the values it was given; () for a switch
    negated: bool = False  # --no-x


def _key(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _is_value(token: str) -> bool:
    """A token that can be a flag's value, not the next option or override."""
    if token.startswith("-"):
        return token[1:2].isdigit() or token[1:2] == "."  # a negative number
    return "=" not in token


def _flag_token(tokens: list[str], i: int) -> tuple[Misplaced, int] | None:
    """The trainer flag at ``tokens[i]`` with the values it takes, and the index after them."""
    option, eq, inline = tokens[i].partition("=")
    f = flag_by_option().get(option)
    if f is None or option in HYDRA_OPTIONS:
        return None
    negated = option in f.off_names
    if f.kind in (SWITCH, NEGATABLE) or (f.kind == CONST and f.nargs == 0):
        return Misplaced(tokens[i], f, _key(f.names[0]), (), negated), i + 1
    if eq:
        return Misplaced(tokens[i], f, _key(f.names[0]), (inline,)), i + 1
    end = i + 1
    many = f.is_list
    while end < len(tokens) and _is_value(tokens[end]) and (many or end == i + 1):
        end += 1
    return Misplaced(" ".join(tokens[i:end]), f, _key(f.names[0]), tuple(tokens[i + 1:end])), end


def _bare_key(token: str, groups: set[str]) -> Misplaced | None:
    """``lr=2e-6`` (or ``+lr=2e-6``): an override whose key is no group or setting but a flag's key."""
    if token.startswith("-") or "=" not in token:
        return None
    key, _, value = token.lstrip("+").partition("=")
    if any(ch in key for ch in "./@") or key in ARRAY_GROUPS or key in SETTINGS or key in groups or key == "hydra":
        return None
    f = flag_by_option().get("--" + key.replace("_", "-"))
    return Misplaced(token, f, _key(f.names[0]), (value,)) if f is not None else None


def split(args: list[str], groups: set[str] = frozenset(),
          own: frozenset[str] = frozenset()) -> tuple[list[str], list[Misplaced]]:
    """``args`` without the trainer flags and bare flag keys in it, and those taken off. ``groups``: the
    config groups of the search path (a bare ``model=...`` chooses one); ``own``: options of the command
    itself that share a trainer flag's name (``train.py --dry-run``), left in place."""
    rest, misplaced, i = [], [], 0
    while i < len(args):
        found = _flag_token(args, i) if args[i].startswith("--") and args[i].partition("=")[0] not in own else None
        if found:
            misplaced.append(found[0])
            i = found[1]
            continue
        bare = _bare_key(args[i], groups)
        if bare:
            misplaced.append(bare)
        else:
            rest.append(args[i])
        i += 1
    return rest, misplaced


def _group_of(m: Misplaced, config: dict) -> tuple[str, bool]:
    """(the group whose key this is, whether the config has it): the group that has the key, else the
    group holding most flags of the flag's own section of the parser, else misc."""
    for group in ARRAY_GROUPS:
        keys = config.get(group) if isinstance(config.get(group), dict) else {}
        if any(_key(name) in keys for name in m.flag.names):
            return group, True
    options = flag_by_option()
    neighbours = Counter(group for group in ARRAY_GROUPS for key in (config.get(group) or {})
                         if isinstance(config.get(group), dict)
                         and getattr(options.get("--" + str(key).replace("_", "-")), "group", None) == m.flag.group)
    return (neighbours.most_common(1)[0][0] if neighbours else "misc"), False


def _value(m: Misplaced) -> str:
    if not m.values:
        return "false" if m.negated else "true"
    if m.flag.is_list:
        return "[" + ",".join(v if _plain(v) else quote_value(v) for v in m.values) + "]"
    return m.values[0] if _plain(m.values[0]) else quote_value(m.values[0])


def _plain(text: str) -> bool:
    import re

    return re.fullmatch(_PLAIN_VALUE, text) is not None


def override_for(m: Misplaced, config: dict) -> str:
    """The Hydra override ``m`` meant, for the composed ``config`` (a plain dict, interpolations kept)."""
    group, present = _group_of(m, config)
    key = next((_key(name) for name in m.flag.names if _key(name) in (config.get(group) or {})), m.key)
    return f"{'' if present else '+'}{group}.{key}={_value(m)}"


def hints(misplaced: list[Misplaced], config: dict) -> list[str]:
    """One message per misplaced token: what Hydra takes instead."""
    messages = []
    for m in misplaced:
        meant = override_for(m, config)
        group = meant.lstrip("+").partition(".")[0]
        if m.typed.startswith("-"):
            messages.append(f"{m.typed}: the trainer's flags go through Hydra overrides here (each flag is a key "
                            f"of its config group): write {meant}")
        else:
            messages.append(f"override {m.typed}: {m.key} is not a top-level key but the key of {m.flag.name} in "
                            f"the {group} group: did you mean {meant}?")
    return messages
