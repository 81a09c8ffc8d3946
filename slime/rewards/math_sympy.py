"""The symbolic half of the math answer check (upstream slime's rule): both sides normalized loosely
(LaTeX turned to text by pylatexenc, units, ``$``, ``%`` and case dropped), split into the elements of a
tuple or interval, and each pair of elements compared: unreduced fractions by their text, an integer
only with an integer, anything else by whether sympy simplifies their difference to 0.

Sympy only sees small expressions: at most two distinct letters (besides sqrt and frac) and no powers
written as ``^{…}``, ``^(…)``, chains ``a^b^c`` or exponents of two digits and more; unlike upstream,
``**`` and ``!`` are refused too, since sympy would evaluate ``9**9**9`` or ``99999!`` in full. A
reward call that still takes too long is ended by ``--reward-timeout`` (slime.rewards.pool).
"""

from __future__ import annotations

import re

UNIT_WORDS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week", "month",
              "year", "foot", "feet", "inch", "yard")
_UNITS = re.compile("(?:" + "|".join(UNIT_WORDS) + r")(?:es)?(?:s)? *(?:\^[0-9]+)?")
_UNSAFE = (re.compile(r"\^\{|\^\("), re.compile(r"\^[0-9]+\^"), re.compile(r"\^[0-9][0-9]+"), re.compile(r"\*\*|!"))
_FRACTION = re.compile(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$")
_THOUSANDS = re.compile(r"(\d),(\d\d\d)($|\D)")
_BRACKETS = "()[]"


def _latex_to_text(expr: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac")
    text = LatexNodes2Text().latex_to_text(expr)
    for symbol, word in (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*")):
        text = text.replace(symbol, word)
    return text.strip()


def _is_integer_value(value: float) -> bool:
    try:
        return abs(value - int(round(value))) <= 1e-7
    except (OverflowError, ValueError):  # inf, nan
        return False


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def without_thousands_commas(expr: str) -> str:
    """``1,000,000`` → ``1000000``; commas between tuple elements stay."""
    while True:
        shorter = _THOUSANDS.sub(r"\1\2\3", expr)
        if shorter == expr:
            return expr
        expr = shorter


def _is_integer_text(text: str) -> bool:
    value = _as_float(without_thousands_commas(text))
    return value is not None and _is_integer_value(value)


def sympy_normalize(expr: str | None) -> str | None:
    if expr is None:
        return None
    wrapped = re.search(r"^\\text\{(?P<text>.+?)\}$", expr)
    if wrapped:
        expr = wrapped["text"]
    for old, new in (("\\%", "%"), ("\\$", "$"), ("$", ""), ("%", ""), (" or ", " , "), (" and ", " , "),
                     ("million", "*10^6"), ("billion", "*10^9"), ("trillion", "*10^12")):
        expr = expr.replace(old, new)
    expr = re.sub(r"\^ *\\circ", "", _UNITS.sub("", expr))
    if expr[:1] == "{" and expr[-1:] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    value = _as_float(expr)
    if value is not None and _is_integer_value(value):
        expr = str(int(round(value)))
    if "\\" in expr:
        try:
            expr = _latex_to_text(expr)
        except Exception:  # noqa: BLE001 - text pylatexenc cannot read is compared as it is
            pass
    expr = re.sub(r"- *", "-", expr)
    expr = re.sub(r"([0-9]) +([0-9])", r"\1+\2", expr)  # a mixed number: 7 3/4 is 7+3/4
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _is_integer_text(expr):
        expr = str(int(float(without_thousands_commas(expr))))
    return expr


def split_elements(expr: str) -> list[str]:
    """The elements of a tuple or interval ``(a,b)``, ``[a,b)``; else the expression alone."""
    expr = without_thousands_commas(expr)
    if not expr:
        return []
    inner = expr[1:-1]
    if len(expr) > 2 and expr[0] in _BRACKETS and expr[-1] in _BRACKETS and not any(c in inner for c in _BRACKETS):
        return [element.strip() for element in inner.split(",")]
    return [expr]


def safe_for_sympy(expr: str) -> bool:
    letters = {c for c in expr.replace("sqrt", "").replace("frac", "") if c.isalpha()}
    return len(letters) <= 2 and not any(pattern.search(expr) for pattern in _UNSAFE)


def difference_is_zero(truth: str, given: str) -> bool:
    expr = f"({truth})-({given})"
    if not safe_for_sympy(expr):
        return False
    try:
        import sympy
        from sympy.parsing import sympy_parser

        transformations = sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)
        return sympy.simplify(sympy_parser.parse_expr(expr.replace("^", "**"), transformations=transformations)) == 0
    except Exception:  # noqa: BLE001 - what sympy cannot parse or simplify is not shown equal
        return False


def sympy_equal(given: str, truth: str) -> bool:
    """Whether the answer ``given`` equals the label ``truth`` by the symbolic rule."""
    truth, given = sympy_normalize(truth), sympy_normalize(given)
    if truth is None or given is None:
        return False
    if truth == given:
        return True
    if not given:
        return False
    truth_elements, given_elements = split_elements(truth), split_elements(given)
    if len(truth_elements) > 1 and (truth[0] != given[0] or truth[-1] != given[-1]):
        return False  # (a, b) is not [a, b]
    if len(truth_elements) != len(given_elements):
        return False
    for t, g in zip(truth_elements, given_elements):
        if _FRACTION.search(t) and _FRACTION.search(g):
            if t != g:  # an unreduced fraction is not the reduced one
                return False
        elif _is_integer_text(t) != _is_integer_text(g):
            return False
        elif not difference_is_zero(t, g):
            return False
    return True
