"""Upstream slime's loss masks (issue 22, item 5), written out token by token on chats rendered with the
tiny chat tokenizer (one token per character, the chat formats' markers whole) and a Qwen3.5-shaped
template: the "\\n" after <|im_end|> trains, the opening <think>\\n of the final reasoning turn and an empty
reasoning block are the template's, and qwen3_5 and qwen3 render history turns differently."""

from __future__ import annotations

import pytest

from tests.helpers.stack import require_module

# Qwen3.5's shape: an assistant turn after the last user message gets its reasoning block (empty when it
# has none), an earlier one its answer alone; the generation prompt opens a reasoning block.
QWEN35 = ("{%- set ns = namespace(last_user=-1) %}"
          "{%- for m in messages %}{%- if m['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}"
          "{%- endfor %}"
          "{%- for m in messages %}"
          "{%- if m['role'] == 'assistant' %}"
          "{%- if '</think>' in m['content'] %}"
          "{%- set reasoning = m['content'].split('</think>')[0].split('<think>')[-1].strip('\\n') %}"
          "{%- set answer = m['content'].split('</think>')[-1].lstrip('\\n') %}"
          "{%- else %}{%- set reasoning = '' %}{%- set answer = m['content'] %}{%- endif %}"
          "{%- if loop.index0 > ns.last_user %}"
          "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + answer + '<|im_end|>\\n' }}"
          "{%- else %}{{- '<|im_start|>assistant\\n' + answer + '<|im_end|>\\n' }}{%- endif %}"
          "{%- else %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endif %}"
          "{%- endfor %}"
          "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}")
A = [{"role": "user", "content": "3="}, {"role": "assistant", "content": "456"},
     {"role": "user", "content": "8="}, {"role": "assistant", "content": "<think>add one</think>\n901"}]
# Conversation A as Qwen3.5 renders it, token by token (65 tokens), with upstream's qwen3_5 mask.
A_TOKENS = (["<|im_start|>", *"user", "\n", "3", "=", "<|im_end|>", "\n",
             "<|im_start|>", *"assistant", "\n", "4", "5", "6", "<|im_end|>", "\n",
             "<|im_start|>", *"user", "\n", "8", "=", "<|im_end|>", "\n",
             "<|im_start|>", *"assistant", "\n", "<think>", "\n", *"add one", "\n", "</think>", "\n", "\n",
             "9", "0", "1", "<|im_end|>", "\n"])
A_MASK = "00000000000000000000011111000000000000000000000001111111111111111"  # 1 at 21-25 and 49-64


@pytest.fixture(scope="module")
def tokenizer():
    require_module("transformers")
    from slime.cli.make_tiny_model import build_tokenizer

    tokenizer = build_tokenizer(chat=True)
    tokenizer.chat_template = QWEN35
    return tokenizer


def masked(tokenizer, messages, mask_type):
    from slime.rollout.loss_mask import tokens_and_loss_mask

    ids, mask = tokens_and_loss_mask(tokenizer, messages, mask_type)
    return tokenizer.convert_ids_to_tokens(ids), "".join(map(str, mask))


def runs(tokens, mask) -> list[str]:
    out, current = [], []
    for token, flag in zip(tokens, mask):
        if flag == "1":
            current.append(token)
        elif current:
            out.append("".join(current))
            current = []
    return out + (["".join(current)] if current else [])


def test_qwen3_5_trains_each_answer_with_the_newline_after_its_end_marker(tokenizer):
    tokens, mask = masked(tokenizer, A, "qwen3_5")
    assert tokens == A_TOKENS and len(tokens) == 65
    assert mask == A_MASK
    assert [i for i, flag in enumerate(mask) if flag == "1"] == [*range(21, 26), *range(49, 65)]
    # the history turn without a reasoning block; the final turn without the template's opening <think>\n
    assert runs(tokens, mask) == ["456<|im_end|>\n", "add one\n</think>\n\n901<|im_end|>\n"]


def test_qwen3_5_leaves_an_empty_reasoning_block_to_the_template(tokenizer):
    tokens, mask = masked(tokenizer, A[:2], "qwen3_5")
    assert "".join(tokens) == ("<|im_start|>user\n3=<|im_end|>\n"
                               "<|im_start|>assistant\n<think>\n\n</think>\n\n456<|im_end|>\n")
    assert mask == "00000000000000000000000000011111"  # tokens 27-31: 456<|im_end|>\n


def test_qwen3_renders_every_turn_as_a_final_one_and_trains_the_rest_of_its_empty_think_block(tokenizer):
    tokens, mask = masked(tokenizer, A, "qwen3")
    assert runs(tokens, mask) == ["\n</think>\n\n456<|im_end|>\n", "add one\n</think>\n\n901<|im_end|>\n"]
    assert tokens != A_TOKENS  # its own rendering: the history turn got a reasoning block


def test_a_turn_whose_step_loss_mask_is_0_trains_nothing(tokenizer):
    quiet = [dict(A[0]), {**A[1], "step_loss_mask": 0}, dict(A[2]), dict(A[3])]
    tokens, mask = masked(tokenizer, quiet, "qwen3_5")
    assert mask == "0" * 49 + A_MASK[49:]
    tokens, mask = masked(tokenizer, quiet, "qwen3")
    assert runs(tokens, mask) == ["add one\n</think>\n\n901<|im_end|>\n"]


def test_qwen_on_a_tokenizer_with_distills_assistant_token_is_distill_qwen():
    require_module("transformers")
    from slime.cli.make_tiny_model import build_tokenizer

    plain = [dict(m) for m in A[:3]] + [{"role": "assistant", "content": "901"}]
    chat = build_tokenizer(chat=True)  # its own Qwen template; the tokenizer holds <｜Assistant｜>
    tokens, mask = masked(chat, plain, "qwen")
    assert "".join(tokens) == "<|im_start|>user\n3=<|im_end|>\n<|im_start|>assistant\n901"
    assert mask == "0" * 21 + "111"  # the first message as the prompt, the last one's content as the response
    qwen = build_tokenizer(chat=True, distill_tokens=False)
    tokens, mask = masked(qwen, plain, "qwen")
    assert runs(tokens, mask) == ["456<|im_end|>\n", "901<|im_end|>\n"]
    assert "".join(tokens) == qwen.apply_chat_template(plain, tokenize=False)


def test_distill_qwen_trains_the_last_message_alone():
    require_module("transformers")
    from slime.cli.make_tiny_model import build_tokenizer

    chat = build_tokenizer(chat=True)
    chat.chat_template = ("<bos>{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
                          "{% else %}"
                          "<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
                          "{% if add_generation_prompt %}<｜Assistant｜>{% endif %}")
    plain = [dict(m) for m in A[:3]] + [{"role": "assistant", "content": "901"}]
    tokens, mask = masked(chat, plain, "distill_qwen")
    assert tokens == ["<bos>", "<｜User｜>", "3", "=", "<｜Assistant｜>", "9", "0", "1"] and mask == "00000111"
    tokens, mask = masked(chat, [*plain[:3], {**plain[3], "step_loss_mask": 0}], "distill_qwen")
    assert mask == "0" * 8


def test_qwen_measures_the_default_system_prompt_and_the_generation_prompt_as_upstream(tokenizer):
    from slime.rollout.loss_mask import template_lengths
    from slime.cli.make_tiny_model import QWEN_CHAT_TEMPLATE, build_tokenizer

    own = build_tokenizer(chat=True)
    assert template_lengths(own, {}) == (0, 11)  # <|im_start|> a s s i s t a n t \n
    assert template_lengths(tokenizer, {}) == (0, 13)  # …and <think> \n
    own.chat_template = "<|im_start|>system\nhi<|im_end|>\n" + QWEN_CHAT_TEMPLATE  # a default system prompt
    assert template_lengths(own, {}) == (12, 11)  # <|im_start|> s y s t e m \n h i <|im_end|> \n
