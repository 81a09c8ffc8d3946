"""Hydra's composition errors told the way the generator tells its own: what was typed, what is
wrong, and what would be right, instead of a list of every option or advice that leads astray.

- ``model=qwen3-4b``: an option no group folder has → the closest options (``did you mean qwen3-4B``);
- ``optimizer.lrr=1``: a key the config lacks, given without ``+`` → for an unknown flag the
  generator's "unknown flag --lrr: did you mean lr (--lr)?"; for a real flag, add it with ``+``;
- ``optimzer.lr=1``, ``modle=qwen3-4B``, ``~optimzer.lr``: a misspelled group or top-level key →
  the closest one (``did you mean optimizer.lr=1?``), not advice to add the misspelling with ``+``;
- ``--config-name run_qwen3_4b``: a primary config no folder has → the closest (``run_qwen3_4B``),
  or the list of them.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from slime.config.flatten import ARRAY_GROUPS, SETTINGS, suggest_flag

_MISSING_OPTION = re.compile(r"Could not find '(?P<group>[^']+)/(?P<option>[^'/]+)'")
_NOT_IN_STRUCT = re.compile(r"Key '(?P<key>[^']+)' is not in struct\s+full_key: (?P<full>\S+)")
_COULD_NOT_OVERRIDE = re.compile(r"Could not override '(?P<key>[^']+)'")
_CANNOT_DELETE = re.compile(r"Could not delete from config\. '(?P<key>[^']+)' does not exist")
_MISSING_PRIMARY = re.compile(r"Cannot find primary config '(?P<name>[^']+)'")


def primary_config_names(config_dirs: list[Path]) -> list[str]:
    """The primary configs of the folders: their ``run_*.yaml``, one launcher each."""
    return sorted({p.stem for d in config_dirs for p in Path(d).glob("run_*.yaml")})


def unknown_primary_config(name: str, names: list[str]) -> str:
    """What to say about ``--config-name name`` when no folder has it: the closest names, or all of them."""
    by_case = {n.lower(): n for n in names}
    close = [by_case[name.lower()]] if name.lower() in by_case else difflib.get_close_matches(name, names, n=3,
                                                                                               cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else f"the primary configs are {', '.join(names)}"
    return f"--config-name {name}: there is no primary config {name!r}: {hint}"


def _options(group: str, config_dirs: list[Path]) -> list[str]:
    return sorted({p.stem for d in config_dirs for p in (Path(d) / group).glob("*.yaml")})


def config_groups(config_dirs: list[Path]) -> list[str]:
    """The config groups: the folders of the search path that hold configs (Hydra's own left out)."""
    return sorted({p.parent.name for d in config_dirs for p in Path(d).glob("*/*.yaml")} - {"hydra"})


def _typed(hydra_args: list[str], needle: str) -> str:
    return next((arg for arg in hydra_args if needle in arg), needle)


def _typed_override(hydra_args: list[str], key: str) -> str:
    """The override as typed whose key is ``key`` (``+optimzer.lr=1`` for ``optimzer.lr``)."""
    return next((arg for arg in hydra_args if arg.lstrip("+~").partition("=")[0] == key), f"{key}=")


def _top_level_name(name: str, typed: str, config_dirs: list[Path]) -> str:
    """What to say about an override whose first name is neither a group nor a top-level key."""
    names = list(dict.fromkeys([*ARRAY_GROUPS, *SETTINGS, *config_groups(config_dirs)]))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    prefix = typed[:len(typed) - len(typed.lstrip("+~"))]
    if close:
        return f"override {typed}: there is no group or key {name!r}: did you mean {prefix}{close[0]}" \
               f"{typed[len(prefix) + len(name):]}?"
    return (f"override {typed}: there is no group or key {name!r}: the arrays are {', '.join(ARRAY_GROUPS)}; the "
            f"settings are {', '.join(SETTINGS)}; the other groups are "
            f"{', '.join(g for g in names if g not in ARRAY_GROUPS and g not in SETTINGS) or 'none'}")


def explain(message: str, hydra_args: list[str], config_dirs: list[Path]) -> list[str] | None:
    """The generator's messages for a Hydra failure it knows, or None to show Hydra's own."""
    primary = _MISSING_PRIMARY.search(message)
    if primary:
        return [unknown_primary_config(primary["name"], primary_config_names(config_dirs))]
    missing = _MISSING_OPTION.search(message)
    if missing:
        group, option = missing["group"], missing["option"]
        options = _options(group, config_dirs)
        by_case = {o.lower(): o for o in options}
        close = ([by_case[option.lower()]] if option.lower() in by_case else
                 difflib.get_close_matches(option, options, n=3, cutoff=0.6))
        if close:
            hint = f": did you mean {' or '.join(close)}?"
        elif options:
            hint = f"; the options are {', '.join(options)}"
        else:
            groups = difflib.get_close_matches(group, config_groups(config_dirs), n=1, cutoff=0.6)
            hint = f"; there is no group {group}" + (f": did you mean {groups[0]}?" if groups else "")
        return [f"{_typed(hydra_args, f'{group}={option}')}: {group} has no option {option!r}{hint}"]
    cannot_delete = _CANNOT_DELETE.search(message)
    if cannot_delete:
        key = cannot_delete["key"]
        typed = _typed_override(hydra_args, key)
        top = key.partition(".")[0]
        if top not in ARRAY_GROUPS and top not in SETTINGS:
            return [_top_level_name(top, typed, config_dirs)]
        return [f"override {typed}: {key} is not in the config, so there is nothing to delete"]
    not_in_struct = _NOT_IN_STRUCT.search(message)
    if not_in_struct:
        full = not_in_struct["full"]
        group, _, key = full.rpartition(".")
        overridden = _COULD_NOT_OVERRIDE.search(message)
        typed = _typed_override(hydra_args, overridden["key"]) if overridden else _typed(hydra_args, f"{full}=")
        if not group:  # the first name is unknown: a misspelled group or top-level key, not one to add
            return [_top_level_name(re.split(r"[/@]", full)[0], typed, config_dirs)]
        if group in ARRAY_GROUPS and "." not in key:
            option = "--" + key.replace("_", "-")
            from slime.arguments.registry import flag_by_option

            if option not in flag_by_option():
                return [f"override {typed}: unknown flag {option}{suggest_flag(option)}"]
        return [f"override {typed}: {full} is not in the config; to add it, write +{typed.lstrip('+')}"]
    return None
