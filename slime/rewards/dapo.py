"""``--rm-type dapo``: DAPO's rule (Minerva's answer format), as upstream slime scores it.

Only the last 300 characters of the response count. The prediction is the text after the last
``Answer:`` line there (case-insensitive), ``[INVALID]`` without one (a ``\\boxed{}`` alone is not
read); prediction and label are normalized the Minerva way (the part after the last ``=``, spaces,
units and filler words dropped, ``\\text``/``\\textbf``/``\\overline``/``\\boxed`` unwrapped, ``\\fracab`` →
``\\frac{a}{b}``, ``$`` and thousands commas removed), and the label must be an integer (DAPO's answers
all are: another label raises). The reward is a dict, ``{"score": 1.0 or -1.0, "acc": bool, "pred": str}``,
read with ``--reward-key score`` as upstream's recipes do.
"""

from __future__ import annotations

import re

WINDOW = 300
ANSWER_LINE = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")
# Minerva's replacements, then the words and marks it drops, in its order.
REPLACEMENTS = (("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""), ("mbox", "text"),
                (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"))
DROPPED = ("square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units", "\\ldots", "sue", "points",
           "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals", "edges",
           "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2",
           "\\text{}^3", "\\text{\n}", "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"',
           "\\dots", "<|im_end|>", "<|endoftext|>")
_UNWRAP = [re.compile(r"\\" + name + r"\{(.*?)\}") for name in ("text", "textbf", "overline")]


def normalize_final_answer(answer) -> str:
    text = str(answer).split("=")[-1]
    for old, new in REPLACEMENTS:
        text = text.replace(old, new)
    for dropped in DROPPED:
        text = text.replace(dropped, "")
    text = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", r"$\3$", text)  # the first $…$ span
    for pattern in _UNWRAP:
        text = pattern.sub(r"\1", text)
    text = re.sub(r"\\boxed\{(.*)\}", r"\1", text)
    text = re.sub(r"(frac)([^{])(.)", r"frac{\2}{\3}", text)
    text = re.sub(r"(sqrt)([^{])", r"sqrt{\2}", text).replace("$", "")
    if text.replace(",", "").isdigit():
        text = text.replace(",", "")
    return text.strip()


def dapo_score(response: str, label) -> dict:
    solution = (response or "")[-WINDOW:]
    lines = ANSWER_LINE.findall(solution)
    prediction = normalize_final_answer(lines[-1] if lines else "[INVALID]")
    truth = str(int(float(normalize_final_answer(label))))
    correct = prediction == truth
    return {"score": 1.0 if correct else -1.0, "acc": correct, "pred": prediction}
