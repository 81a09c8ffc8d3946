"""Micro-batches of one optimizer step, as megatron's forward wants them.

Samples are split into micro-batches of ``--micro-batch-size`` samples, or, with
``--use-dynamic-batch-size``, packed greedily (longest first) so that a micro-batch's padded size —
samples × its longest sequence — stays within ``--max-tokens-per-gpu``. Each micro-batch is padded
on the right to [B, S] with a causal mask: right padding needs no padding mask, since no real token
attends to a later position. The response tokens of every sample are addressed by (row, column) into
the [B, S] outputs, concatenated in sample order: the flat layout of ``slime.algorithms.micro_batch``.

Ranks that run collectives inside the forward and backward of every micro-batch must run as many
micro-batches, and, for megatron's all-gather token dispatcher, micro-batches of as many tokens:
the data-parallel ranks of an expert-parallel MoE model, whose shares of a step differ in count and
length. ``agree`` takes the maximum over the data-parallel group (one all-reduce); ``pack`` pads a
micro-batch to the agreed [B, S] with rows and columns no response token reads, and a rank short of
micro-batches runs empty ones (``pack`` of no sample), whose loss is zero and counts no token.
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


def shape(samples: list[dict], multiple: int = 1) -> tuple[int, int]:
    """[B, S] of ``samples`` packed: their count, and the longest sequence rounded up to ``multiple``."""
    longest = max((_length(s) for s in samples), default=1)
    return len(samples), -(-longest // multiple) * multiple


def pack(samples: list[dict], device: torch.device | str = "cpu", multiple: int = 1,
         size: tuple[int, int] | None = None) -> Packed:
    """``samples`` padded on the right to a width that is a multiple of ``multiple`` (the tensor-parallel
    size under sequence parallel, which splits the sequence); to at least ``size`` = [B, S] when given
    (rows beyond the samples are padding, read by no response token)."""
    sequences = [s["prompt_tokens"] + s["response_tokens"] for s in samples]
    height, width = shape(samples, multiple)
    if size is not None:
        height, width = max(height, size[0]), max(width, size[1])
    ids = torch.zeros(height, width, dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, :len(seq)] = torch.tensor(seq)
    lengths = torch.tensor([len(s["response_tokens"]) for s in samples], dtype=torch.long)
    # the position that predicts each sample's first response token
    starts = torch.tensor([len(s["prompt_tokens"]) - 1 for s in samples], dtype=torch.long)
    rows = torch.repeat_interleave(torch.arange(len(samples)), lengths)
    first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    columns = torch.repeat_interleave(starts, lengths) + torch.arange(int(lengths.sum())) - first
    targets = torch.tensor([t for s in samples for t in s["response_tokens"]], dtype=torch.long)
    mask = torch.triu(torch.ones(width, width, dtype=torch.bool), diagonal=1)[None, None]
    positions = torch.arange(width)[None].expand(height, width)
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


def agree(shapes: list[tuple[int, int]], group, same_shapes: bool, device: torch.device | str = "cpu"
          ) -> list[tuple[int, int]]:
    """The micro-batch shapes every rank of ``group`` runs: as many as the rank with the most, each
    (with ``same_shapes``) as large as the largest of its position across the ranks, or else this
    rank's own (and [1, 1] for a rank's padding, widened by ``pack`` to its multiple). One all-reduce
    of the count, one of the shapes."""
    import torch.distributed as dist

    count = torch.tensor([len(shapes)], dtype=torch.long, device=device)
    dist.all_reduce(count, op=dist.ReduceOp.MAX, group=group)
    padded = list(shapes) + [(1, 1)] * (int(count) - len(shapes))
    if not same_shapes:
        return padded
    table = torch.tensor(padded, dtype=torch.long, device=device).reshape(-1, 2)
    dist.all_reduce(table, op=dist.ReduceOp.MAX, group=group)
    return [(int(rows), int(width)) for rows, width in table.tolist()]


def _length(sample: dict) -> int:
    return len(sample["prompt_tokens"]) + len(sample["response_tokens"])
