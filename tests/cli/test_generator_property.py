"""A property of tools/generate_args.py's whole command line (issues 13 and 15): whatever the overrides,
the values, the config files, where they are found (-cd, -cp, hydra.searchpath as file:// or plain
paths), the output (stdout or -o) and Hydra's --cfg spellings with --resolve, it never shows a
traceback. It exits 0 with a complete file, or exits 2 with a message on stderr and nothing on stdout
(and no -o file); and every args file it writes regenerates (--regenerate) to the same bytes. Examples
are few and run in-process, since each costs a fraction of a second."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.generator import run_generator
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow  # 45 runs of the generator, and a regeneration of each file written

KEYS = ["optimizer.lr", "rollout.rollout_batch_size", "rollout.num_rollout", "perf.micro_batch_size",
        "ckpt.save", "wandb.wandb_group", "misc.seed", "rollout.rollout_temperature", "run.model_dir",
        "eval.eval_interval", "cluster.actor_num_gpus_per_node", "roles.critic.lr", "env.NCCL_DEBUG",
        "model.num_layers", "nosuch.key", "rollout.no_such_flag", "optimzer.lr"]
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["abc", "null", "true", "[1,2]", "{a: 1}", "${run.model_dir}", "${oc.env:NOPE}", "${x:y}",
                     "'\\${BASE_FOLDER}/x'", "'=ls'", "''", "'a b'", "${run.a}", "'\\${_}'", "-1e-5", "1e400",
                     "${run.nope}"]),
    st.text(max_size=12).map(lambda t: "'" + t.replace("\\", "\\\\").replace("'", "\\'") + "'"),
)
OVERRIDE = st.one_of(
    st.tuples(st.sampled_from(["", "+", "++"]), st.sampled_from(KEYS), VALUES).map(lambda t: f"{t[0]}{t[1]}={t[2]}"),
    st.sampled_from(KEYS).map(lambda k: f"~{k}"),
    st.sampled_from(["model=tiny", "model=qwen3-4b", "model=nope", "modle=tiny", "+experiment=quick_test",
                     "+experiment=mine", "grpo=ppo", "misc=extra", "hydra.verbose=true",
                     "hydra/hydra_logging=default"]),
    st.text(max_size=10),
)
# Overrides that generate on the configs drawn, so that many examples write a file to regenerate.
VALID = st.sampled_from(["optimizer.lr=2e-6", "rollout.num_rollout=5", "ckpt.save=/ckpt/${run.model_dir}",
                         "+experiment=quick_test", "+experiment=mine", "wandb.wandb_group='a b'", "++misc.seed=7",
                         "ckpt.save='\\${BASE_FOLDER}/x'", "+rollout.rollout_top_p=0.95", "+env.A='x y'",
                         "rollout.rollout_temperature=${optimizer.lr}", "+run.extra=1", "hydra.verbose=false"])
CONFIG_TEXT = st.one_of(
    st.sampled_from(["rollout:\n  num_rollout: [1, 2\n", "\ufeff# @package _global_\nrollout: {num_rollout: 3}\n",
                     "a: &a [x, x]\nb: [*a, *a]\n", "rollout:\n  num_rollout: 5\n", "- just\n- a list\n",
                     "rollout: 7\n", "misc:\n  seed: \"\\0\"\n", "# @package _global_\nrollout:\n  num_rollout: 7\n"]),
    st.text(max_size=40),
)
OPTIONS = st.lists(st.sampled_from([["--plan"], ["--format", "json"], ["--provenance"], ["--which", "rollout"],
                                    ["--which", "nope.nope"]]), max_size=1)
# Hydra's --cfg in its spellings, with --resolve (the generator shows those itself), and its misuses.
CFG = st.sampled_from([[], [], [], ["--cfg", "job", "--resolve"], ["--cfg=job", "--resolve"], ["-cjob", "--resolve"],
                       ["-c", "job", "--resolve"], ["--cfg", "all", "--resolve"], ["--cfg", "hydra", "--resolve"],
                       ["--cfg", "job", "--resolve", "--package", "ckpt"], ["--resolve", "-p", "ckpt.save", "-cjob"],
                       ["--cfg", "job", "--resolve", "-p", "nope"], ["--resolve"], ["--cfg", "job", "--resolve", "-m"]])
# Where the extra configs are found: beside conf/ (-cd), instead of it (-cp, conf/ then added by -cd), or
# on hydra.searchpath; the folder absolute or relative to the current one.
WHERE = st.sampled_from(["-cd", "-cd relative", "-cp", "-cp relative", "searchpath file://", "searchpath plain",
                         "searchpath relative"])
OUTPUT = st.sampled_from([None, None, "args.sh", "mine.yaml", "missing/args.sh"])


def where_args(where: str, config_dir: Path) -> list[str]:
    folder = "." if "relative" in where else str(config_dir)
    if where.startswith("-cd"):
        return ["-cd", folder]
    if where.startswith("-cp"):
        return ["-cp", folder, "-cd", str(ROOT / "conf")]
    return [f"hydra.searchpath=[{'file://' if 'file' in where else ''}{folder}]"]


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=st.lists(VALID, max_size=3) | st.lists(OVERRIDE, max_size=4), config_text=st.none() | CONFIG_TEXT, options=OPTIONS, cfg=CFG,
       where=WHERE, output=OUTPUT, config_name=st.sampled_from(["run_tiny_cpu", "run_qwen3_4B", "mine", "run_nope"]))
def test_the_command_line_never_shows_a_traceback(overrides, config_text, options, cfg, where, output, config_name):
    with tempfile.TemporaryDirectory() as tmp:
        config_dir = Path(tmp)
        mine = "defaults:\n  - run_tiny_cpu\n  - extra\n  - _self_\n"
        (config_dir / "mine.yaml").write_text(mine)
        (config_dir / "extra.yaml").write_text(config_text if config_text is not None else "{}\n",
                                               encoding="utf-8", errors="surrogatepass")
        (config_dir / "experiment").mkdir()
        (config_dir / "experiment" / "mine.yaml").write_text("# @package _global_\nrollout:\n  num_rollout: 7\n")
        flat_options = [word for option in options for word in option] + cfg
        flat_options += ["-o", output] if output else []
        args = [*where_args(where, config_dir), "--config-name", config_name, *flat_options, *overrides]
        result = run_generator(*args, cwd=config_dir)
        written = config_dir / output if output else None
        file_text = written.read_text() if written is not None and written.is_file() else None
        if output == "mine.yaml" and file_text == mine:  # a config file -o must not replace once it is read
            file_text = None
        args_file = result.stdout if output is None else file_text
        regenerated = None
        if result.returncode == 0 and not options and not cfg and args_file:
            target = config_dir / "regenerate_me.sh"
            target.write_text(args_file)
            regenerated = run_generator("--regenerate", str(target), cwd=ROOT)  # from anywhere
            target.unlink()
        left = sorted(p.name for p in config_dir.iterdir())
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    if result.returncode == 0:
        if output:
            assert result.stdout == "" and file_text, (args, result.stderr)
        else:
            assert result.stdout, args
        if not flat_options or flat_options == ["-o", output]:
            assert args_file.endswith("SLIME_ARGS_COMPLETE=1\n"), args_file[-300:]
    else:
        assert result.stdout == "" and result.stderr.strip(), args
        assert file_text is None, args  # nothing written
    if regenerated is not None:
        assert "Traceback" not in regenerated.stderr, regenerated.stderr
        assert regenerated.returncode == 0 and regenerated.stdout == "", (args, regenerated.stdout, regenerated.stderr)
    expected = {"experiment", "extra.yaml", "mine.yaml"} | ({"args.sh"} if file_text is not None and
                                                            output == "args.sh" else set())
    expected |= {"missing"} if output == "missing/args.sh" and file_text is not None else set()
    assert set(left) == expected or "hydra/job_logging" in " ".join(overrides), (left, args)
