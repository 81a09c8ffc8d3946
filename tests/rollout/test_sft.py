"""SFT as slime runs it: conversations rendered with the chat template, the assistant's tokens marked for
the loss by the chat format of --loss-mask-type, the negative log-likelihood of those tokens as the loss,
in both train backends; the tiny SFT run's loss falls, the same through megatron-core as through torch."""

from __future__ import annotations

import argparse
import json
import re

import pytest
import torch

from slime.arguments.parser import ArgumentProblems, parse_args
from tests.helpers.command_lines import MINIMAL
from tests.helpers.stack import require_module

# Chat templates in the shape of each family's (a system turn where Qwen2.5 adds one, an empty reasoning
# block where Qwen3 answers without thinking, DeepSeek-R1-Distill's markers), with generation prompts.
QWEN25 = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nbe brief<|im_end|>\n{% endif %}"
          "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN3 = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] == 'assistant' %}<think>\n\n</think>\n\n"
         "{% endif %}{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
         "{% endif %}")
DISTILL = ("<bos>{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}{% else %}"
           "<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
           "{% if add_generation_prompt %}<｜Assistant｜>{% endif %}")
CHAT = [{"role": "user", "content": "3="}, {"role": "assistant", "content": "456"},
        {"role": "user", "content": "8="}, {"role": "assistant", "content": "901"}]


@pytest.fixture(scope="module")
def chat_tokenizer():
    require_module("transformers")
    from slime.cli.make_tiny_model import build_tokenizer

    return build_tokenizer(chat=True)


@pytest.fixture(scope="module")
def qwen_tokenizer():
    """The chat tokenizer without DeepSeek-R1-Distill's tokens, as a Qwen tokenizer is."""
    require_module("transformers")
    from slime.cli.make_tiny_model import build_tokenizer

    return build_tokenizer(chat=True, distill_tokens=False)


def trained_text(tokenizer, template: str | None, mask_type: str, messages=CHAT) -> list[str]:
    """The trained runs of tokens, each joined into text."""
    from slime.rollout.loss_mask import tokens_and_loss_mask

    if template:
        tokenizer = _with_template(tokenizer, template)
    ids, mask = tokens_and_loss_mask(tokenizer, messages, mask_type)
    assert len(ids) == len(mask)
    runs, current = [], []
    for token, keep in zip(tokenizer.convert_ids_to_tokens(ids), mask):
        if keep:
            current.append(token)
        elif current:
            runs.append("".join(current))
            current = []
    return runs + (["".join(current)] if current else [])


def _with_template(tokenizer, template: str):
    import copy

    clone = copy.deepcopy(tokenizer)
    clone.chat_template = template
    return clone


@pytest.mark.parametrize(("mask_type", "template", "want"), [
    ("qwen", None, ["456<|im_end|>\n", "901<|im_end|>\n"]),
    ("qwen", QWEN25, ["456<|im_end|>\n", "901<|im_end|>\n"]),  # the default system prompt is cut off
    ("qwen3", QWEN3, ["<think>\n\n</think>\n\n456<|im_end|>\n", "<think>\n\n</think>\n\n901<|im_end|>\n"]),
    ("qwen3_5", QWEN3, ["456<|im_end|>\n", "901<|im_end|>\n"]),  # the empty reasoning block is the template's
    ("distill_qwen", DISTILL, ["901"]),  # the last message only
])
def test_each_mask_type_trains_what_upstream_trains(qwen_tokenizer, chat_tokenizer, mask_type, template, want):
    tokenizer = chat_tokenizer if mask_type == "distill_qwen" else qwen_tokenizer
    assert trained_text(tokenizer, template, mask_type) == want


def test_qwen_keeps_a_reasoning_block_that_qwen3_5_leaves_to_the_template(qwen_tokenizer):
    assert trained_text(qwen_tokenizer, QWEN3, "qwen")[0] == "<think>\n\n</think>\n\n456<|im_end|>\n"
    thinking = [{"role": "user", "content": "3="}, {"role": "assistant", "content": "<think>\nadd one</think>\n456"}]
    assert trained_text(qwen_tokenizer, None, "qwen3", thinking) == ["<think>\nadd one</think>\n456<|im_end|>\n"]
    assert trained_text(qwen_tokenizer, None, "qwen3_5", thinking) == ["add one</think>\n456<|im_end|>\n"]


def test_a_turn_cut_off_before_its_end_marker_is_trained_to_the_end(qwen_tokenizer):
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert trained_text(qwen_tokenizer, template, "qwen", CHAT[:2]) == ["456"]


def test_a_template_without_qwens_assistant_header_is_named_with_what_it_rendered(chat_tokenizer):
    from slime.rollout.loss_mask import LossMaskError

    with pytest.raises(LossMaskError, match=r"assistant turn not found: the chat template rendered no "
                                            r"'<\|im_start\|>assistant\\n' for it after character 0 of "
                                            r"'<bos><｜User｜>"):
        trained_text(chat_tokenizer, DISTILL, "qwen3_5")


def test_the_chat_tokenizer_keeps_special_tokens_whole(chat_tokenizer):
    ids = chat_tokenizer("<|im_start|>user\n3=<|im_end|><｜Assistant｜>", add_special_tokens=False)["input_ids"]
    assert chat_tokenizer.convert_ids_to_tokens(ids) == ["<|im_start|>", "u", "s", "e", "r", "\n", "3", "=",
                                                         "<|im_end|>", "<｜Assistant｜>"]


def test_an_sft_sample_is_a_prompt_up_to_the_first_trained_token_and_a_masked_response(chat_tokenizer):
    from slime.rollout.sft_rollout import sft_sample

    args = argparse.Namespace(loss_mask_type="qwen3", apply_chat_template_kwargs=None)
    sample = sft_sample(args, chat_tokenizer, CHAT, 0)
    text = chat_tokenizer.decode(sample.prompt_tokens)
    assert text == "<|im_start|>user\n3=<|im_end|>\n<|im_start|>assistant\n"
    assert chat_tokenizer.decode(sample.response_tokens).startswith("456<|im_end|>\n<|im_start|>user")
    assert len(sample.loss_mask) == sample.response_length and sum(sample.loss_mask) == 10  # "456", "901", ends, "\n"s
    assert sample.loss_mask[:5] == [1] * 5 and sample.loss_mask[5] == 0 and sample.reward == 0.0


def test_conversations_load_as_messages_and_a_bad_message_names_file_and_line(chat_tokenizer, tmp_path):
    from slime.rollout.data_source import load_prompts

    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps({"messages": CHAT}) + "\n" + json.dumps({"messages": [{"role": "user"}]}) + "\n")
    with pytest.raises(ValueError, match=r"sft\.jsonl:2: 'messages' message 0 is not a chat message"):
        load_prompts(str(data), chat_tokenizer, input_key="messages", label_key=None, metadata_key=None,
                     apply_chat_template=False)
    data.write_text(json.dumps({"messages": CHAT}) + "\n")
    (prompt,) = load_prompts(str(data), chat_tokenizer, input_key="messages", label_key=None, metadata_key=None,
                             apply_chat_template=False)
    assert prompt.messages == CHAT


@pytest.mark.parametrize("per_token", [True, False])
def test_the_sft_loss_is_the_negative_log_likelihood_of_the_masked_tokens(per_token):
    from slime.algorithms.micro_batch import MicroBatch, actor_loss

    args = argparse.Namespace(loss_type="sft_loss", calculate_per_token_loss=per_token)
    log_probs = torch.tensor([-1.0, -2.0, -3.0, -0.5, -4.0], requires_grad=True)
    batch = MicroBatch(lengths=torch.tensor([3, 2]), loss_mask=torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0]))
    loss, metrics = actor_loss(args, log_probs, torch.ones(5), batch, total_tokens=4.0, total_samples=2)
    want = (1 + 2 + 0.5 + 4) / 4 if per_token else ((1 + 2) / 2 + (0.5 + 4) / 2) / 2
    assert float(loss) == pytest.approx(want) and metrics == {"entropy": 1.0}
    loss.backward()
    assert log_probs.grad[2] == 0 and (log_probs.grad[[0, 1, 3, 4]] < 0).all()


SFT_ROLLOUT = ["--rollout-function-path", "slime.rollout.sft_rollout.generate_rollout", "--debug-train-only"]


@pytest.mark.parametrize(("extra", "message"), [
    ([], r"gives conversations without rewards: train them with --loss-type sft_loss"),
    (["--loss-type", "sft_loss", "--apply-chat-template"], r"drop --apply-chat-template"),
    (["--loss-type", "sft_loss", "--use-critic"], r"--loss-type sft_loss trains the actor alone"),
])
def test_sft_settings_that_do_not_go_together_are_named(extra, message):
    with pytest.raises(ArgumentProblems, match=message):
        parse_args([*MINIMAL, *SFT_ROLLOUT, *extra])
    parse_args([*MINIMAL, *SFT_ROLLOUT, "--loss-type", "sft_loss"])


def losses(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"^rollout \d+/\d+\s+response_len [\d.]+\s+actor/loss ([\d.]+)", log, re.M)]


@pytest.mark.slow
def test_the_tiny_sft_run_learns_the_same_through_megatron_and_torch(tmp_path, training_ray):
    """Same model, data order and optimizer: the two backends' losses agree, and fall."""
    require_module("megatron.core")
    require_module("ray")
    import subprocess
    import sys

    from tests.helpers.paths import ROOT
    from tests.helpers.runs import train

    subprocess.run([sys.executable, "tools/make_tiny_model.py", "--out", str(tmp_path), "--only", "tiny-chat"],
                   cwd=ROOT, check=True, capture_output=True)
    common = ["rollout.num_epoch=null", "+rollout.num_rollout=8", "ckpt.save_interval=null"]
    torch_run = train(tmp_path, "cluster.actor_num_gpus_per_node=1", f"ckpt.save={tmp_path / 'torch'}", *common,
                      config="run_tiny_sft", ray=training_ray)
    assert torch_run.returncode == 0, torch_run.stdout[-3000:]
    megatron_run = train(tmp_path, "+perf=cpu_tp2", "perf.train_backend=megatron", "perf.micro_batch_size=8",
                         f"ckpt.save={tmp_path / 'megatron'}", *common, config="run_tiny_sft", ray=training_ray)
    assert megatron_run.returncode == 0, megatron_run.stdout[-3000:]
    assert "engine(s)" not in torch_run.stdout + megatron_run.stdout  # --debug-train-only: no engine was started
    by_torch, by_megatron = losses(torch_run.stdout), losses(megatron_run.stdout)
    assert len(by_torch) == len(by_megatron) == 8
    assert by_megatron == pytest.approx(by_torch, rel=1e-3)
    assert sum(by_torch[-3:]) < 0.8 * sum(by_torch[:3]), by_torch
