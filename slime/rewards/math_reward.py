"""Math answer checking: the last ``\\boxed{…}`` (or, failing that, the last number) of a response,
compared with the label after normalization, numerically when both sides are numbers
(``0.5`` = ``1/2`` = ``\\frac{1}{2}`` = ``50%``).

A number is compared exactly (``Fraction``) only when it has at most ``MAX_DIGITS`` digits and an
exponent of at most ``MAX_EXPONENT``: ``1e10000000`` would otherwise make Python build 10**10000000
(seconds; ``1e1000000000`` takes hours) while holding its global lock. A larger one is compared as
text."""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_DECIMAL = re.compile(r"[+-]?(?P<digits>\d*\.?\d*)(?:[eE](?P<exponent>[+-]?\d+))?")
MAX_DIGITS = 1000
MAX_EXPONENT = 1000
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` (or ``\\fbox{…}``), braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, begin = 1, i
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[begin:i - 1] if depth == 0 else None


def extract_answer(response: str) -> str | None:
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed
    numbers = _NUMBER.findall(response)
    return numbers[-1] if numbers else None


def normalize(answer: str) -> str:
    text = answer.strip().strip("$").strip()
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    text = _FRAC.sub(r"(\1)/(\2)", text)
    text = text.replace(" ", "").rstrip(".")
    if text.startswith("(") and text.endswith(")") and text.count("(") == 1:
        text = text[1:-1]
    return text


def as_number(text: str) -> Fraction | None:
    text = text.replace(",", "")
    percent = text.endswith("%") or text.endswith("\\%")
    text = text.rstrip("%").rstrip("\\")
    match = re.fullmatch(r"\(?(-?[\d.]+)\)?/\(?(-?[\d.]+)\)?", text)
    try:
        value = _exact(match.group(1)) / _exact(match.group(2)) if match else _exact(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def _exact(text: str) -> Fraction:
    """``Fraction(text)`` for a decimal number small enough to build; ValueError for anything else."""
    number = _DECIMAL.fullmatch(text)
    if number is None or not number["digits"].strip("."):
        raise ValueError(f"not a decimal number: {text[:20]!r}")
    exponent = number["exponent"] or "0"
    if len(number["digits"]) > MAX_DIGITS or len(exponent.lstrip("+-0")) > 6 or abs(int(exponent)) > MAX_EXPONENT:
        raise ValueError("too many digits or too large an exponent to compare exactly")
    return Fraction(text)


def is_equivalent(predicted: str, label: str) -> bool:
    a, b = normalize(predicted), normalize(label)
    if a == b:
        return True
    x, y = as_number(a), as_number(b)
    return x is not None and y is not None and x == y


def math_correct(response: str, label) -> bool:
    answer = extract_answer(response)
    return answer is not None and is_equivalent(answer, str(label))
