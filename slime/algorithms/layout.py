"""Per-token values of a batch of responses in its two layouts and the conversions between them:
packed (every sample's response tokens concatenated, ``[T]``, as a micro-batch holds them) and
right-padded (``[B, L]``, row ``b`` valid up to ``lengths[b]``, zeros after), as batched scans want."""

from __future__ import annotations

from itertools import accumulate, chain

import torch


def as_lengths(lengths) -> torch.Tensor:
    return torch.as_tensor(lengths, dtype=torch.long)


def valid_mask(lengths, width: int | None = None) -> torch.Tensor:
    """bool [B, width]: which positions of each row hold one of its response tokens."""
    lengths = as_lengths(lengths)
    if width is None:
        width = int(lengths.max()) if len(lengths) else 0
    return torch.arange(width, device=lengths.device) < lengths[:, None]


def pad(flat: torch.Tensor, lengths, width: int | None = None) -> torch.Tensor:
    """Packed ``[T]`` → right-padded ``[B, width]`` (zeros after each row's length)."""
    valid = valid_mask(lengths, width)
    out = flat.new_zeros(valid.shape)
    out[valid] = flat
    return out


def unpad(padded: torch.Tensor, lengths) -> torch.Tensor:
    """Right-padded ``[B, L]`` → packed ``[T]``."""
    return padded[valid_mask(lengths, padded.shape[1])]


def pad_lists(rows: list[list[float]], dtype=torch.float32) -> torch.Tensor:
    """Per-sample lists of per-token values → right-padded ``[B, max length]``."""
    flat = torch.tensor(list(chain.from_iterable(rows)), dtype=dtype)
    return pad(flat, [len(row) for row in rows])


def unpad_lists(padded: torch.Tensor, lengths) -> list[list[float]]:
    """Right-padded ``[B, L]`` → one list of per-token values per sample."""
    counts = as_lengths(lengths).tolist()
    flat = unpad(padded, counts).tolist()
    return [flat[end - n:end] for end, n in zip(accumulate(counts), counts)]
