#!/usr/bin/env python3
"""Build the tiny model, its tokenizer and the toy task under a folder, locally (nothing is downloaded).

    python tools/make_tiny_model.py --out "$BASE_FOLDER"

writes
    <out>/tiny-cpu/          a randomly initialised Qwen2-style model with the architecture of
                             conf/model/tiny.yaml, and a character tokenizer with a chat template
    <out>/toy/train.jsonl    the toy task: "d+1=" → the last digit of d + 1
    <out>/toy/eval.jsonl     the same task, for evaluation

A random model answers correctly about once in sixteen tries (one token of a sixteen-token
vocabulary), so the mean reward of the run shows whether RL works.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPECIAL = ["<pad>", "<eos>", "<bos>"]
CHARACTERS = list("0123456789+=")
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def model_flags() -> dict:
    """The tiny architecture, read from conf/model/tiny.yaml through the trainer's parser."""
    from slime.config.model_files import load_model_entries, model_argv
    from slime.utils.arguments import parse_args

    argv = model_argv(load_model_entries(ROOT / "conf" / "model" / "tiny.yaml"))
    return vars(parse_args(argv, validate=False))


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL + CHARACTERS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>",
                                        pad_token="<pad>", unk_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(flags: dict, seed: int):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=flags["vocab_size"], hidden_size=flags["hidden_size"], intermediate_size=flags["ffn_hidden_size"],
        num_hidden_layers=flags["num_layers"], num_attention_heads=flags["num_attention_heads"],
        num_key_value_heads=flags["num_query_groups"], head_dim=flags["kv_channels"],
        rope_theta=float(flags["rotary_base"]), rms_norm_eps=flags["layernorm_epsilon"], max_position_embeddings=64,
        tie_word_embeddings=not flags["untie_embeddings_and_output_weights"], bos_token_id=2, eos_token_id=1,
        pad_token_id=0)
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def toy_rows(count: int, offset: int = 0) -> list[dict]:
    return [{"prompt": f"{d}+1=", "label": str((d + 1) % 10)} for d in ((offset + i) % 10 for i in range(count))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the folder runs know as BASE_FOLDER")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    flags = model_flags()
    tokenizer = build_tokenizer()
    if len(tokenizer) > flags["vocab_size"]:
        print(f"conf/model/tiny.yaml: vocab_size {flags['vocab_size']} < the tokenizer's {len(tokenizer)}",
              file=sys.stderr)
        return 2
    model_dir = options.out / "tiny-cpu"
    build_model(flags, options.seed).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = options.out / "toy"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in toy_rows(200)))
    (data / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in toy_rows(10)))
    print(f"wrote {model_dir} and {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
