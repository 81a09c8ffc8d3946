"""Rewards of the tiny tasks (tools/make_tiny_model.py), for ``--custom-rm-path``.

``prefix_match``: the share of the label's characters that the response gets right before its first
mistake. A several-token answer earns credit token by token, in order: a response that repeats one
digit, right only by chance in a late position, earns nothing, so the cheap local optimum of a
partial-credit reward is not one here.
"""

from __future__ import annotations


def prefix_match(args, sample) -> float:
    label, response = str(sample.label), sample.response
    right = 0
    for expected, got in zip(label, response):
        if expected != got:
            break
        right += 1
    return right / len(label) if label else 0.0
