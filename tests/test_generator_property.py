"""A property of tools/generate_args.py's whole command line (issue 13): whatever the overrides, the
values and the config files, it never shows a traceback. It exits 0 with a complete file on stdout,
or exits 2 with a message on stderr and nothing on stdout. Examples are few and run in-process,
since each costs a fraction of a second."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.generator_runner import run_generator

pytestmark = pytest.mark.slow  # 40 runs of the generator

KEYS = ["optimizer.lr", "rollout.rollout_batch_size", "rollout.num_rollout", "perf.micro_batch_size",
        "ckpt.save", "wandb.wandb_group", "misc.seed", "rollout.rollout_temperature", "run.model_dir",
        "eval.eval_interval", "cluster.actor_num_gpus_per_node", "roles.critic.lr", "env.NCCL_DEBUG",
        "model.num_layers", "nosuch.key", "rollout.no_such_flag"]
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["abc", "null", "true", "[1,2]", "{a: 1}", "${run.model_dir}", "${oc.env:NOPE}", "${x:y}",
                     "'\\${BASE_FOLDER}/x'", "'=ls'", "''", "'a b'", "${run.a}", "'\\${_}'", "-1e-5", "1e400"]),
    st.text(max_size=12).map(lambda t: "'" + t.replace("\\", "\\\\").replace("'", "\\'") + "'"),
)
OVERRIDE = st.one_of(
    st.tuples(st.sampled_from(["", "+", "++"]), st.sampled_from(KEYS), VALUES).map(lambda t: f"{t[0]}{t[1]}={t[2]}"),
    st.sampled_from(KEYS).map(lambda k: f"~{k}"),
    st.sampled_from(["model=tiny", "model=qwen3-4b", "model=nope", "+experiment=quick_test", "grpo=ppo",
                     "hydra.verbose=true", "hydra/hydra_logging=default"]),
    st.text(max_size=10),
)
CONFIG_TEXT = st.one_of(
    st.sampled_from(["rollout:\n  num_rollout: [1, 2\n", "\ufeff# @package _global_\nrollout: {num_rollout: 3}\n",
                     "a: &a [x, x]\nb: [*a, *a]\n", "rollout:\n  num_rollout: 5\n", "- just\n- a list\n",
                     "rollout: 7\n", "misc:\n  seed: \"\\0\"\n"]),
    st.text(max_size=40),
)
OPTIONS = st.lists(st.sampled_from([["--plan"], ["--format", "json"], ["--provenance"], ["--which", "rollout"],
                                    ["--which", "nope.nope"]]), max_size=1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=st.lists(OVERRIDE, max_size=4), config_text=st.none() | CONFIG_TEXT, options=OPTIONS,
       config_name=st.sampled_from(["run_tiny_cpu", "run_qwen3_4B", "mine", "run_nope"]))
def test_the_command_line_never_shows_a_traceback(overrides, config_text, options, config_name):
    with tempfile.TemporaryDirectory() as tmp:
        config_dir = Path(tmp)
        (config_dir / "mine.yaml").write_text("defaults:\n  - run_tiny_cpu\n  - extra\n  - _self_\n")
        (config_dir / "extra.yaml").write_text(config_text if config_text is not None else "{}\n",
                                               encoding="utf-8", errors="surrogatepass")
        flat_options = [word for option in options for word in option]
        result = run_generator("-cd", str(config_dir), "--config-name", config_name, *flat_options, *overrides,
                               cwd=config_dir)
        left = sorted(p.name for p in config_dir.iterdir())
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    if result.returncode == 0:
        if not flat_options:
            assert result.stdout.endswith("SLIME_ARGS_COMPLETE=1\n"), result.stdout[-300:]
        assert result.stdout
    else:
        assert result.stdout == "" and result.stderr.strip()
    assert left == ["extra.yaml", "mine.yaml"] or "hydra/job_logging" in " ".join(overrides)
