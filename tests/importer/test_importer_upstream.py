"""The importer on the forms today's upstream slime launchers take (issue 24): arrays expanded but
never defined, variables computed from a stand-in command, a later array overriding the model file,
DeepSeek-R1's unquoted ``--moe-layer-freq``. Each fixture under tests/fixtures/launchers/ imports with
Namespace parity (tests/importer/test_importer.py checks every one reproduces its committed import);
these tests check what the import holds and says."""

from __future__ import annotations

import pytest

from slime.importer.capture import capture
from slime.importer.convert import convert
from slime.importer.importer import ImportTarget, import_launcher, parity
from tests.helpers.bash import source_arrays
from tests.helpers.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "launchers"
INTO = ImportTarget(ROOT / "tests" / "fixtures" / "imported")
CONF = INTO.conf


def _config(result, name: str) -> str:
    return next(text for path, text in result.files.items() if path == INTO.config_file(name))


def _golden_argv(name: str, env: dict[str, str] | None = None) -> list[str]:
    """train.py's argv from the committed golden file of an import, sourced in bash."""
    arrays = source_arrays(INTO.golden(name).read_text(), env)
    return [token for array, tokens in arrays.items() if array != "SLIME_JOB_ENV" for token in tokens]


def _assert_parity(script: str, name: str, env: dict[str, str] | None = None) -> None:
    """The launcher's own argv (its variables given; a number flag's ${X:-d} as d, the value it has unset)
    and the golden's, sourced with the same variables, parse to the same Namespace."""
    captured = capture(FIXTURES / script, values=env)
    launcher = convert(captured.argv, captured.arrays).argv(captured.argv)
    differences, _ = parity(launcher, _golden_argv(name, env))
    assert differences == []


def test_arrays_commented_out_but_still_expanded_are_empty_with_a_note():
    result = import_launcher(FIXTURES / "run-imported-upstream-undefined-array.sh", target=INTO)
    for array in ("EVAL_ARGS", "WANDB_ARGS"):
        assert f'{array}: the script expands "${{{array}[@]}}" but never defines it, and bash expands an undefined ' \
               "array to nothing: it is taken as empty" in result.notes
    config = _config(result, "run_imported_upstream_undefined_array")
    assert "\neval:" not in config and "\nwandb:" not in config and "_ARGS" not in config
    assert "eval_interval" not in INTO.golden("run_imported_upstream_undefined_array").read_text()
    _assert_parity("run-imported-upstream-undefined-array.sh", "run_imported_upstream_undefined_array")


def test_gpu_counts_the_script_computes_from_nvidia_smi_are_its_own_value_with_a_note():
    result = import_launcher(FIXTURES / "run-imported-upstream-numgpus.sh", target=INTO)
    config = _config(result, "run_imported_upstream_numgpus")
    assert "actor_num_gpus_per_node: 8\n" in config and "rollout_num_gpus: 8\n" in config and "GPUS" not in config
    for name, how in [("NUM_GPUS", "${NUM_GPUS:-$(nvidia-smi -L | wc -l)}"),
                      ("ROLLOUT_GPUS", "$(nvidia-smi -L 2>/dev/null | wc -l)")]:
        assert (f"{name}: the script computes it, {how}; nvidia-smi is a stand-in while importing that prints nothing, "
                f"and with it the script's value is 8. The config holds 8 where a number flag uses it "
                f"(${{{name}:-8}} in a text flag): import with --set {name}=VALUE for another value, or override "
                "the flag in the config") in result.notes
    assert not [note for note in result.notes if "not literal text" in note] and result.substituted == []
    _assert_parity("run-imported-upstream-numgpus.sh", "run_imported_upstream_numgpus")
    given = import_launcher(FIXTURES / "run-imported-upstream-numgpus.sh", values={"NUM_GPUS": "4"}, target=INTO)
    assert "actor_num_gpus_per_node: 4\n" in _config(given, "run_imported_upstream_numgpus")
    assert not [note for note in given.notes if note.startswith("NUM_GPUS")]


def test_a_computed_variable_in_a_text_flag_keeps_the_scripts_value_as_its_default(tmp_path):
    script = tmp_path / "run-x.sh"
    script.write_text("""#!/bin/bash
set -eu
NUM_GPUS=${NUM_GPUS:-$(nvidia-smi -L | wc -l)}
[ "${NUM_GPUS}" -gt 0 ] || NUM_GPUS=8
if [ -z "${OUT:-}" ]; then OUT=$(pwd)/out; fi
python3 train.py --save "/ckpt/on-${NUM_GPUS}" --load "${OUT}/last" --actor-num-gpus-per-node "${NUM_GPUS}"
""")
    captured = capture(script, timeout=30)
    assert captured.argv == ["--save", "/ckpt/on-${NUM_GPUS:-8}", "--load", f"${{OUT:-{tmp_path}/out}}/last",
                             "--actor-num-gpus-per-node", "${NUM_GPUS:-8}"]
    assert f"OUT: the script computes it, $(pwd)/out; the script's value is {tmp_path}/out here. The config holds " \
           f"{tmp_path}/out where a number flag uses it (${{OUT:-{tmp_path}/out}} in a text flag): import with --set " \
           "OUT=VALUE for another value, or override the flag in the config" in captured.notes
    # not a count: listed with the values of command substitutions, to be checked before committing
    assert captured.substituted == {"OUT": ("$(pwd)/out", f"{tmp_path}/out")}
    assert capture(script, values={"NUM_GPUS": "2"}, timeout=30).argv[1] == "/ckpt/on-2"


def test_arithmetic_on_a_computed_or_defaulted_variable_is_the_scripts_value_not_the_placeholders(tmp_path):
    script = tmp_path / "run-x.sh"
    script.write_text("""#!/bin/bash
NUM_GPUS=${NUM_GPUS:-$(nvidia-smi -L | wc -l)}
[ "${NUM_GPUS}" -gt 0 ] || NUM_GPUS=8
HALF=${HALF:-4}
python3 train.py --rollout-num-gpus $((NUM_GPUS / 2)) --actor-num-gpus-per-node $((HALF * 2))
""")
    captured = capture(script, timeout=30)
    assert captured.argv == ["--rollout-num-gpus", "4", "--actor-num-gpus-per-node", "8"]
    assert "--rollout-num-gpus 4: the script computes it from variables it defaults or computes, in a form no shell " \
           "reference can hold (arithmetic?), so the config holds the script's own value" in captured.notes
    assert any(note.startswith("--actor-num-gpus-per-node 8: the script computes it") for note in captured.notes)


@pytest.mark.parametrize("script, name, model, env", [
    ("run-imported-upstream-moonlight.sh", "run_imported_upstream_moonlight", "moonlight", {}),
    ("run-imported-upstream-deepseek-r1.sh", "run_imported_upstream_deepseek_r1", "deepseek-v3",
     {"BASE_DIR": "/mnt/ckpt", "MASTER_ADDR": "10.0.0.1"}),
])
def test_a_later_array_overriding_the_model_file_is_a_model_section_not_a_conflict(script, name, model, env):
    result = import_launcher(FIXTURES / script, target=INTO)
    assert result.model == model and not result.new_model  # the model file is reused, matched on MODEL_ARGS
    assert ("--moe-token-dispatcher-type: MISC_ARGS gives flex after MODEL_ARGS's alltoall, and argparse keeps the "
            f"last: the config's model: section overrides model/{model}.yaml with it") in result.notes
    assert "--moe-token-dispatcher-type" not in result.respelled
    config = _config(result, name)
    assert (f"model:\n  # from MISC_ARGS; model/{model}.yaml has alltoall\n  moe_token_dispatcher_type: flex\n"
            in config)
    assert config.count("moe_token_dispatcher_type") == 1  # not in misc: as well
    golden = source_arrays(INTO.golden(name).read_text(), env)
    assert golden["MODEL_ARGS"][golden["MODEL_ARGS"].index("--moe-token-dispatcher-type") + 1] == "flex"
    assert "--moe-token-dispatcher-type" not in golden["MISC_ARGS"]
    _assert_parity(script, name, env)


def test_deepseek_r1_keeps_deepep_in_misc_and_its_layer_freq_round_trips():
    config = (CONF / "run_imported_upstream_deepseek_r1.yaml").read_text()
    assert "moe_enable_deepep: true" in config.split("\nmisc:\n")[1] and "moe_layer_freq" not in config
    golden = source_arrays(INTO.golden("run_imported_upstream_deepseek_r1").read_text(), {"BASE_DIR": "/b"})
    model_args = golden["MODEL_ARGS"]
    assert model_args[model_args.index("--moe-layer-freq") + 1] == "[0]*3+[1]*58"  # quoted there: no glob


@pytest.mark.parametrize("later, expected", [
    (["--moe-token-dispatcher-type", "flex"], {"moe_token_dispatcher_type": "flex"}),
    # back to MODEL_ARGS's value by the last array: nothing to override
    (["--moe-token-dispatcher-type", "flex", "--moe-token-dispatcher-type", "alltoall"], {}),
])
def test_the_model_override_is_the_last_value_argparse_keeps(later, expected):
    model = ["--num-layers", "2", "--moe-token-dispatcher-type", "alltoall"]
    converted = convert([*model, *later], {"MODEL_ARGS": model, "MISC_ARGS": later})
    assert {key: o.value for key, o in converted.model_overrides.items()} == expected
    assert converted.groups["model"]["moe_token_dispatcher_type"] == "alltoall" and "misc" not in converted.groups


def test_the_unquoted_layer_freq_that_bash_globs_to_a_file_is_a_clear_error(tmp_path, capsys):
    """``[0]*3+[1]*58`` unquoted is a bash glob: with a file ``03+158`` where the script runs, bash passes that."""
    from slime.cli.import_launcher import main

    (tmp_path / "models").mkdir()
    script = tmp_path / "run-imported-upstream-deepseek-r1.sh"
    script.write_text((FIXTURES / script.name).read_text())
    (tmp_path / "models" / "deepseek-v3.sh").write_text((FIXTURES / "models" / "deepseek-v3.sh").read_text())
    (tmp_path / "03+158").touch()
    assert main([str(script), "--into", str(tmp_path / "into"), "--set", "BASE_DIR=/b"]) == 2
    message = capsys.readouterr().err
    assert f"MODEL_ARGS (from {tmp_path}/models/deepseek-v3.sh) do not parse as train.py's flags:" in message
    assert "argument --moe-layer-freq: expected an integer or a list of 0/1 per layer" in message and "'03+158'" in message
    assert (f"bash expanded the unquoted [0]*3+[1]*58 of {tmp_path}/models/deepseek-v3.sh to 03+158, the name of a "
            f"file in {tmp_path} (where the script runs): quote it, '[0]*3+[1]*58', so bash passes it as written"
            in message)
    assert "Traceback" not in message and not (tmp_path / "into").exists()


def test_an_inline_flag_over_a_new_model_file_is_an_override_too(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "acme-moe-16B.sh").write_text((FIXTURES / "models" / "acme-moe-16B.sh").read_text())
    script = tmp_path / "run-acme.sh"
    script.write_text((FIXTURES / "run-imported-upstream-newmodel.sh").read_text().replace(
        '"${OPTIMIZER_ARGS[@]}"', '"${OPTIMIZER_ARGS[@]}" --moe-token-dispatcher-type flex'))
    result = import_launcher(script, target=ImportTarget(tmp_path / "into"))  # parity holds, or it raises
    assert result.new_model
    files = {path.name: text for path, text in result.files.items()}
    assert "moe_token_dispatcher_type: alltoall\n" in files["acme-moe-16B.yaml"]  # the model file is MODEL_ARGS
    assert ("model:\n  # from train.py's command line; model/acme-moe-16B.yaml has alltoall\n"
            "  moe_token_dispatcher_type: flex\n") in files["run_acme.yaml"]
