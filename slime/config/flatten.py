"""A composed config, as plain data, turned into argv tokens per bash array.

Inside an array group every key is a flag without its dashes, in snake_case; its value is
written by the flag's kind (taken from the parser): ``true`` on a switch writes the bare flag,
``false``/``null`` writes nothing (a flag with a ``--no-`` form writes that form for an explicit
``false``), a list writes the flag once followed by every element, a mapping writes JSON, and a
scalar starting with ``-`` is written ``--flag=value`` (a repeatable flag is written once per element). Floats keep the short spelling a reader
expects (``1e-6``, not ``1e-06``). Problems name the config key; the caller adds the file.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

from slime.arguments.arg_types import format_number
from slime.arguments.parser import looks_like_option
from slime.arguments.registry import flag_by_option
from slime.arguments.flags import APPEND, CONST, NEGATABLE, SWITCH, Flag

ARRAY_GROUPS = ("cluster", "model", "ckpt", "rollout", "eval", "perf", "grpo", "optimizer", "wandb", "sglang", "misc")
# Top-level keys that are not arrays.
SETTINGS = {
    "run": "values shared by interpolation (${run.model_dir}); never written as flags",
    "roles": "per-role overrides {actor: {...}, critic: {...}}, written to the --megatron-config-path file",
    "env": "extra environment variables for the training job (Ray runtime environment)",
    "entry_point": "the trainer's entry point the launcher runs: train.py (the default) or train_async.py",
}
_LIST_LITERAL_TYPES = ("moe_freq_type", "json_value", "json_list")


def array_name(group: str) -> str:
    return f"{group.upper()}_ARGS"


@dataclass(frozen=True)
class KeyProblem:
    key: str
    message: str
    flags: tuple[str, ...] = ()


@dataclass
class Flattened:
    arrays: dict[str, list[list[str]]] = field(default_factory=dict)  # array name → one token list per flag
    flag_keys: dict[str, str] = field(default_factory=dict)  # option written → config key
    problems: list[KeyProblem] = field(default_factory=list)


def _scalar_text(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value)
    return str(value)


def _compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def value_tokens(f: Flag, option: str, value) -> list[str]:
    """The tokens ``option: value`` becomes; ValueError says what the flag accepts instead."""
    if f.kind in (SWITCH, NEGATABLE) or (f.kind == CONST and f.nargs == 0):
        if value is None or value is False and f.kind != NEGATABLE:
            return []
        if value is True:
            return [option]
        if value is False:
            return [f.off_names[f.names.index(option)] if option in f.names else option]
        raise ValueError(f"{option} is a switch: use true or false, not {value!r}")
    if value is None:
        return []
    if isinstance(value, bool):
        raise ValueError(f"{option} takes a {f.type_name} value, not {str(value).lower()}")
    if isinstance(value, dict):
        return [option, json.dumps(value, ensure_ascii=False)]
    if isinstance(value, list):
        if not f.is_list:
            if getattr(f.type, "__name__", "") in _LIST_LITERAL_TYPES:
                return [option, _compact_json(value)]
            raise ValueError(f"{option} takes one {f.type_name} value, not a list")
        if any(isinstance(v, (list, dict)) for v in value):
            raise ValueError(f"{option} takes a flat list of {f.type_name.removeprefix('list[').rstrip(']')} values")
        items = [_scalar_text(v) for v in value]
        bad = [item for item in items if looks_like_option(item)]
        if bad:
            raise ValueError(f"{option}: list element {bad[0]!r} starts with '-' and would be read as a flag")
        if f.kind == APPEND:  # a repeatable flag: once per element
            return [token for item in items for token in (option, item)]
        return [option, *items] if items else []
    text = _scalar_text(value)
    if text.startswith("-"):
        return [f"{option}={text}"]
    return [option, text]


def suggest_flag(option: str) -> str:
    """": did you mean lr (--lr)?" for a misspelled flag, or nothing when no flag is close."""
    close = difflib.get_close_matches(option, flag_by_option().keys(), n=1, cutoff=0.7)
    return f": did you mean {close[0].lstrip('-').replace('-', '_')} ({close[0]})?" if close else ""


def flatten(config: dict) -> Flattened:
    """Tokens per array (in ARRAY_GROUPS order, keys in config order) and every problem found."""
    out = Flattened()
    for key in config:
        if key not in ARRAY_GROUPS and key not in SETTINGS:
            close = difflib.get_close_matches(str(key), [*ARRAY_GROUPS, *SETTINGS], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            out.problems.append(KeyProblem(str(key), f"unknown top-level key {key!r}: arrays are "
                                           f"{', '.join(ARRAY_GROUPS)}; settings are {', '.join(SETTINGS)}{hint}"))
    options = flag_by_option()
    written: dict[str, list[str]] = {}
    for group in ARRAY_GROUPS:
        section = config.get(group) or {}
        lines: list[list[str]] = []
        out.arrays[array_name(group)] = lines
        if not isinstance(section, dict):
            out.problems.append(KeyProblem(group, f"{group} must be a mapping of flag names to values"))
            continue
        for key, value in section.items():
            config_key = f"{group}.{key}"
            if "-" in str(key):
                out.problems.append(KeyProblem(config_key, f"write flag keys in snake_case: "
                                               f"{str(key).replace('-', '_')}, not {key}"))
                continue
            option = "--" + str(key).replace("_", "-")
            f = options.get(option)
            if f is None:
                out.problems.append(KeyProblem(config_key, f"unknown flag {option}{suggest_flag(option)}", (option,)))
                continue
            try:
                line = value_tokens(f, option, value)
            except ValueError as err:
                out.problems.append(KeyProblem(config_key, str(err), (option,)))
                continue
            if option in out.flag_keys:
                first = out.flag_keys[option]
                if written.get(option) != line:
                    out.problems.append(KeyProblem(config_key, f"{option} is also set, differently, by {first}: "
                                                   "set it in one place", (option,)))
                continue  # the same flag with the same value twice: written once
            written[option] = line
            out.flag_keys[option] = config_key
            if line:
                lines.append(line)
    return out


def argv_of(arrays: dict[str, list[list[str]]]) -> list[str]:
    """All arrays concatenated, as train.py receives them."""
    return [token for lines in arrays.values() for line in lines for token in line]
