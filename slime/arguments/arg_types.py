"""Value converters for command-line flags, named so the docs and error messages can show them.

Each converter takes the string argparse hands it and returns the typed value, or raises
``argparse.ArgumentTypeError`` with a message that says what a valid value looks like.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import re
from decimal import Decimal, InvalidOperation


def json_object(text: str) -> dict:
    """A JSON object such as ``{"NCCL_DEBUG": "WARN"}``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({err.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object ({{...}}), got {type(value).__name__} {text!r}")
    return value


def json_value(text: str):
    """Any JSON value: object, list, number, string, true/false/null."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r} ({err.msg})") from None


def json_list(text: str) -> list:
    """A JSON list such as ``["a", "b"]``."""
    value = json_value(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"expected a JSON list ([...]), got {text!r}")
    return value


_SI = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_IEC = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_SUFFIXED = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)")


def human_readable_int(text: str) -> int:
    """An integer, optionally with an SI (``32k``) or IEC (``4Gi``) suffix."""
    text = text.strip()
    match = _SUFFIXED.fullmatch(text)
    if match:
        number, suffix = match.groups()
        if suffix in _IEC:
            if "." in number:
                raise argparse.ArgumentTypeError(f"IEC suffixes take whole numbers, got {text!r}")
            return int(number) * _IEC[suffix]
        try:
            return int(Decimal(number) * _SI[suffix])
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            pass
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer such as 4096, 32k or 4Gi, got {text!r}"
        ) from None


def nullable_str(text: str) -> str | None:
    """A string, where an empty string or ``None`` means unset."""
    return None if text in ("", "None") else text


_LIST_OPS = {ast.Add: operator.add, ast.Mult: operator.mul}


def _eval_layer_pattern(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.List):
        return [_eval_layer_pattern(element) for element in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in _LIST_OPS:
        return _LIST_OPS[type(node.op)](_eval_layer_pattern(node.left), _eval_layer_pattern(node.right))
    raise ValueError(ast.dump(node))


def moe_freq_type(text: str) -> int | list[int]:
    """A layer frequency (--moe-layer-freq, --linear-attention-freq): an integer N or a per-layer 0/1 list.

    The list may be written as Megatron-LM accepts it, e.g. ``[0,1,1]`` or ``([0]*3+[1]*58)``;
    it is evaluated as list arithmetic only, never as Python code.
    """
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        value = _eval_layer_pattern(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, TypeError):
        value = None
    if not isinstance(value, list) or any(v not in (0, 1) for v in value):
        raise argparse.ArgumentTypeError(
            f"expected an integer or a list of 0/1 per layer such as [0,1,1] or ([0]*3+[1]*58), got {text!r}"
        )
    return value


def format_number(value: int | float) -> str:
    """A number spelled as a reader expects: ``1e-6`` rather than Python's ``1e-06``."""
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def moe_layer_pattern(freq: int | list[int], num_layers: int) -> list[int]:
    """The 0/1 per layer that --moe-layer-freq describes (megatron-core's reading of it)."""
    if isinstance(freq, list):
        return list(freq)
    return [1 if i % freq == 0 else 0 for i in range(num_layers)]
