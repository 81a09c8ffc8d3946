"""Reverse discounted cumulative sums, ``y[t] = x[t] + c·y[t+1]`` along the last dimension (``y`` is 0
after the end), by an exact chunked scan on tensors: the backbone of discounted returns and GAE.

The time axis is cut into chunks of ``chunk`` tokens. Within a chunk, one matrix product with the
upper-triangular matrix of discount powers ``M[i, j] = c^(j-i)`` gives every token's sum over the
rest of its chunk. The value at each chunk's first token then obeys the same recurrence from chunk
to chunk with discount ``c^chunk``, so it is this very scan on a ``chunk``-times shorter sequence
(recursively), and each token adds ``c^(chunk-i)`` times the value at the start of the next chunk.

Every step is a sum of products of the inputs with powers of ``c``, never a division by them, so the
method stays exact for ``c`` near 0 (powers underflow to 0) and near 1, and for any length. It runs in
float64 whatever the input dtype and returns the input's dtype. Powers below float64's smallest
normal number are flushed to 0: they change no sum of sane inputs and subnormal arithmetic is slow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK = 128


def _powers(discount: float, exponents: torch.Tensor) -> torch.Tensor:
    powers = torch.tensor(discount, dtype=torch.float64, device=exponents.device) ** exponents
    return torch.where(powers.abs() < torch.finfo(torch.float64).tiny, torch.zeros_like(powers), powers)


def discount_matrix(discount: float, size: int, device=None) -> torch.Tensor:
    """``M[i, j] = discount^(j-i)`` for ``j >= i``, 0 below the diagonal, float64 [size, size]."""
    steps = torch.arange(size, device=device, dtype=torch.float64)
    exponents = steps[None, :] - steps[:, None]
    return torch.where(exponents >= 0, _powers(discount, exponents.clamp(min=0)), 0.0)


def reverse_discounted_cumsum(x: torch.Tensor, discount: float, chunk: int = CHUNK) -> torch.Tensor:
    """``y[..., t] = sum over s >= t of discount^(s-t) · x[..., s]``, exactly, in float64 internally.

    Right-padding a row with zeros leaves its values unchanged, so padded batches need no mask."""
    if chunk < 2:
        raise ValueError(f"chunk must be at least 2, not {chunk}")
    return _scan(x.to(torch.float64), float(discount), chunk).to(x.dtype)


def _scan(x: torch.Tensor, discount: float, chunk: int) -> torch.Tensor:
    length = x.shape[-1]
    if length == 0:
        return x.clone()
    size = min(chunk, length)
    chunks = -(-length // size)
    blocks = (F.pad(x, (0, chunks * size - length)) if chunks * size > length else x).unflatten(-1, (chunks, size))
    within = blocks @ discount_matrix(discount, size, x.device).T  # each token's sum to its chunk's end
    if chunks > 1:
        at_starts = _scan(within[..., 0], discount ** size, chunk)  # y at the first token of every chunk
        after = F.pad(at_starts[..., 1:], (0, 1))  # y at the first token of the next chunk (0 after the last)
        exponents = torch.arange(size, 0, -1, device=x.device, dtype=torch.float64)  # chunk - i
        within.addcmul_(after[..., None], _powers(discount, exponents))
    return within.flatten(-2)[..., :length]
