"""Math answer checking with upstream slime's meaning (``--rm-type math`` and ``deepscaler``).

The answer is the content of the response's last ``\\boxed{…}``; a response without ``\\boxed`` has
none and scores 0 (no guessing from the last number). A label holding ``\\boxed`` is unwrapped the
same way. Answer and label agree when either

- their Hendrycks (MATH) normalizations are equal (``mathd_normalize``: ``\\frac12`` = ``\\frac{1}{2}``,
  ``45^\\circ`` = ``45``, ``0.5`` = ``\\frac{1}{2}``, ``x = 5`` = ``5``, ``\\dfrac`` = ``\\frac``, units
  in ``\\text{ …}`` dropped), or
- sympy finds their difference 0 after a looser normalization (``math_sympy.sympy_equal``: LaTeX to
  text, unit words, ``$``, ``%``, case), element by element for tuples and intervals, where an
  unreduced fraction must match exactly and an integer must match an integer.

``deepscaler`` grades only the text after the last ``</think>`` (or after the first ``###Response``);
a response with neither marker scores 0. A label may be a list of accepted answers.
"""

from __future__ import annotations

import re

from slime.rewards.math_sympy import sympy_equal

_TEXT_WRAPPED = re.compile(r"^\\text\{(?P<text>.+?)\}$")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` (braces balanced): from the last ``\\boxed`` (else the last
    ``\\fbox``) to the brace that closes the first one opened after it; None when that is not the form
    ``\\boxed{content}`` or the braces never close."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
    if start < 0:
        return None
    depth = 0
    for end in range(start, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                whole = text[start:end + 1]
                return whole[len("\\boxed{"):-1] if whole.startswith("\\boxed{") else None
    return None


def extract_answer(text: str) -> str | None:
    """The answer of a response (or of a boxed label): its last boxed content; None without ``\\boxed``."""
    return last_boxed(text) if "\\boxed" in text else None


def mathd_normalize(answer: str | None) -> str | None:
    """The Hendrycks MATH normalization of an answer (``None`` stays ``None``); an answer it cannot
    take apart comes back only stripped (and unwrapped from ``\\text{}``)."""
    if answer is None:
        return None
    answer = answer.strip()
    wrapped = _TEXT_WRAPPED.search(answer)
    if wrapped:
        answer = wrapped["text"].strip()
    try:
        return _mathd_strip(answer)
    except ValueError:
        return answer


def _mathd_strip(text: str) -> str:
    for old, new in (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"), ("\\left", ""),
                     ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", "")):
        text = text.replace(old, new)
    if "\\text{ " in text:  # a unit on the right: "5 \text{ cm}"
        parts = text.split("\\text{ ")
        if len(parts) != 2:
            raise ValueError("more than one unit")
        text = parts[0]
    text = text.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "k = 5": the value
        text = sides[1]
    text = _braced_sqrt(text).replace(" ", "")
    text = _braced_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_as_frac(text)


def _braced_sqrt(text: str) -> str:
    """``\\sqrt3`` → ``\\sqrt{3}`` (one character after an unbraced ``\\sqrt``)."""
    pieces = text.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise ValueError("\\sqrt without an argument")
        out += "\\sqrt" + (piece if piece[0] == "{" else "{" + piece[0] + "}" + piece[1:])
    return out


def _braced_fracs(text: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}``, ``\\frac1{72}`` → ``\\frac{1}{72}``; the text as it is when a
    ``\\frac`` has fewer than two characters after it."""
    pieces = text.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\frac"
        if piece.startswith("{"):
            out += piece
            continue
        if len(piece) < 2:
            return text
        numerator, rest = piece[0], piece[1:]
        out += "{" + numerator + "}" + (rest if rest[0] == "{" else "{" + rest[0] + "}" + rest[1:])
    return out


def _slash_as_frac(text: str) -> str:
    """``3/4`` → ``\\frac{3}{4}`` for two plain integers."""
    parts = text.split("/")
    if len(parts) == 2 and all(re.fullmatch(r"-?\d+", p) and str(int(p)) == p for p in parts):
        return "\\frac{" + parts[0] + "}{" + parts[1] + "}"
    return text


def answers_agree(answer: str, label: str) -> bool:
    """An extracted answer against a label (both already unwrapped from ``\\boxed``)."""
    return mathd_normalize(answer) == mathd_normalize(label) or sympy_equal(answer, label)


def math_correct(response: str, label) -> bool:
    """``--rm-type math``: the response's boxed answer against the (unwrapped) label; an empty label
    and a response without ``\\boxed`` are never right."""
    if not label:
        return False
    label = str(label)
    if "\\boxed" in label:
        label = extract_answer(label)
        if label is None:
            return False
    answer = extract_answer(response or "")
    return answer is not None and answers_agree(answer, label)


def deepscaler_correct(response: str | None, label) -> bool:
    """``--rm-type deepscaler``: the boxed answer after the reasoning (the last ``</think>``, else the first
    ``###Response``), against the label or any of a list of labels."""
    if not response:
        return False
    if "</think>" in response:
        solution = response.rsplit("</think>", 1)[1]
    elif "###Response" in response:
        solution = response.split("###Response", 1)[1]
    else:
        return False
    answer = extract_answer(solution)
    if answer is None or label == "":
        return False
    labels = label if isinstance(label, (list, tuple)) else [label]
    unwrapped = [extract_answer(str(x)) if "\\boxed" in str(x) else str(x) for x in labels]
    return any(truth is not None and answers_agree(answer, truth) for truth in unwrapped)
