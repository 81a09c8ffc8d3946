#!/usr/bin/env python3
"""Build tiny models of every mapped family, their tokenizer and the toy tasks under a folder, locally
(nothing is downloaded).

    python tools/make_tiny_model.py --out "$BASE_FOLDER" [--only tiny tiny-qwen3 …]

writes
    <out>/tiny-cpu/          a Qwen2-style model with the architecture of conf/model/tiny.yaml (the
                             tiny runs train it), and a character tokenizer with a chat template
    <out>/tiny-chat/         the same architecture with a chat tokenizer (conf/model/tiny-chat.yaml):
                             lower- and upper-case letters, newline and space, and the special
                             tokens of the chat formats the SFT loss masks know (Qwen's
                             <|im_start|>/<|im_end|>, <think>, DeepSeek-R1-Distill's
                             <｜User｜>/<｜Assistant｜>); Qwen's chat template
    <out>/<name>/            one model per other conf/model/tiny-*.yaml (Llama, Qwen3, Qwen3-MoE,
                             GLM-4, DeepSeek-V3), each consistent with its file: the HF ↔ megatron mapping tests
    <out>/toy/               the one-token task: "d+1=" → the last digit of d + 1
    <out>/count/             the several-token task: "d=" → the next three digits, "3=" → "456"
    <out>/sft/               the count task as conversations to imitate (SFT): two user questions, each
                             answered by the assistant (52 tokens with the chat template)

Every model is randomly initialised with --seed. A random model answers a toy prompt correctly about
once in sixteen tries (one token of a sixteen-token vocabulary). On the count task the reward is the
share of the three digits right before the first mistake (slime.rewards.toy:prefix_match); a random
model's expected reward is (1/16 + 1/16² + 1/16³) / 3 ≈ 0.022.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from slime.utils.checkout import CONF_DIR


SPECIAL = ["<pad>", "<eos>", "<bos>"]
CHARACTERS = list("0123456789+=")
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
# the chat tokenizer (tiny-chat): the special tokens of every --loss-mask-type's format, and Qwen's template
CHAT_SPECIAL = ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<｜User｜>", "<｜Assistant｜>",
                "<｜end▁of▁sentence｜>"]
DISTILL_SPECIAL = ["<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"]
# upper case last (the other ids stay): the loss masks' probe text, "FOR TESTING ONLY", must encode
CHAT_CHARACTERS = CHARACTERS + list("abcdefghijklmnopqrstuvwxyz") + ["\n", " "] + list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
QWEN_CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
                      "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# conf/model file → folder under --out; the HF model_type is the file's own (run.model_type)
MODELS = {
    "tiny": "tiny-cpu",
    "tiny-chat": "tiny-chat",
    "tiny-llama": "tiny-llama",
    "tiny-qwen3": "tiny-qwen3",
    "tiny-qwen3-moe": "tiny-qwen3-moe",
    "tiny-glm4": "tiny-glm4",
    "tiny-deepseek-v3": "tiny-deepseek-v3",
}


def model_file_type(path: Path) -> str:
    from slime.config.model_files import load_model_file

    return load_model_file(path)["run"]["model_type"]


def model_flags(name: str) -> dict:
    """The architecture of conf/model/<name>.yaml, read through the trainer's parser."""
    from slime.config.model_files import load_model_entries, model_argv
    from slime.arguments.parser import parse_args

    argv = model_argv(load_model_entries(CONF_DIR / "model" / f"{name}.yaml"))
    return vars(parse_args(argv, validate=False))


def build_tokenizer(chat: bool = False, distill_tokens: bool = True):
    """A character tokenizer; ``chat``: with the chat formats' special tokens (whole tokens, never split)
    and Qwen's chat template; without ``distill_tokens``, DeepSeek-R1-Distill's are left out (a Qwen
    tokenizer's set: with ``<｜Assistant｜>`` upstream's --loss-mask-type qwen works as distill_qwen)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = [t for t in CHAT_SPECIAL if distill_tokens or t not in DISTILL_SPECIAL] if chat else []
    vocab = {token: i for i, token in enumerate(SPECIAL + special + (CHAT_CHARACTERS if chat else CHARACTERS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>",
                                        pad_token="<pad>", unk_token="<pad>", additional_special_tokens=special)
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE if chat else CHAT_TEMPLATE
    return tokenizer


def build_model(flags: dict, model_type: str, seed: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from slime.model.hf_config import hf_config_fields

    config = AutoConfig.for_model(model_type, **hf_config_fields(flags, model_type), max_position_embeddings=64,
                                  bos_token_id=2, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # initialised norms are all ones: perturb them, so that a mapping mistake shows
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                param.add_(0.1 * torch.randn_like(param))
    return model


def toy_rows(count: int, offset: int = 0) -> list[dict]:
    return [{"prompt": f"{d}+1=", "label": str((d + 1) % 10)} for d in ((offset + i) % 10 for i in range(count))]


def count_rows(count: int, offset: int = 0) -> list[dict]:
    return [{"prompt": f"{d}=", "label": "".join(str((d + k) % 10) for k in (1, 2, 3))}
            for d in ((offset + i) % 10 for i in range(count))]


def sft_rows(count: int, offset: int = 0) -> list[dict]:
    def answer(d: int) -> str:
        return "".join(str((d + k) % 10) for k in (1, 2, 3))

    rows = []
    for i in range(count):
        first, second = (offset + i) % 10, (offset + 3 * i + 5) % 10
        rows.append({"messages": [{"role": "user", "content": f"{first}="}, {"role": "assistant", "content": answer(first)},
                                  {"role": "user", "content": f"{second}="},
                                  {"role": "assistant", "content": answer(second)}]})
    return rows


def write_task(folder: Path, rows) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows(200)))
    (folder / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows(10)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the folder runs know as BASE_FOLDER")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=sorted(MODELS), help="build only these models")
    options = parser.parse_args(argv)
    for name in options.only or MODELS:
        folder, model_type = MODELS[name], model_file_type(CONF_DIR / "model" / f"{name}.yaml")
        tokenizer = build_tokenizer(chat=name == "tiny-chat")
        flags = model_flags(name)
        if len(tokenizer) > flags["vocab_size"]:
            print(f"conf/model/{name}.yaml: vocab_size {flags['vocab_size']} < the tokenizer's {len(tokenizer)}",
                  file=sys.stderr)
            return 2
        build_model(flags, model_type, options.seed).save_pretrained(options.out / folder)
        tokenizer.save_pretrained(options.out / folder)
    write_task(options.out / "toy", toy_rows)
    write_task(options.out / "count", count_rows)
    write_task(options.out / "sft", sft_rows)
    print(f"wrote {', '.join(MODELS[n] for n in options.only or MODELS)}, toy, count and sft under {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
