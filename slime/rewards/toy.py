"""Rewards of the tiny tasks (tools/make_tiny_model.py), for ``--custom-rm-path``.

``positional_match``: the share of the label's characters that the response has at the same
position, so that a several-token answer earns credit for each token in place — and, since GRPO
gives every token of a response the same advantage, the run has to learn which of them earned it.
"""

from __future__ import annotations


def positional_match(args, sample) -> float:
    label = str(sample.label)
    response = sample.response
    return sum(a == b for a, b in zip(response, label)) / len(label) if label else 0.0
