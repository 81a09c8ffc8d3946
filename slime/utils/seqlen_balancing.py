"""--balance-data: the samples of an optimizer step split over data-parallel ranks so that every rank
gets as many samples as the others and about as many tokens, by the Karmarkar-Karp differencing
method for k-way partitions of equal size.

The items, longest first, are taken k at a time; each such group is a partial partition of k parts
holding one item each. The two partial partitions with the largest spread (heaviest part minus
lightest) are merged, the heaviest part of one with the lightest of the other, until one remains.
Every part then holds one item of every group: the same count.
"""

from __future__ import annotations

import heapq
import itertools


def balanced_partition(weights: list[int], parts: int) -> list[list[int]]:
    """Indices of ``weights`` in ``parts`` parts of equal size (``len(weights)`` must divide), each part's
    indices in ascending order, parts heaviest first."""
    if parts < 1 or len(weights) % parts:
        raise ValueError(f"{len(weights)} items do not split into {parts} equal parts")
    if not weights:
        return [[] for _ in range(parts)]
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    tie = itertools.count()
    heap = []
    for start in range(0, len(order), parts):
        state = [(weights[i], [i]) for i in order[start:start + parts]]
        heapq.heappush(heap, _entry(state, tie))
    while len(heap) > 1:
        first, second = heapq.heappop(heap)[2], heapq.heappop(heap)[2]
        heavy_first = sorted(first, key=lambda part: -part[0])
        light_first = sorted(second, key=lambda part: part[0])
        merged = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(heavy_first, light_first)]
        heapq.heappush(heap, _entry(merged, tie))
    final = sorted(heap[0][2], key=lambda part: -part[0])
    return [sorted(indices) for _, indices in final]


def _entry(state: list[tuple[int, list[int]]], tie) -> tuple:
    sums = [total for total, _ in state]
    return (-(max(sums) - min(sums)), next(tie), state)


def balanced_order(lengths: list[int], steps: int, ranks: int) -> list[int]:
    """A permutation of a rollout's samples, within each of its ``steps`` optimizer steps, after which
    consecutive equal shares of a step go to the ranks with balanced token counts."""
    per_step = len(lengths) // steps
    order = []
    for k in range(steps):
        offset = k * per_step
        for part in balanced_partition(lengths[offset:offset + per_step], ranks):
            order += [offset + i for i in part]
    return order
