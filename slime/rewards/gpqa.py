"""``--rm-type gpqa``: multiple choice, as upstream slime scores it (1.0 or 0.0).

The sample's metadata may give ``choices`` (a list, or a dict whose values are the choices),
``valid_letters`` and ``correct_letter``. The valid letters are ``valid_letters``, else one per choice
(A, B, …), else A to J. The correct letter is ``correct_letter``, else a one-letter label that is valid,
else a number label as an index into the letters, else the choice whose text equals the label's
(lower-cased, runs of other characters as one space; that choice is also kept as
``metadata["correct_answer"]``).

The response's letter is read after the last ``</think>``: the first of "answer/option/choice [is|:] X",
"X is [the] correct", "final answer/option [is|:] X" (case-insensitive, each tried once and kept only for
a valid letter), else the last standalone capital letter that is valid. With both letters known they
decide; otherwise the correct choice's text, ``correct_answer``, ``answer_text`` or a label of more than
one letter found as whole words in the response scores 1.0; otherwise a letter compares to the label.
"""

from __future__ import annotations

import re
import string

DEFAULT_LETTERS = list(string.ascii_uppercase[:10])
PATTERNS = (re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*([A-Z])", re.IGNORECASE),
            re.compile(r"([A-Z])\s*(?:is\s*(?:the)?\s*correct)", re.IGNORECASE),
            re.compile(r"final\s*(?:answer|option)\s*(?:is|:)?\s*([A-Z])", re.IGNORECASE))


def _after_thinking(text: str) -> str:
    return text.rsplit("</think>", 1)[-1] if text else ""


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def response_letter(response: str, letters: list[str]) -> str | None:
    if not response:
        return None
    text, valid = _after_thinking(response), {letter.upper() for letter in letters}
    for pattern in PATTERNS:
        found = pattern.search(text)
        if found and found.group(1).upper() in valid:
            return found.group(1).upper()
    return next((letter for letter in reversed(re.findall(r"\b([A-Z])\b", text)) if letter in valid), None)


def gpqa_reward(response: str | None, label, metadata: dict | None = None) -> float:
    if response is None:
        return 0.0
    metadata = metadata if metadata is not None else {}
    choices = metadata.get("choices")
    choices = list(choices.values()) if isinstance(choices, dict) else (list(choices) if choices is not None else None)
    letters = ([str(x).upper() for x in metadata["valid_letters"]] if metadata.get("valid_letters")
               else list(string.ascii_uppercase[:len(choices)]) if choices else DEFAULT_LETTERS)
    correct = metadata.get("correct_letter")
    correct = correct.strip().upper() if isinstance(correct, str) else None
    label_text = label.strip() if isinstance(label, str) else None
    one_letter_label = label_text is not None and len(label_text) == 1 and label_text.upper() in letters
    if one_letter_label and not correct:
        correct = label_text.upper()
    elif isinstance(label, (int, float)) and 0 <= int(label) < len(letters):
        correct = letters[int(label)]
    if not correct and choices and label_text:
        for index, choice in enumerate(choices):
            if _words(str(choice)) == _words(label_text):
                correct = letters[index]
                metadata.setdefault("correct_answer", choice)
                break
    letter = response_letter(response, letters)
    if letter and correct:
        return 1.0 if letter == correct else 0.0
    candidates = []
    if correct and choices and correct in letters and letters.index(correct) < len(choices):
        candidates.append(str(choices[letters.index(correct)]))
    candidates += [str(metadata[key]) for key in ("correct_answer", "answer_text") if metadata.get(key)]
    if label_text and not one_letter_label:
        candidates.append(label_text)
    said = f" {_words(_after_thinking(response))} "
    if any(target and f" {target} " in said for target in {_words(text) for text in candidates if text}):
        return 1.0
    if letter and not correct and label_text:
        return 1.0 if letter == label_text.upper() else 0.0
    return 0.0
