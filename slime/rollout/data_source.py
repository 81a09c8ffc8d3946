"""Prompt data: a JSONL file read with the configured keys, rendered with the chat template, served
in epochs, shuffled per epoch with a seed; its position is part of a checkpoint.

Bad data is an error naming the file and line (a line that is not UTF-8, not JSON, or not a JSON
object; a row without the input key; a label key that no row has); a label missing on some rows
only is a warning with their count."""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Prompt:
    text: str
    label: object
    metadata: dict
    tokens: list[int]
    messages: list[dict] | None = None  # a conversation (SFT data), rendered by the rollout function


def load_prompts(path: str, tokenizer, *, input_key: str, label_key: str | None, metadata_key: str | None,
                 apply_chat_template: bool, chat_template_kwargs: dict | None = None,
                 max_prompt_len: int | None = None, tool_key: str | None = None) -> list[Prompt]:
    """The prompts of a JSONL file; with ``apply_chat_template`` rendered by the tokenizer's chat template,
    given the row's tool definitions (at ``tool_key``) when it has any."""
    prompts = []
    rows, unlabelled, first_keys = 0, [], []
    for number, row in _rows(path):
        rows += 1
        first_keys = first_keys or sorted(row)
        if input_key not in row:
            raise ValueError(f"{path}:{number}: no {input_key!r} key (--input-key); keys are {sorted(row)}")
        if label_key and label_key not in row:
            unlabelled.append(number)
        content = row[input_key]
        if isinstance(content, list) and not apply_chat_template:
            # a conversation to train on (SFT): the rollout function renders it with its loss mask
            metadata = dict(row.get(metadata_key) or {}) if metadata_key else {}
            if tool_key and row.get(tool_key):  # the SFT rollout gives them to the chat template, as upstream's
                metadata["tools"] = row[tool_key]
            prompts.append(Prompt("", row.get(label_key) if label_key else None, metadata, [],
                                  messages=_conversation(path, number, input_key, content)))
            continue
        if apply_chat_template:
            messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
            tools = row.get(tool_key) if tool_key else None
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                 **({"tools": tools} if tools else {}), **(chat_template_kwargs or {}))
        else:
            text = content
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_prompt_len is not None and len(tokens) > max_prompt_len:
            continue
        prompts.append(Prompt(text, row.get(label_key) if label_key else None,
                              row.get(metadata_key) or {} if metadata_key else {}, tokens))
    if rows and len(unlabelled) == rows:
        raise ValueError(f"{path}: no row has the label key {label_key!r} (--label-key); the first row's keys are "
                         f"{first_keys}")
    if unlabelled:
        shown = ", ".join(map(str, unlabelled[:5])) + (", …" if len(unlabelled) > 5 else "")
        print(f"slime: warning: {path}: {len(unlabelled)} of {rows} rows have no {label_key!r} key (--label-key) "
              f"and get no label: line {shown}", file=sys.stderr, flush=True)
    if not prompts:
        raise ValueError(f"{path}: no prompts (empty file, or all longer than --rollout-max-prompt-len)")
    return prompts


def _conversation(path: str, number: int, input_key: str, content: list) -> list[dict]:
    """``content`` checked to be chat messages: objects with a string role and content."""
    for i, message in enumerate(content):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise ValueError(f"{path}:{number}: {input_key!r} message {i} is not a chat message "
                             f"({{\"role\": …, \"content\": …}} with strings): {json.dumps(message)[:60]}")
    if not content:
        raise ValueError(f"{path}:{number}: {input_key!r} is an empty conversation")
    return content


_JSON_KINDS = {int: "a number", float: "a number", str: "a string", list: "a list", bool: "a boolean",
               type(None): "null"}


def _rows(path: str):
    """(line number, JSON object) for every non-blank line; ValueError naming the line otherwise."""
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}:{number}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                             "save the file as UTF-8") from None
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(row, dict):
            shown = line.strip() if len(line.strip()) <= 40 else line.strip()[:40] + "…"
            raise ValueError(f"{path}:{number}: each line must be a JSON object ({{\"prompt\": …}}), this one is "
                             f"{_JSON_KINDS.get(type(row), type(row).__name__)}: {shown}")
        yield number, row


class DataSource:
    """Batches of prompts in order, epoch after epoch; with ``shuffle`` each epoch has its own order.

    It also serves upstream slime's data-source interface, for rollout functions written for upstream
    (``RolloutDataSourceWithBuffer``): ``get_samples(k)`` gives ``k`` groups of ``n_samples_per_prompt``
    fresh samples each (``group_index`` and ``index`` counted across the run), taken first from the
    groups ``add_samples`` put back (oldest first); ``get_examples(k)`` gives ``k`` prompts as example
    dicts for ``Sample.from_example`` and ``add_examples`` takes them back."""

    def __init__(self, prompts: list[Prompt], shuffle: bool, seed: int, n_samples_per_prompt: int = 1):
        self.prompts, self.shuffle, self.seed = prompts, shuffle, seed
        self.n_samples_per_prompt = n_samples_per_prompt
        self.epoch, self.offset = 0, 0
        self.next_group, self.next_index = 0, 0
        self.buffer: list[list] = []
        self.returned_examples: list[dict] = []
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

    def __len__(self) -> int:
        return len(self.prompts)

    # -- upstream slime's interface ----------------------------------------------------------------
    def get_samples(self, num_samples: int) -> list[list]:
        from slime.utils.types import Sample

        groups = self.buffer[:num_samples]
        del self.buffer[:num_samples]
        for prompt in self.next_batch(num_samples - len(groups)):
            group = []
            for _ in range(self.n_samples_per_prompt):
                group.append(Sample(group_index=self.next_group, index=self.next_index, prompt=prompt.text,
                                    label=prompt.label, tokens=list(prompt.tokens), metadata=dict(prompt.metadata)))
                self.next_index += 1
            self.next_group += 1
            groups.append(group)
        return groups

    def add_samples(self, groups: list[list]) -> None:
        for group in groups:
            if len(group) != self.n_samples_per_prompt:
                raise ValueError(f"add_samples: a group of {len(group)} samples, expected --n-samples-per-prompt "
                                 f"{self.n_samples_per_prompt}")
        self.buffer.extend(groups)

    def get_examples(self, num_prompts: int) -> list[dict]:
        examples = self.returned_examples[:num_prompts]
        del self.returned_examples[:num_prompts]
        examples += [{"prompt": p.text if p.messages is None else p.messages, "label": p.label,
                      "metadata": dict(p.metadata), "tokens": list(p.tokens)}
                     for p in self.next_batch(num_prompts - len(examples))]
        return examples

    def add_examples(self, examples: list[dict]) -> None:
        self.returned_examples.extend(examples)

    def save(self, rollout_id: int) -> None:
        """Upstream's hook; here the position is saved with each checkpoint's run record (``state_dict``)."""

    def load(self, rollout_id: int | None = None) -> None:
        """Upstream's hook; a resumed run restores the position from the run record (``load_state_dict``)."""

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset, "next_group": self.next_group,
                "next_index": self.next_index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.offset = state["epoch"], state["offset"]
        self.next_group, self.next_index = state.get("next_group", 0), state.get("next_index", 0)
        self._order = self._epoch_order()
