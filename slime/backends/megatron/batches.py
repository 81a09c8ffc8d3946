"""Micro-batches of one optimizer step, as megatron's forward wants them.

Samples are split into micro-batches of ``--micro-batch-size`` samples, or, with
``--use-dynamic-batch-size``, packed greedily (longest first) so that a micro-batch's padded size —
samples × its longest sequence — stays within ``--max-tokens-per-gpu``. Each micro-batch is padded
on the right to [B, S] with a causal mask: right padding needs no padding mask, since no real token
attends to a later position. The response tokens of every sample are addressed by (row, column) into
the [B, S] outputs, concatenated in sample order: the flat layout of ``slime.algorithms.micro_batch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Packed:
    samples: list[dict]
    input_ids: torch.Tensor  # [B, S]
    position_ids: torch.Tensor  # [B, S]
    attention_mask: torch.Tensor  # [1, 1, S, S], True where attention is masked out
    rows: torch.Tensor  # [T] response token → row
    columns: torch.Tensor  # [T] position whose output predicts that token
    targets: torch.Tensor  # [T] the response tokens

    @property
    def response_lengths(self) -> list[int]:
        return [len(s["response_tokens"]) for s in self.samples]


def pack(samples: list[dict], device: torch.device | str = "cpu", multiple: int = 1) -> Packed:
    """``samples`` padded on the right to a width that is a multiple of ``multiple`` (the tensor-parallel
    size under sequence parallel, which splits the sequence)."""
    sequences = [s["prompt_tokens"] + s["response_tokens"] for s in samples]
    width = -(-max(map(len, sequences)) // multiple) * multiple
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, :len(seq)] = torch.tensor(seq)
    lengths = torch.tensor([len(s["response_tokens"]) for s in samples])
    starts = torch.tensor([len(s["prompt_tokens"]) - 1 for s in samples])  # predicts the first response token
    rows = torch.repeat_interleave(torch.arange(len(samples)), lengths)
    first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    columns = torch.repeat_interleave(starts, lengths) + torch.arange(int(lengths.sum())) - first
    targets = torch.tensor([t for s in samples for t in s["response_tokens"]], dtype=torch.long)
    mask = torch.triu(torch.ones(width, width, dtype=torch.bool), diagonal=1)[None, None]
    positions = torch.arange(width)[None].expand(len(samples), width)
    return Packed(samples, ids.to(device), positions.to(device), mask.to(device), rows.to(device), columns.to(device),
                  targets.to(device))


def split(samples: list[dict], micro_batch_size: int | None, max_tokens: int | None) -> list[list[int]]:
    """The sample indices of each micro-batch: by count, or by padded tokens when ``max_tokens`` is given."""
    if not max_tokens:
        size = micro_batch_size or 1
        return [list(range(i, min(i + size, len(samples)))) for i in range(0, len(samples), size)]
    order = sorted(range(len(samples)), key=lambda i: -_length(samples[i]))
    batches, current, longest = [], [], 0
    for i in order:
        length = _length(samples[i])
        if current and max(longest, length) * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def _length(sample: dict) -> int:
    return len(sample["prompt_tokens"]) + len(sample["response_tokens"])
