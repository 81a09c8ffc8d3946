"""The error contract of generate_args.py: on any error nothing on stdout, a message naming the file
and key on stderr, a non-zero exit, and an existing -o target left untouched."""

from __future__ import annotations

import pytest

from tests.test_generate_args import generator

BASE = "defaults:\n  - run_qwen3_4B\n  - _self_\n"
CASES = {
    "yaml syntax error": (
        {"broken.yaml": BASE + "rollout:\n  rollout_batch_size: [1, 2\n"}, ["--config-name", "broken"],
        ["broken.yaml", "YAML syntax error at line"]),
    "yaml syntax error in a group option": (
        {"model/bad.yaml": "num_layers: [1, 2\n"}, ["--config-name", "run_qwen3_4B", "model=bad"],
        ["model/bad.yaml", "YAML syntax error"]),
    "unknown group option": (
        {}, ["--config-name", "run_qwen3_4B", "model=qwen3-5B"], ["run_qwen3_4B", "Could not find 'model/qwen3-5B'"]),
    "unknown key": (
        {"typo.yaml": BASE + "model:\n  num_layer: 30\n"}, ["--config-name", "typo"],
        ["typo.yaml: model.num_layer=30", "did you mean num_layers (--num-layers)?"]),
    "unknown key as an override": (
        {}, ["--config-name", "run_qwen3_4B", "+perf.tensor_parallel=2"],
        ["override +perf.tensor_parallel=2: unknown flag --tensor-parallel"]),
    "wrong type": (
        {"wrong.yaml": BASE + "model:\n  num_layers: many\n"}, ["--config-name", "wrong"],
        ["invalid int value: 'many'", "wrong.yaml: model.num_layers=many"]),
    "a switch given a value": (
        {}, ["--config-name", "run_qwen3_4B", "perf.sequence_parallel=2"],
        ["perf.sequence_parallel=2", "--sequence-parallel is a switch"]),
    "cross-field violation": (
        {"cross.yaml": BASE + "rollout:\n  global_batch_size: 24\n"}, ["--config-name", "cross"],
        ["not a multiple of --global-batch-size 24", "cross.yaml: rollout.global_batch_size=24",
         "conf/run_qwen3_4B.yaml: rollout.rollout_batch_size=32"]),
    "interpolation to a missing key": (
        {"interp.yaml": BASE + "ckpt:\n  load: ${run.model_folder}/ckpt\n"}, ["--config-name", "interp"],
        ["interp.yaml: ckpt.load", "run.model_folder"]),
}


@pytest.mark.parametrize(("files", "args", "expected"), CASES.values(), ids=CASES.keys())
def test_error_contract(tmp_path, files, args, expected):
    extra = tmp_path / "extra_conf"
    extra.mkdir()
    for name, text in files.items():
        (extra / name).parent.mkdir(parents=True, exist_ok=True)
        (extra / name).write_text(text)
    target = tmp_path / "args.sh"
    target.write_text("previous complete file\n")
    result = generator("--config-dir", str(extra), *args, "-o", str(target))
    assert result.returncode != 0
    assert result.stdout == ""
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_text() == "previous complete file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.sh", "extra_conf"]


def test_every_problem_is_reported_at_once(tmp_path):
    result = generator("--config-name", "run_qwen3_4B", "+model.num_layer=3", "rollout.rollout_temperature=0",
                       "perf.tensor_model_parallel_size=3")
    assert result.returncode == 2 and result.stdout == ""
    assert "5 problems" in result.stderr
    for text in ("unknown flag --num-layer", "rollout.rollout_temperature=0", "perf.tensor_model_parallel_size=3"):
        assert text in result.stderr


def test_no_config_name_is_explained():
    result = generator()
    assert result.returncode == 2 and "give --config-name NAME: one of" in result.stderr
