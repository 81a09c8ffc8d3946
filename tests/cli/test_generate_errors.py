"""The error contract of generate_args.py: on any error nothing on stdout, a message naming the file
and key on stderr, a non-zero exit, and an existing -o target left untouched."""

from __future__ import annotations

import pytest

from tests.helpers.generator import run_generator
from tests.helpers.generator import generator
from tests.helpers.paths import ROOT

BASE = "defaults:\n  - run_qwen3_4B\n  - _self_\n"
CASES = {
    "yaml syntax error": (
        {"broken.yaml": BASE + "rollout:\n  rollout_batch_size: [1, 2\n"}, ["--config-name", "broken"],
        ["broken.yaml", "YAML syntax error at line"]),
    "yaml syntax error in a group option": (
        {"model/bad.yaml": "num_layers: [1, 2\n"}, ["--config-name", "run_qwen3_4B", "model=bad"],
        ["model/bad.yaml", "YAML syntax error"]),
    "unknown group option": (
        {}, ["--config-name", "run_qwen3_4B", "model=qwen3-5B"], ["model=qwen3-5B: model has no option 'qwen3-5B'"]),
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


# -- issue 13: every error is a message, one per problem, exit 2, nothing on stdout ---------------------

def expect_error(result, *texts: str) -> None:
    assert result.returncode == 2, (result.stdout[-500:], result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    for text in texts:
        assert text in result.stderr, result.stderr


TINY = ("--config-name", "run_tiny_cpu")


@pytest.mark.parametrize("overrides, expected", [
    (["+run.a=${run.b}", "+run.b=${run.a}"],
     ["override +run.a=${run.b}: Recursive interpolation detected", "override +run.b=${run.a}: Recursive"]),
    (["optimizer.lr=${oc.env:SLIME_TEST_UNSET}"],
     ["override optimizer.lr=${oc.env:SLIME_TEST_UNSET}: ", "Environment variable 'SLIME_TEST_UNSET' not found"]),
    (["ckpt.save=${run.nope}"], ["override ckpt.save=${run.nope}: Interpolation key 'run.nope' not found"]),
    (["ckpt.save=${nope:x}"], ["override ckpt.save=${nope:x}: Unsupported interpolation type nope"]),
], ids=["recursive", "unset-env", "missing-key", "unknown-resolver"])
def test_issue13_7_interpolations_in_overrides_are_reported_per_key(overrides, expected):
    result = run_generator(*TINY, *overrides)
    expect_error(result, *expected)
    assert "--save-interval needs --save" not in result.stderr  # a consequence, not a second problem


@pytest.mark.parametrize("overrides, reported, dependents", [
    (["ckpt.save=${run.nope}"], "override ckpt.save=${run.nope}: Interpolation key 'run.nope' not found",
     "(so does ckpt.load, which depends on it)"),
    (["run.model_dir=${run.nope}"], "override run.model_dir=${run.nope}: Interpolation key 'run.nope' not found",
     "(so do ckpt.hf_checkpoint, ckpt.ref_load, ckpt.save, ckpt.load, which depend on it)"),
    (["+run.a=${run.b}", "+run.b=${run.a}", "ckpt.save=${run.a}"],
     "override +run.a=${run.b}: Recursive interpolation detected", "(so do ckpt.save, ckpt.load, which depend on it)"),
], ids=["through-ckpt-load", "through-every-path", "through-a-cycle"])
def test_issue13_7_a_problem_reached_through_interpolations_is_reported_once(overrides, reported, dependents):
    result = run_generator(*TINY, *overrides)
    expect_error(result, reported + " " + dependents)
    assert result.stderr.count("Interpolation key") + result.stderr.count("Recursive") == \
        (2 if "+run.b=${run.a}" in overrides else 1), result.stderr
    assert "conf/run_tiny_cpu.yaml: ckpt.load" not in result.stderr
    assert "needs --save" not in result.stderr  # the dependents' flags are not reported missing either


def test_issue13_7_overrides_are_recorded_as_typed():
    result = run_generator(*TINY, "ckpt.save=/ckpt/${run.dir}", "+run.dir=x")
    assert result.returncode == 0, result.stderr
    assert '# overrides: ["ckpt.save=/ckpt/${run.dir}", "+run.dir=x"]' in result.stdout
    assert "--save /ckpt/x\n" in result.stdout


def test_issue13_8_a_config_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "latin1.yaml").write_bytes("num_layers: 2\n# caf\u00e9\n".encode("latin-1"))
    for args in (TINY, ("--config-name", "run_tiny_cpuu")):  # even a misspelled config name
        expect_error(run_generator("-cd", str(tmp_path), *args),
                     f"{tmp_path}/model/latin1.yaml: not UTF-8 (byte 0xe9 on line 2)")


def test_issue13_8_a_byte_order_mark_before_package_is_named(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "bom.yaml").write_bytes(b"\xef\xbb\xbf# @package _global_\nrollout:\n  num_rollout: 7\n")
    expect_error(run_generator("-cd", str(tmp_path), *TINY, "+experiment=bom"),
                 f"{tmp_path}/experiment/bom.yaml: starts with a UTF-8 byte-order mark, which hides its '# @package'")


@pytest.mark.parametrize("value, expected", [
    ('"a\\0b"', "wandb.wandb_group: contains a NUL character"),
    ('"a\\udcffb"', "wandb.wandb_group: is not valid Unicode: '\\udcff' at position 2"),
], ids=["nul", "lone-surrogate"])
def test_issue13_9_values_no_argument_can_hold_are_errors(tmp_path, value, expected):
    (tmp_path / "mine.yaml").write_text(f"defaults:\n  - run_tiny_cpu\n  - _self_\nwandb:\n  wandb_group: {value}\n")
    expect_error(run_generator("-cd", str(tmp_path), "--config-name", "mine", "-o", str(tmp_path / "args.sh")),
                 f"{tmp_path}/mine.yaml: {expected}")
    assert not (tmp_path / "args.sh").exists()


def test_issue13_9_invalid_utf8_in_an_override_with_o_is_an_error(tmp_path):
    import subprocess
    import sys

    from tests.helpers.paths import ROOT

    result = subprocess.run([sys.executable, "tools/generate_args.py", *TINY, b"+wandb.wandb_group='a\xffb'",
                             "-o", str(tmp_path / "args.sh")], capture_output=True, cwd=ROOT, check=False)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and result.stdout == b"" and "Traceback" not in stderr
    assert "is not valid Unicode: '\\udcff' at position 2 (invalid UTF-8 given on the command line" in stderr
    assert list(tmp_path.iterdir()) == []


def test_issue13_9_which_names_a_missing_key():
    expect_error(run_generator(*TINY, "--which", "no.such.key"), "--which no.such.key: no such key in the composed config")
    expect_error(run_generator(*TINY, "--which", "rollout.num_rollot"), "did you mean rollout.num_rollout?")


def test_issue13_10_a_type_error_does_not_hide_the_other_problems():
    expect_error(run_generator(*TINY, "rollout.rollout_batch_size=-5", "perf.micro_batch_size=abc"),
                 "2 problems", "argument --micro-batch-size: invalid int value: 'abc'",
                 "--rollout-batch-size must be at least 1, got -5")


def test_issue13_11_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "bomb.yaml").write_text("\n".join(levels) + "\n")
    expect_error(run_generator("-cd", str(tmp_path), *TINY, "misc=bomb"),
                 f"{tmp_path}/misc/bomb.yaml: its YAML aliases expand to more than 100,000 nodes")


def test_issue13_13_hydra_logging_never_reaches_stdout(tmp_path):
    # stdout's job logging: the console handler Hydra ships (its default one also writes a log file: refused)
    result = run_generator(*TINY, "hydra/hydra_logging=default", "hydra/job_logging=stdout", "hydra.verbose=true",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert result.stdout.startswith("# shellcheck shell=bash") and "[HYDRA]" not in result.stdout
    assert "[HYDRA]" in result.stderr
    from tests.helpers.bash import source_arrays

    assert source_arrays(result.stdout, {"BASE_FOLDER": "/b"})["ROLLOUT_ARGS"]


def test_issue15_6_no_config_name_leaves_nothing_behind(tmp_path):
    import subprocess

    from tests.helpers.paths import ROOT

    expect_error(run_generator(cwd=tmp_path), "give --config-name NAME: one of")
    assert list(tmp_path.iterdir()) == []
    ignored = subprocess.run(["git", "check-ignore", "-q", "sweeps/lr/0/args.sh"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "sweeps/ (the folder docs/hydra.md suggests for hydra.sweep.dir) is not ignored"


def test_issue13_12_a_failing_multirun_keeps_the_previous_multirun_yaml(tmp_path):
    sweep = tmp_path / "sweep"
    assert run_generator(*TINY, "--multirun", "optimizer.lr=1e-3,2e-3", f"hydra.sweep.dir={sweep}").returncode == 0
    before = (sweep / "multirun.yaml").read_bytes()
    expect_error(run_generator(*TINY, "--multirun", "optimizer.lr=abc", f"hydra.sweep.dir={sweep}"),
                 "invalid float value: 'abc'")
    assert (sweep / "multirun.yaml").read_bytes() == before


@pytest.mark.slow
def test_issue15_6_a_reused_sweep_folder_keeps_no_stale_job(tmp_path):
    import yaml

    sweep = tmp_path / "sweep"
    assert run_generator(*TINY, "--multirun", "optimizer.lr=1e-3,2e-3,3e-3", f"hydra.sweep.dir={sweep}").returncode == 0
    (sweep / "notes.txt").write_text("mine")
    assert run_generator(*TINY, "--multirun", "optimizer.lr=1e-3", f"hydra.sweep.dir={sweep}").returncode == 0
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "manifest.yaml", "multirun.yaml", "notes.txt"]
    assert [job["args_file"] for job in yaml.safe_load((sweep / "manifest.yaml").read_text())["jobs"]] == ["0/args.sh"]


def test_issue15_3_a_misspelled_group_option_gets_a_suggestion():
    result = run_generator("--config-name", "run_qwen3_4B", "model=qwen3-4b")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "generate_args: model=qwen3-4b: model has no option 'qwen3-4b': did you mean qwen3-4B?\n"


def test_issue15_3_a_misspelled_key_without_plus_gets_the_flag_suggestion():
    result = run_generator("--config-name", "run_qwen3_4B", "optimizer.lrr=1")
    assert result.returncode == 2 and result.stdout == "" and "not in struct" not in result.stderr
    assert result.stderr == "generate_args: override optimizer.lrr=1: unknown flag --lrr: did you mean lr (--lr)?\n"
    real = run_generator("--config-name", "run_qwen3_4B", "optimizer.adam_eps=1e-8")
    assert "optimizer.adam_eps is not in the config; to add it, write +optimizer.adam_eps=1e-8" in real.stderr


@pytest.mark.parametrize("override, expected", [
    ("optimzer.lr=1", "override optimzer.lr=1: there is no group or key 'optimzer': did you mean optimizer.lr=1?"),
    ("modle=qwen3-4B", "override modle=qwen3-4B: there is no group or key 'modle': did you mean model=qwen3-4B?"),
    ("rollot.num_rollout=3", "did you mean rollout.num_rollout=3?"),
    ("~optimzer.lr", "override ~optimzer.lr: there is no group or key 'optimzer': did you mean ~optimizer.lr?"),
    ("nosuch=1", "there is no group or key 'nosuch': the arrays are cluster, model,"),
], ids=["group-key", "group-option", "nested", "deletion", "nothing-close"])
def test_issue15_3_a_misspelled_group_without_plus_gets_the_right_group(override, expected):
    result = run_generator("--config-name", "run_qwen3_4B", override)
    expect_error(result, expected)
    assert "write +" not in result.stderr and "append" not in result.stderr and result.stderr.count("\n") == 1


def test_issue15_3_a_key_set_only_through_its_children_names_the_override():
    expect_error(run_generator(*TINY, "++optimzer.lr=1"),
                 "override ++optimzer.lr=1: unknown top-level key 'optimzer'", "did you mean optimizer?")


# -- --regenerate runs nothing but what an args file's header may hold (issue 15 item 7) ------------------

def header_with(tmp_path, **lines: str):
    """An args file the generator wrote, with some of its header lines replaced."""
    target = tmp_path / "args.sh"
    assert run_generator(*TINY, "-o", str(target)).returncode == 0
    text = target.read_text()
    for key, value in lines.items():
        prefix = f"# {key.replace('_', ' ')}: "
        if prefix in text:
            text = "".join(prefix + value + "\n" if line.startswith(prefix) else line for line in text.splitlines(True))
        else:
            text = text.replace("# revision: ", f"{prefix}{value}\n# revision: ", 1)
    target.write_text(text)
    return target


@pytest.mark.parametrize("lines, expected", [
    ({"overrides": '["-o", "OUT"]'}, ["its '# overrides:' line holds \"-o\": not a Hydra override (key=value, "
                                      "+key=value, ++key=value or ~key)", "line holds \"OUT\": not a Hydra override"]),
    ({"overrides": '["--goldens"]'}, ["its '# overrides:' line holds \"--goldens\": not a Hydra override"]),
    ({"overrides": "[1, 2]"}, ["line holds 1: not a string", "line holds 2: not a string"]),
    ({"overrides": '"optimizer.lr=1"'}, ["its '# overrides:' line must hold a JSON list, not '\"optimizer.lr=1\"'"]),
    ({"overrides": '["hydra.run.dir=OUT", "hydra/job_logging=default"]'},
     ["holds \"hydra.run.dir=OUT\": a setting of Hydra's own", "holds \"hydra/job_logging=default\": a setting"]),
    ({"config_dirs": '["relative/conf", 7]'}, ["its '# config dirs:' line holds \"relative/conf\": not an absolute "
                                               "folder", "line holds 7: not an absolute folder"]),
    ({"config_path": '"conf"'}, ["its '# config path:' line holds \"conf\": not an absolute folder or a pkg:// module"]),
    ({"search_path": '["-o"]'}, ["its '# search path:' line holds \"-o\": not an absolute folder or a pkg://"]),
    ({"config": "--goldens"}, ["its '# config:' line holds \"--goldens\": not a config name"]),
], ids=["output-option", "goldens-option", "numbers", "not-a-list", "hydra-settings", "relative-dirs",
        "relative-config-path", "search-path-option", "config-name-option"])
def test_issue15_7_regenerate_never_runs_options_taken_from_the_header(tmp_path, lines, expected):
    out = tmp_path / "written_by_the_header"
    target = header_with(tmp_path, **{k: v.replace("OUT", str(out)) for k, v in lines.items()})
    goldens = {p: p.stat().st_mtime_ns for p in (ROOT / "tests" / "golden").glob("*.sh")}
    result = run_generator("--regenerate", str(target), cwd=tmp_path)
    expect_error(result, *(e.replace("OUT", str(out)) for e in expected), f"--regenerate {target}: nothing was run")
    assert all(line.startswith(f"generate_args: --regenerate {target}: ") for line in result.stderr.splitlines())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.sh"]  # nothing written, no run folder
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "tests" / "golden").glob("*.sh")} == goldens


def test_issue15_7_regenerate_takes_the_args_file_alone(tmp_path):
    target = header_with(tmp_path)
    for extra in (["-o", str(tmp_path / "x.sh")], ["optimizer.lr=1"], ["--plan"]):
        expect_error(run_generator("--regenerate", str(target), *extra),
                     f"--regenerate takes the args file alone (its header says how to generate it), not also {extra[0]}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.sh"]
    assert run_generator(f"--regenerate={target}").returncode == 0


# -- every folder Hydra reads configs from is checked first (issue 13 items 8 and 11) ----------------------

def latin1_model(folder):
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "latin1.yaml").write_bytes("num_layers: 2\n# caf\u00e9\n".encode("latin-1"))
    return folder / "model" / "latin1.yaml"


def alias_bomb(folder):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (folder / "misc").mkdir(parents=True)
    (folder / "misc" / "bomb.yaml").write_text("\n".join(levels) + "\n")
    return folder / "misc" / "bomb.yaml"


def through(how: str, folder, tmp_path) -> list[str]:
    """The command line that puts ``folder`` on Hydra's search path ``how`` (an override comes last)."""
    if how.startswith("config-path"):  # instead of conf/: a copy of it with the file added
        import shutil

        shutil.copytree(ROOT / "conf", folder, dirs_exist_ok=True)
        # a relative one is taken from the current folder, as -cd is
        return ["-cp", str(folder)] if how == "config-path" else ["--config-path", folder.name]
    if how == "primary config":
        (tmp_path / "primary").mkdir()
        (tmp_path / "primary" / "mine.yaml").write_text(
            f"defaults:\n  - run_tiny_cpu\n  - _self_\nhydra:\n  searchpath: [file://{folder}]\n")
        return ["-cd", str(tmp_path / "primary"), "--config-name", "mine"]
    entry = {"searchpath file://": f"file://{folder}", "searchpath plain": str(folder),
             "searchpath relative": folder.name}[how]
    return [f"hydra.searchpath=[{entry}]"]


HOW = ["config-path", "config-path relative", "searchpath file://", "searchpath plain", "searchpath relative",
       "primary config"]


@pytest.mark.parametrize("how", HOW)
def test_issue13_8_a_file_that_is_not_utf8_is_named_through_every_search_path(tmp_path, how):
    folder = tmp_path / "configs"
    file = latin1_model(folder)
    command = through(how, folder, tmp_path)
    for args in (["--config-name", "run_tiny_cpu"], ["--config-name", "run_tiny_cpuu"],
                 ["--config-name", "run_tiny_cpu", "model=latin1"]):
        if how == "primary config":
            args = args[2:]
        expect_error(run_generator(*args[:2], *command, *args[2:], cwd=tmp_path),
                     f"{file}: not UTF-8 (byte 0xe9 on line 2)")


@pytest.mark.parametrize("how", HOW)
def test_issue13_11_an_alias_bomb_is_refused_at_once_through_every_search_path(tmp_path, how):
    import time

    folder = tmp_path / "configs"
    file = alias_bomb(folder)
    command = through(how, folder, tmp_path)
    started = time.monotonic()
    result = run_generator(*([] if how == "primary config" else ["--config-name", "run_tiny_cpu"]), *command,
                           "misc=bomb", cwd=tmp_path)
    assert time.monotonic() - started < 10
    expect_error(result, f"{file}: its YAML aliases expand to more than 100,000 nodes")


# -- --cfg with --resolve, however it is spelled (issue 15 item 1) -----------------------------------------

@pytest.mark.parametrize("spelling", [["--cfg", "job"], ["--cfg=job"], ["-cjob"], ["-c", "job"], ["--cfg", "all"],
                                      ["--cfg=all"], ["-call"]])
def test_issue15_1_every_cfg_spelling_with_resolve_shows_shell_references(spelling):
    import yaml

    result = run_generator("--config-name", "run_qwen3_4B", *spelling, "--resolve")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-800:]
    shown = yaml.safe_load(result.stdout)
    assert shown["ckpt"]["hf_checkpoint"] == "${BASE_FOLDER}/Qwen3-4B"
    assert shown["ckpt"]["save"] == shown["ckpt"]["load"] == "${BASE_FOLDER}/Qwen3-4B_slime"
    assert ("hydra" in shown) == ("all" in "".join(spelling))
    assert shown.get("hydra", {}).get("job", {"name": "generate_args"})["name"] == "generate_args"


def test_issue15_1_package_with_resolve_is_honoured():
    ckpt = run_generator(*TINY, "--cfg", "job", "--resolve", "--package", "ckpt")
    assert ckpt.returncode == 0, ckpt.stderr
    assert ckpt.stdout.startswith("# @package ckpt\nhf_checkpoint: ${BASE_FOLDER}/tiny-cpu\n")
    value = run_generator(*TINY, "-cjob", "--resolve", "-p", "ckpt.load")
    assert (value.returncode, value.stdout) == (0, "${BASE_FOLDER}/tiny-cpu_slime\n")
    assert run_generator(*TINY, "-cjob", "--resolve", "-p", "_global_").stdout.startswith("cluster:\n")
    expect_error(run_generator(*TINY, "--cfg", "job", "--resolve", "-p", "ckpt.nope"),
                 "--package ckpt.nope: no such key in the composed config (its top-level keys: cluster, run,")
    # only the problems of the package shown
    broken = run_generator(*TINY, "ckpt.save=${run.nope}", "-cjob", "--resolve", "-p", "rollout")
    assert broken.returncode == 0 and broken.stdout.startswith("# @package rollout\n")
    expect_error(run_generator(*TINY, "ckpt.save=${run.nope}", "-cjob", "--resolve", "-p", "ckpt"),
                 "ckpt.save: Interpolation key 'run.nope' not found (so does ckpt.load, which depends on it)")


@pytest.mark.parametrize("args, expected", [
    (["--resolve"], "The --resolve flag can only be used in conjunction with --cfg or --help"),
    (["--cfg", "job", "--resolve", "--multirun"], "Only one of --run, --multirun, --cfg, --info"),
    (["--info", "--cfg", "job"], "Only one of --run, --multirun, --cfg, --info"),
], ids=["resolve-alone", "cfg-and-multirun", "cfg-and-info"])
def test_issue15_1_hydra_options_that_do_not_go_together_are_a_message(args, expected):
    expect_error(run_generator(*TINY, *args), expected)


def test_issue15_1_o_with_hydras_own_printing_is_refused_not_ignored(tmp_path):
    for args in (["--cfg", "job"], ["--info", "defaults-tree"], ["--help"]):
        expect_error(run_generator(*TINY, *args, "-o", str(tmp_path / "x")), f"-o {tmp_path / 'x'} writes the generated")
    assert list(tmp_path.iterdir()) == []
    shown = run_generator(*TINY, "-cjob", "--resolve", "-o", str(tmp_path / "x"))
    assert shown.returncode == 0 and (tmp_path / "x").read_text().startswith("cluster:\n")
