"""Prompt data: a JSONL file read with the configured keys, rendered with the chat template, served
in epochs, shuffled per epoch with a seed; its position is part of a checkpoint."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Prompt:
    text: str
    label: object
    metadata: dict
    tokens: list[int]


def load_prompts(path: str, tokenizer, *, input_key: str, label_key: str | None, metadata_key: str | None,
                 apply_chat_template: bool, chat_template_kwargs: dict | None = None,
                 max_prompt_len: int | None = None) -> list[Prompt]:
    prompts = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        if input_key not in row:
            raise ValueError(f"{path}:{number}: no {input_key!r} key (--input-key); keys are {sorted(row)}")
        content = row[input_key]
        if apply_chat_template:
            messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                 **(chat_template_kwargs or {}))
        else:
            text = content
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_prompt_len is not None and len(tokens) > max_prompt_len:
            continue
        prompts.append(Prompt(text, row.get(label_key) if label_key else None,
                              row.get(metadata_key) or {} if metadata_key else {}, tokens))
    if not prompts:
        raise ValueError(f"{path}: no prompts (empty file, or all longer than --rollout-max-prompt-len)")
    return prompts


class DataSource:
    """Batches of prompts in order, epoch after epoch; with ``shuffle`` each epoch has its own order."""

    def __init__(self, prompts: list[Prompt], shuffle: bool, seed: int):
        self.prompts, self.shuffle, self.seed = prompts, shuffle, seed
        self.epoch, self.offset = 0, 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> list[int]:
        order = list(range(len(self.prompts)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        return order

    def next_batch(self, size: int) -> list[Prompt]:
        batch = []
        while len(batch) < size:
            if self.offset == len(self._order):
                self.epoch, self.offset = self.epoch + 1, 0
                self._order = self._epoch_order()
            batch.append(self.prompts[self._order[self.offset]])
            self.offset += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.offset = state["epoch"], state["offset"]
        self._order = self._epoch_order()
