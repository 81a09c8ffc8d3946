"""``${NAME:-default}`` in values: a reference with a literal default, used when the variable is unset or
empty; the generated file needs only the variables referred to without one, and so does the launcher."""

from __future__ import annotations

import subprocess
import sys

import pytest

from slime.config.argsfile import render_bash
from slime.config.shell import bash_word, defaulted_references, expand, referenced_names, unwritable_default
from tests.helpers.bash import source_arrays
from tests.helpers.paths import ROOT


def test_a_default_applies_when_unset_or_empty_and_a_value_wins():
    token = "${BASE_DIR:-/data}/Qwen3-4B"
    assert expand(token, {}) == expand(token, {"BASE_DIR": ""}) == "/data/Qwen3-4B"
    assert expand(token, {"BASE_DIR": "/mnt"}) == "/mnt/Qwen3-4B"
    with pytest.raises(KeyError, match="OTHER"):
        expand("${OTHER}/x", {})


def test_only_references_without_a_default_must_be_set():
    tokens = ["${A:-/a}/x", "${B}/y", "${B:-/b}", "${C:-}"]
    assert referenced_names(tokens) == ["B"]
    assert defaulted_references(tokens) == ["${A:-/a}", "${C:-}"]  # B's default never applies: B must be set


@pytest.mark.parametrize("token", ["${X:-$(touch /tmp/x)}", "${X:-`id`}", "${X:-${Y}}", "${X:-a b}", "${X:-'q'}"])
def test_a_default_that_is_not_literal_text_is_no_reference(token):
    assert unwritable_default(token) == "${X:-"
    assert "X" not in referenced_names([token]) and "X" not in str(defaulted_references([token]))


def test_sourcing_gives_the_default_or_the_value():
    words = " ".join(bash_word(t) for t in ["${BASE_DIR:-/data}/Qwen3-4B", "--x=${N:-8}", "${P:-a,b=c:d@e%f+g.h_-}"])
    text = f"A=({words})\nSLIME_ARG_ARRAYS=(A)\nSLIME_JOB_ENV=()\nSLIME_ARGS_COMPLETE=1\n"
    assert source_arrays(text)["A"] == ["/data/Qwen3-4B", "--x=8", "a,b=c:d@e%f+g.h_-"]
    assert source_arrays(text, {"BASE_DIR": "/mnt", "N": "3"})["A"][:2] == ["/mnt/Qwen3-4B", "--x=3"]


def generated(override: str):
    from hydra import compose

    from slime.config.compose import hydra_context
    from slime.config.generate import generate

    with hydra_context():
        return generate(compose("run_qwen3_4B", overrides=[override]), "run_qwen3_4B", [override])


def test_the_args_file_requires_only_variables_without_a_default():
    text = render_bash(generated(r"ckpt.hf_checkpoint=\${MODELS:-/models}/Qwen3-4B"))
    assert "# shell variables expanded when sourced: BASE_FOLDER\n" in text
    assert "# shell variables with defaults, used when unset or empty: ${MODELS:-/models}\n" in text
    assert "MODELS is not set" not in text
    ckpt = source_arrays(text, {"BASE_FOLDER": "/b"})["CKPT_ARGS"]
    assert ckpt[ckpt.index("--hf-checkpoint") + 1] == "/models/Qwen3-4B"


def test_a_default_that_is_not_literal_text_is_refused_by_the_generator():
    result = subprocess.run([sys.executable, "tools/generate_args.py", "--config-name", "run_qwen3_4B",
                             r"rollout.label_key=\${LK:-$(id)}"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "override rollout.label_key=\\${LK:-$(id)}: has ${LK:-… whose default is not literal text" in result.stderr


def test_the_launcher_does_not_require_a_variable_with_a_default(tmp_path):
    from tests.helpers.launchers import launch, submitted_argv

    args = tmp_path / "args.sh"
    subprocess.run([sys.executable, "tools/generate_args.py", "--config-name", "run_qwen3_4B", "-o", str(args),
                    r"ckpt.hf_checkpoint=\${MODELS:-/models}/Qwen3-4B"], cwd=ROOT, check=True)
    result = launch("run_qwen3_4B", "--dry-run", env={"ARGS_FILE": str(args)})
    assert result.returncode == 0, result.stderr
    argv = submitted_argv(result.stdout)
    assert argv[argv.index("--hf-checkpoint") + 1] == "/models/Qwen3-4B"
