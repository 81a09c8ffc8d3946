"""The one log-probability function of both train backends (slime.algorithms.log_probs): the log-softmax of
the logits at the rollout temperature, gathered at the targets, and its entropy; the same over a
vocabulary split in two as over the whole; padding columns change nothing."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from slime.algorithms.log_probs import VocabShard, token_log_probs


def reference(logits: torch.Tensor, targets: torch.Tensor, temperature: float):
    log_p = torch.log_softmax(logits.double() / temperature, -1)
    return log_p.gather(1, targets[:, None]).squeeze(1), -(log_p.exp() * log_p).sum(-1)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.3])
def test_the_log_probs_and_entropy_are_those_of_the_tempered_distribution(temperature):
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 11) * 3, torch.randint(0, 11, (6,))
    log_probs, entropy = token_log_probs(logits, targets, temperature=temperature, with_entropy=True)
    want_log_probs, want_entropy = reference(logits, targets, temperature)
    torch.testing.assert_close(log_probs.double(), want_log_probs, rtol=0, atol=1e-5)
    torch.testing.assert_close(entropy.double(), want_entropy, rtol=0, atol=1e-5)
    assert token_log_probs(logits, targets, temperature=temperature)[1] is None


def test_uniform_logits_have_the_entropy_of_a_uniform_distribution():
    _, entropy = token_log_probs(torch.zeros(2, 4), torch.tensor([0, 3]), temperature=0.7, with_entropy=True)
    torch.testing.assert_close(entropy, torch.full((2,), math.log(4)))


def test_padding_columns_past_the_vocabulary_change_nothing():
    torch.manual_seed(1)
    logits, targets = torch.randn(5, 7), torch.randint(0, 7, (5,))
    padded = torch.cat([logits, torch.full((5, 3), 50.0)], dim=-1)  # large, so that they would dominate
    kept = token_log_probs(logits, targets, temperature=0.7, with_entropy=True)
    masked = token_log_probs(padded, targets, temperature=0.7, vocab_size=7, with_entropy=True)
    for a, b in zip(kept, masked):
        torch.testing.assert_close(a, b)


def test_two_shards_of_a_vocabulary_give_the_values_of_the_whole():
    """Two ranks, here two threads whose reductions meet at a barrier, each holding half the columns (the
    second half ending in padding), as megatron's tensor parallelism splits them."""
    torch.manual_seed(2)
    vocab, width = 13, 8
    logits, targets = torch.randn(4, 2 * width) * 2, torch.tensor([0, 5, 9, 12])
    barrier, slots = threading.Barrier(2), [None, None]

    def reduce(rank: int, combine):
        def reduced(tensor: torch.Tensor) -> torch.Tensor:
            slots[rank] = tensor
            barrier.wait()
            result = combine(slots[0], slots[1])
            barrier.wait()
            return result
        return reduced

    results = [None, None]

    def rank_work(rank: int):
        shard = VocabShard(start=rank * width, all_max=reduce(rank, torch.maximum), all_sum=reduce(rank, torch.add))
        results[rank] = token_log_probs(logits[:, rank * width:(rank + 1) * width], targets, temperature=0.7,
                                        vocab_size=vocab, with_entropy=True, shard=shard)

    threads = [threading.Thread(target=rank_work, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    whole = token_log_probs(logits[:, :vocab], targets, temperature=0.7, with_entropy=True)
    for rank in (0, 1):
        for a, b in zip(results[rank], whole):
            torch.testing.assert_close(a, b)
