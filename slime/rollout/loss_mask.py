"""Which tokens of a conversation an SFT step trains on (``--loss-mask-type``), by upstream slime's rules
(its ``MultiTurnLossMaskGenerator``). Every type trains assistant turns only; a message with
``step_loss_mask`` other than 1 trains nothing.

- ``qwen``: each message is rendered alone with the chat template (tools only with the first); from the
  second message on (system messages aside) the default system prompt the template puts first is cut
  off; an assistant message trains all but its generation prompt (``<|im_start|>assistant\\n``): the
  content, ``<|im_end|>`` and the newline after it. The lengths of both are measured on the template.
  With a tokenizer that has DeepSeek-R1-Distill's ``<｜Assistant｜>`` token, ``qwen`` is ``distill_qwen``.
- ``qwen3``: as ``qwen``, but each message is rendered beside a filler user message (after it for the
  first, before it for the others), so that every assistant turn is rendered as the template renders a
  final answer: with a Qwen3 template a history turn gets the empty reasoning block a final one gets.
- ``qwen3_5``: the whole conversation is rendered once (with the chat template keyword arguments) and
  its text tokenized with offsets (a fast tokenizer; the tokens must be the template's own). Each
  assistant turn trains from the end of its ``<|im_start|>assistant\\n`` header through ``<|im_end|>`` and
  the newline after it, except its start when that is the template's: an empty reasoning block
  (``<think>\\n\\n</think>\\n\\n``) or the opening ``<think>\\n`` of one. A token trains when any of its
  characters does. History turns are as the template renders them (Qwen3.5's drops their reasoning).
- ``distill_qwen``: the first message rendered with the generation prompt, then the last message's
  content as the response, the only tokens trained (no end token is added; turns between are left out).
"""

from __future__ import annotations

ASSISTANT_HEADER = "<|im_start|>assistant\n"
END = "<|im_end|>"
THINK_OPEN = "<think>\n"
EMPTY_THINK = "<think>\n\n</think>\n\n"
DISTILL_ASSISTANT = "<｜Assistant｜>"
PROBE = "FOR TESTING ONLY"
FILLER = {"role": "user", "content": "FOR CALCULATING LOSS MASK ONLY"}
MASK_TYPES = ("qwen", "qwen3", "qwen3_5", "distill_qwen")


class LossMaskError(ValueError):
    """A conversation or template the mask type cannot handle; the message says why."""


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _rendered_ids(tokenizer, messages: list[dict], **options) -> list[int]:
    return _ids(tokenizer, tokenizer.apply_chat_template(messages, tokenize=False, **options))


def _occurrences(sequence: list[int], part: list[int]) -> list[int]:
    return [i for i in range(len(sequence) - len(part) + 1) if sequence[i:i + len(part)] == part]


def template_lengths(tokenizer, options: dict) -> tuple[int, int]:
    """(tokens of the default system prompt the template puts first, tokens of its generation prompt),
    measured on two user messages as upstream measures them."""
    probe = [{"role": "user", "content": PROBE}] * 2
    raw = _ids(tokenizer, PROBE)
    if not raw:
        raise LossMaskError(f"cannot measure the chat template: the tokenizer encodes the probe message {PROBE!r} as "
                            "no tokens at all (--loss-mask-type qwen3_5 needs no probe)")
    ids = _rendered_ids(tokenizer, probe, **options)
    found = _occurrences(ids, raw)
    if len(found) != 2:
        raise LossMaskError(f"cannot measure the chat template: the probe message {PROBE!r} appears {len(found)} "
                            "times in its rendering, not twice")
    first, second = found
    suffix = len(ids) - len(raw) - second
    generation = len(_rendered_ids(tokenizer, probe, add_generation_prompt=True, **options)) - len(ids)
    return first - ((second - first) - suffix - len(raw)), generation


def _per_message(tokenizer, messages: list[dict], tools, options: dict, render) -> tuple[list[int], list[int]]:
    """qwen and qwen3: each message's tokens (``render(i, message)``) and mask, concatenated."""
    system, generation = template_lengths(tokenizer, options)
    tokens, mask = [], []
    for i, message in enumerate(messages):
        ids = render(i, message, {**options, **({"tools": tools} if tools and i == 0 else {})})
        if message["role"] != "system" and i > 0:
            ids = ids[system:]
        trained = message["role"] == "assistant" and message.get("step_loss_mask", 1) == 1
        header = len(ids) if not trained else min(generation, len(ids))
        tokens += ids
        mask += [0] * header + [1] * (len(ids) - header)
    return tokens, mask


def qwen_mask(tokenizer, messages, tools, options):
    return _per_message(tokenizer, messages, tools, options,
                        lambda i, message, kw: _rendered_ids(tokenizer, [message], **kw))


def qwen3_mask(tokenizer, messages, tools, options):
    filler = _rendered_ids(tokenizer, [FILLER], **options)

    def render(i, message, kw):
        if i == 0:
            return _rendered_ids(tokenizer, [message, FILLER], **kw)[:-len(filler)]
        return _rendered_ids(tokenizer, [FILLER, message], **kw)[len(filler):]

    return _per_message(tokenizer, messages, tools, options, render)


def trained_spans(text: str, messages: list[dict]) -> list[tuple[int, int]]:
    """qwen3_5's character spans of ``text`` (the rendered conversation) that train, turn by turn."""
    spans, cursor = [], 0
    for message in messages:
        if message["role"] != "assistant":
            continue
        header = text.find(ASSISTANT_HEADER, cursor)
        if header < 0:
            raise LossMaskError(f"assistant turn not found: the chat template rendered no {ASSISTANT_HEADER!r} for it "
                                f"after character {cursor} of {_shown(text)}")
        start = header + len(ASSISTANT_HEADER)
        end = text.find(END, start)
        if end < 0:
            raise LossMaskError(f"the assistant turn at character {start} has no {END} in {_shown(text)}")
        end += len(END)
        if text[end:end + 1] == "\n":
            end += 1
        cursor = end
        if message.get("step_loss_mask", 1) != 1:
            continue
        for scaffold in (EMPTY_THINK, THINK_OPEN):  # the template's, not the model's
            if text.startswith(scaffold, start):
                start += len(scaffold)
                break
        spans.append((start, end))
    return spans


def qwen3_5_mask(tokenizer, messages, tools, options):
    options = {**options, **({"tools": tools} if tools else {})}
    text = tokenizer.apply_chat_template(messages, tokenize=False, **options)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if encoded.get("offset_mapping") is None:
        raise LossMaskError("--loss-mask-type qwen3_5 needs a fast tokenizer (one with offset mappings)")
    ids = list(encoded["input_ids"])
    if ids != list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False, **options)):
        raise LossMaskError("--loss-mask-type qwen3_5: tokenizing the rendered conversation does not give the chat "
                            "template's own tokens")
    trained = [0] * (len(text) + 1)
    for start, end in trained_spans(text, messages):
        trained[start:end] = [1] * (end - start)
    before = [0]
    for flag in trained[:len(text)]:
        before.append(before[-1] + flag)
    return ids, [int(end > start and before[end] > before[start]) for start, end in encoded["offset_mapping"]]


def distill_qwen_mask(tokenizer, messages, tools, options):
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True,
                                           **options, **({"tools": tools} if tools else {}))
    prompt_ids, response_ids = _ids(tokenizer, prompt), _ids(tokenizer, messages[-1]["content"])
    trained = messages[-1].get("step_loss_mask", 1) == 1
    return prompt_ids + response_ids, [0] * len(prompt_ids) + [int(trained)] * len(response_ids)


GENERATORS = {"qwen": qwen_mask, "qwen3": qwen3_mask, "qwen3_5": qwen3_5_mask, "distill_qwen": distill_qwen_mask}


def effective_mask_type(tokenizer, mask_type: str) -> str:
    """Upstream's one substitution: ``qwen`` on a tokenizer with DeepSeek-R1-Distill's assistant token."""
    if mask_type == "qwen" and DISTILL_ASSISTANT in tokenizer.get_added_vocab():
        return "distill_qwen"
    return mask_type


def tokens_and_loss_mask(tokenizer, messages: list[dict], mask_type: str, chat_template_kwargs: dict | None = None,
                         tools: list[dict] | None = None) -> tuple[list[int], list[int]]:
    """The conversation's token ids and, per token, 1 where it trains."""
    kind = effective_mask_type(tokenizer, mask_type)
    tokens, mask = GENERATORS[kind](tokenizer, messages, tools, dict(chat_template_kwargs or {}))
    if len(tokens) != len(mask):
        raise LossMaskError(f"--loss-mask-type {kind}: {len(mask)} mask values for {len(tokens)} tokens")
    return tokens, mask


def _shown(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:120] + "…")
