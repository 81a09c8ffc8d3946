"""--balance-data: equal-size Karmarkar-Karp partitions, and the trainer's shards built from them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slime.utils.seqlen_balancing import balanced_order, balanced_partition


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8).flatmap(lambda k: st.tuples(
    st.just(k), st.integers(0, 6).flatmap(lambda n: st.lists(st.integers(0, 5000), min_size=n * k, max_size=n * k)))))
def test_every_rank_gets_as_many_samples_and_every_sample_goes_somewhere(case):
    parts, weights = case
    partition = balanced_partition(weights, parts)
    assert len(partition) == parts
    assert {len(p) for p in partition} <= {len(weights) // parts}
    assert sorted(i for p in partition for i in p) == list(range(len(weights)))


def _spread(weights, partition):
    sums = [sum(weights[i] for i in part) for part in partition]
    return max(sums) - min(sums)


def test_long_and_short_samples_are_spread_over_the_ranks():
    weights = [900, 850, 800, 700, 120, 100, 90, 80]  # a step sorted by length, as responses often come
    contiguous = [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert _spread(weights, contiguous) == 2860
    assert _spread(weights, balanced_partition(weights, 2)) == 20  # 1830 and 1810 tokens
    ranks4 = balanced_partition(weights, 4)
    assert _spread(weights, ranks4) == 160 and all(len(p) == 2 for p in ranks4)  # vs 1580 for pairs in order


def test_the_order_keeps_each_step_s_samples_in_that_step():
    lengths = [5, 1, 1, 5, 9, 9, 1, 1]
    order = balanced_order(lengths, steps=2, ranks=2)
    assert sorted(order[:4]) == [0, 1, 2, 3] and sorted(order[4:]) == [4, 5, 6, 7]
    assert sum(lengths[i] for i in order[:2]) == sum(lengths[i] for i in order[2:4]) == 6
    assert sum(lengths[i] for i in order[4:6]) == sum(lengths[i] for i in order[6:]) == 10


def test_the_trainer_shards_by_balance_and_gathers_results_in_rollout_order():
    from slime.trainer import Trainer
    from slime.arguments.parser import parse_args
    from tests.helpers.command_lines import MINIMAL

    batch = [{"prompt_tokens": [0] * 2, "response_tokens": [1] * n, "id": i} for i, n in enumerate([8, 7, 6, 5, 1, 1, 1, 1])]
    for balance, expected_tokens in ((False, [34, 12]), (True, [23, 23])):
        trainer = Trainer(parse_args([*MINIMAL, *(["--balance-data"] if balance else [])]), [])
        shards, gather = trainer._shards(batch, steps=1, ranks=2)
        assert [sum(len(r["prompt_tokens"]) + len(r["response_tokens"]) for r in s) for s in shards] == expected_tokens
        assert gather([[row["id"] for row in shard] for shard in shards]) == list(range(8))
