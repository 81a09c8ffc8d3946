"""Which tokens of a conversation an SFT step trains on (``--loss-mask-type``): the assistant's turns.

The conversation is rendered once with the tokenizer's chat template and tokenized with character
offsets; a token counts when its characters lie inside an assistant turn's trained span. Each mask
type names the chat format of a model family by where an assistant turn starts (the role header,
not trained on) and ends (the end marker, trained on, so the model learns to stop):

- ``qwen``: Qwen2/2.5's ``<|im_start|>assistant\\n`` … ``<|im_end|>``;
- ``qwen3``, ``qwen3_5``: the same markers; the empty reasoning block these templates put at the
  start of an answer given without thinking (``<think>\\n\\n</think>\\n\\n``) belongs to the header;
- ``distill_qwen``: DeepSeek-R1-Distill's ``<｜Assistant｜>`` … ``<｜end▁of▁sentence｜>``.

Everything outside those spans (system and user turns, tool results, headers) has mask 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EMPTY_THINK = r"(?:<think>\s*</think>\s*)?"


@dataclass(frozen=True)
class ChatFormat:
    header: str  # regex of an assistant turn's header (not trained on)
    end: str  # the literal end marker of a turn (trained on)


FORMATS = {
    "qwen": ChatFormat(re.escape("<|im_start|>assistant\n"), "<|im_end|>"),
    "qwen3": ChatFormat(re.escape("<|im_start|>assistant\n") + _EMPTY_THINK, "<|im_end|>"),
    "qwen3_5": ChatFormat(re.escape("<|im_start|>assistant\n") + _EMPTY_THINK, "<|im_end|>"),
    "distill_qwen": ChatFormat(re.escape("<｜Assistant｜>"), "<｜end▁of▁sentence｜>"),
}


class LossMaskError(ValueError):
    """A conversation whose assistant turns the mask type cannot find; the message says why."""


def assistant_spans(text: str, mask_type: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` (a rendered conversation) trained on: each assistant turn's content
    and its end marker; a turn cut off before its end marker runs to the end of the text."""
    chat = FORMATS[mask_type]
    spans = []
    for header in re.finditer(chat.header, text):
        start = header.end()
        end = text.find(chat.end, start)
        spans.append((start, len(text) if end < 0 else end + len(chat.end)))
    return spans


def tokens_and_loss_mask(tokenizer, messages: list[dict], mask_type: str,
                         chat_template_kwargs: dict | None = None) -> tuple[list[int], list[int]]:
    """The conversation's token ids and, per token, 1 where it is part of an assistant turn."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, **(chat_template_kwargs or {}))
    spans = assistant_spans(text, mask_type)
    if not spans:
        shown = text if len(text) <= 120 else text[:120] + "…"
        raise LossMaskError(f"no assistant turn in the format of --loss-mask-type {mask_type} (a turn starts with "
                            f"{FORMATS[mask_type].header!r}); the chat template rendered {shown!r}: choose the mask "
                            f"type of this tokenizer's family ({', '.join(FORMATS)})")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = []
    for begin, end in encoded["offset_mapping"]:
        mask.append(int(any(start <= begin and end <= stop for start, stop in spans) and end > begin))
    return list(encoded["input_ids"]), mask
