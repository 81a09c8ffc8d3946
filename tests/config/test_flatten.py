"""A config's values as the trainer's argv (slime.config.flatten): a repeatable flag once per value."""

from __future__ import annotations

from slime.arguments.parser import parse_argv


def test_a_repeatable_flag_is_written_once_per_value_and_parses_back():
    from slime.config.flatten import value_tokens
    from slime.arguments.registry import flag_by_option

    f = flag_by_option()["--rollout-sample-hook-path"]
    tokens = value_tokens(f, "--rollout-sample-hook-path", ["a.b.c", "d.e.f"])
    assert tokens == ["--rollout-sample-hook-path", "a.b.c", "--rollout-sample-hook-path", "d.e.f"]
    assert parse_argv(tokens).rollout_sample_hook_path == ["a.b.c", "d.e.f"]
