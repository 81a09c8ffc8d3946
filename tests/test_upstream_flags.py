"""Every flag upstream slime's parser registers parses here as it does there: generated, one case per
row, from tests/reference/upstream_slime_flags.tsv (flag, argparse action, type, nargs, default,
choices and dest of upstream's ``slime/utils/arguments.py``; Megatron flags with slime's defaults).

A row's expectations are read from the TSV alone, never from this project's registry: the
attribute a flag sets (what a custom function written for upstream reads), its default after
argparse's own conversion (a string default goes through ``type``), how it takes values (a switch,
a ``--no-`` pair, one value, ``+``/``*`` lists, a repeatable flag), the type a value is converted
to, and that every upstream choice is accepted (this project may accept more).
"""

from __future__ import annotations

import csv
import json

import pytest

from slime.arguments.parser import ArgumentProblems, parse_argv
from tests.conftest import REFERENCE

TSV = REFERENCE / "upstream_slime_flags.tsv"


def _rows() -> list[dict]:
    with TSV.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _rows()
# What a value of each upstream type becomes: (argv token, parsed value).
SAMPLES = {"int": ("3", 3), "float": ("0.25", 0.25), "str": ("3", "3"), "json.loads": ('{"a": [1]}', {"a": [1]})}
CONVERT = {"int": int, "float": float, "str": str, "json.loads": json.loads}


def _dest(row: dict) -> str:
    return row["dest"] or row["flag"].lstrip("-").replace("-", "_")


def _default(row: dict):
    """The attribute's value when the flag is absent, as argparse leaves it upstream."""
    action = row["action"]
    if not row["default"]:
        return {"store_true": False, "store_false": True}.get(action)
    value = json.loads(row["default"])
    if isinstance(value, str) and not action:  # argparse converts a string default with the flag's type
        value = CONVERT[row["type"] or "str"](value)
    return value


def _parsed(argv: list[str], row: dict):
    return getattr(parse_argv(argv), _dest(row))


def _rejects(argv: list[str]) -> bool:
    try:
        parse_argv(argv)
    except ArgumentProblems:
        return True
    return False


def test_the_reference_lists_every_upstream_flag_once():
    flags = [row["flag"] for row in ROWS]
    assert len(flags) == len(set(flags)) == 223


@pytest.fixture(scope="module")
def defaults():
    return parse_argv([])


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["flag"])
def test_upstream_flag_has_upstream_attribute_and_default(row, defaults):
    args = defaults
    assert hasattr(args, _dest(row)), f"{row['flag']} sets no attribute {_dest(row)}"
    value, expected = getattr(args, _dest(row)), _default(row)
    assert value == expected and type(value) in (type(expected), float if type(expected) is int else type(expected))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["flag"])
def test_upstream_flag_takes_values_as_upstream(row):
    option, action, nargs = row["flag"], row["action"], row["nargs"]
    if action == "store_true":
        assert _parsed([option], row) is True
        assert _rejects([option, "x"])
    elif action == "store_false":
        assert _parsed([option], row) is False
        assert _rejects([option, "x"])
    elif action == "<argparse.BooleanOptionalAction>":
        assert _parsed([option], row) is True
        assert _parsed(["--no-" + option[2:]], row) is False
    elif action == "append":
        assert _parsed([option, "a", option, "b"], row) == ["a", "b"]
    else:
        assert action == "", f"an action this test does not know: {action}"
        token, value = SAMPLES[row["type"] or "str"]
        if row["choices"]:
            token = value = json.loads(row["choices"])[0]
        if nargs in ("+", "*"):
            parsed = _parsed([option, token, token], row)
            assert parsed == [value, value] and type(parsed[0]) is type(value)
            assert _rejects([option]) if nargs == "+" else _parsed([option], row) == []
        else:
            parsed = _parsed([option, token], row)
            assert parsed == value and type(parsed) is type(value)
            assert _rejects([option, token, token])
            assert _rejects([option])
        if row["type"] == "int":
            assert _rejects([option, "2.5"])


@pytest.mark.parametrize("row", [row for row in ROWS if row["choices"]], ids=lambda row: row["flag"])
def test_upstream_flag_accepts_every_upstream_choice(row):
    for choice in json.loads(row["choices"]):
        parsed = _parsed([row["flag"], choice], row)
        assert parsed == ([choice] if row["nargs"] in ("+", "*") else choice)
