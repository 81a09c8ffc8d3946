"""Hydra's composition errors told the way the generator tells its own: what was typed, what is
wrong, and what would be right, instead of a list of every option or advice that leads astray.

- ``model=qwen3-4b``: an option no group folder has → the closest options (``did you mean qwen3-4B``);
- ``optimizer.lrr=1``: a key the config lacks, given without ``+`` → for an unknown flag the
  generator's "unknown flag --lrr: did you mean lr (--lr)?"; for a real flag, add it with ``+``.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from slime.config.flatten import ARRAY_GROUPS, suggest_flag

_MISSING_OPTION = re.compile(r"Could not find '(?P<group>[^']+)/(?P<option>[^'/]+)'")
_NOT_IN_STRUCT = re.compile(r"Key '(?P<key>[^']+)' is not in struct\s+full_key: (?P<full>\S+)")


def _options(group: str, config_dirs: list[Path]) -> list[str]:
    return sorted({p.stem for d in config_dirs for p in (Path(d) / group).glob("*.yaml")})


def _typed(hydra_args: list[str], needle: str) -> str:
    return next((arg for arg in hydra_args if needle in arg), needle)


def explain(message: str, hydra_args: list[str], config_dirs: list[Path]) -> list[str] | None:
    """The generator's messages for a Hydra failure it knows, or None to show Hydra's own."""
    missing = _MISSING_OPTION.search(message)
    if missing:
        group, option = missing["group"], missing["option"]
        options = _options(group, config_dirs)
        by_case = {o.lower(): o for o in options}
        close = ([by_case[option.lower()]] if option.lower() in by_case else
                 difflib.get_close_matches(option, options, n=3, cutoff=0.6))
        hint = (f": did you mean {' or '.join(close)}?" if close else
                f"; the options are {', '.join(options)}" if options else f"; there is no group {group}")
        return [f"{_typed(hydra_args, f'{group}={option}')}: {group} has no option {option!r}{hint}"]
    not_in_struct = _NOT_IN_STRUCT.search(message)
    if not_in_struct:
        full = not_in_struct["full"]
        group, _, key = full.rpartition(".")
        typed = _typed(hydra_args, f"{full}=")
        if group in ARRAY_GROUPS and "." not in key:
            option = "--" + key.replace("_", "-")
            from slime.utils.arguments import flag_by_option

            if option not in flag_by_option():
                return [f"override {typed}: unknown flag {option}{suggest_flag(option)}"]
        return [f"override {typed}: {full} is not in the config; to add it, write +{typed.lstrip('+')}"]
    return None
