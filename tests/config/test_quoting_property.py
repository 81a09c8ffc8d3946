"""Property: any string set through a Hydra override comes back from the sourced array exactly,
with only its ${NAME} and ${NAME:-default} references expanded; nothing in it is ever executed."""

from __future__ import annotations

import pytest
from pathlib import Path

from hydra import compose
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from slime.config.argsfile import render_bash
from slime.config.compose import hydra_context
from slime.config.generate import generate
from slime.config.overrides import override
from slime.config.shell import expand, unwritable_default
from tests.helpers.bash import source_arrays

CANARY = Path("/tmp/slime-quoting-canary")
PAYLOADS = [f"$(touch {CANARY})", f"`touch {CANARY}`", f"'; touch {CANARY}; '", f'"; touch {CANARY}; "',
            f"\ntouch {CANARY}\n", "*", "?[a]", "~", "--flag", "-", "${", "}", "$HOME", "\\", "'", '"', "é🙂",
            "\t", "\r\n", "$'\\x41'", "!!", "#comment", ";", "&&", "|", ">", "<(true)"]
# Variables the values may refer to; their values are themselves hostile and must stay inert.
ENVIRONMENT = {"BASE_FOLDER": "/base", "SLIME_A": f"$(touch {CANARY})", "SLIME_B": "two words * ?"}

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
REFERENCES = [f"${{{name}}}" for name in ENVIRONMENT] + ["${SLIME_UNSET:-/d-e.f}", "${SLIME_B:-x}", "${SLIME_UNSET:-}"]
piece = st.one_of(text, st.sampled_from(PAYLOADS), st.sampled_from(REFERENCES))
values = st.lists(piece, min_size=1, max_size=5).map("".join)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_any_string_round_trips_through_an_override(value):
    assume(unwritable_default(value) is None)  # refused by the generator (tests/config/test_shell_defaults.py)
    with hydra_context():
        cfg = compose("run_qwen3_4B", overrides=[override("rollout.label_key", value)])
        gen = generate(cfg, "run_qwen3_4B", [override("rollout.label_key", value)])
    arrays = source_arrays(render_bash(gen), ENVIRONMENT)
    rollout = arrays["ROLLOUT_ARGS"]
    expected = expand(value, ENVIRONMENT)
    if "--label-key" in rollout:
        assert rollout[rollout.index("--label-key") + 1] == expected
    else:
        assert f"--label-key={expected}" in rollout  # a value starting with "-" is written --flag=value
    assert not CANARY.exists()
