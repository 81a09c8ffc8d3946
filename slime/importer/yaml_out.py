"""YAML in the project's hand-written style: block mappings, one-line lists, plain scalars where
safe, shell references escaped for OmegaConf (``\\${BASE_DIR}``), numbers as the launcher spelled them."""

from __future__ import annotations

import json
import re

import yaml

from slime.config.overrides import escape_interpolation
from slime.importer.convert import RawNumber

_PLAIN = re.compile(r"[A-Za-z0-9_./\\$@%+-][A-Za-z0-9_./\\${}@%+=,:-]*")


def _reads_back_as_string(text: str) -> bool:
    """Whether a plain scalar reads back as this very string (not a number, bool, null, …)."""
    from omegaconf._utils import get_yaml_loader

    try:
        return yaml.load(f"v: {text}", Loader=get_yaml_loader()) == {"v": text}
    except yaml.YAMLError:
        return False


def scalar(value, in_flow: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, int):
        return str(value)
    text = escape_interpolation(str(value))
    flow_safe = not in_flow or not any(ch in text for ch in "{}[],")
    if _PLAIN.fullmatch(text) and flow_safe and ": " not in text and _reads_back_as_string(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(scalar(item, in_flow=True) for item in v) + "]"
    return scalar(v)


def _needs_block(items: list) -> bool:
    return any(scalar(item, in_flow=True).startswith('"') for item in items)


def mapping(entries: dict, indent: str = "") -> str:
    """``key: value`` lines; a list whose items would need quotes inside brackets is a block list."""
    lines = []
    for key, v in entries.items():
        if isinstance(v, list) and v and _needs_block(v):
            lines.append(f"{indent}{key}:\n" + "".join(f"{indent}  - {scalar(item)}\n" for item in v))
        else:
            lines.append(f"{indent}{key}: {value(v)}\n")
    return "".join(lines)
