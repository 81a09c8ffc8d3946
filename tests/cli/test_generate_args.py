"""tools/generate_args.py: every primary config generates a file that is ShellCheck-clean, sources
under set -u and parses back to a valid Namespace; goldens, sweeps and Hydra's own options work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from slime.arguments.parser import parse_args
from slime.config.argsfile import render_bash, render_json
from slime.config.compose import generate_config, namespace_from_config, primary_configs
from slime.config.goldens import update_goldens
from tests.helpers.bash import run_shellcheck, source_arrays, variables_of
from tests.helpers.generator import generator
from tests.helpers.paths import ROOT

ENV = {"BASE_FOLDER": "/cluster/base folder"}  # a space, to prove the reference stays one word


@pytest.fixture(scope="module")
def generated():
    return {name: generate_config(name) for name in primary_configs()}


def test_the_issue_configs_exist():
    assert {"run_qwen3_4B", "run_qwen3_30B_A3B", "run_qwen3_235B_A22B", "run_deepseek_r1", "run_glm4_9B",
            "run_qwen2.5_0.5B", "run_qwen3_4B_ppo"} <= set(primary_configs())


def test_every_primary_config_sources_and_parses_back(generated, tmp_path):
    for name, gen in generated.items():
        text = render_bash(gen)
        path = tmp_path / f"{name}.sh"
        path.write_text(text)
        assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0, name
        assert run_shellcheck(path).stdout == "", name
        arrays = source_arrays(text, {**variables_of(text), **ENV})
        argv = [token for array in gen.arrays for token in arrays[array]]
        args = parse_args(argv)
        assert args.hf_checkpoint.startswith("/"), name


def test_an_unset_base_folder_stops_the_sourcing(generated):
    with pytest.raises(RuntimeError, match="BASE_FOLDER is not set"):
        source_arrays(render_bash(generated["run_qwen3_4B"]), env={})


def test_an_interactive_shell_stops_sourcing_too(generated, tmp_path):
    path = tmp_path / "args.sh"
    path.write_text(render_bash(generated["run_qwen3_4B"]))
    result = subprocess.run(["bash", "-i", "-c", f'source {path}; echo "complete=${{SLIME_ARGS_COMPLETE:-no}}"'],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert "complete=no" in result.stdout and "BASE_FOLDER is not set" in result.stderr


def test_goldens_are_current():
    assert update_goldens(check=True) == 0  # prints the unified diff of every stale file


def test_model_scripts_match_the_reference_architectures(model_args):
    from slime.config.goldens import MODELS_DIR

    for model, tokens in model_args.items():
        arrays = source_arrays((MODELS_DIR / f"{model}.sh").read_text() + "\nSLIME_ARG_ARRAYS=(MODEL_ARGS)\n"
                               "SLIME_JOB_ENV=()\nSLIME_ARGS_COMPLETE=1\n")
        assert vars(parse_args(arrays["MODEL_ARGS"], validate=False)) == vars(parse_args(tokens, validate=False)), model


def test_cli_prints_the_same_file_and_writes_atomically(generated, tmp_path):
    result = generator("--config-name", "run_qwen3_4B")
    assert result.returncode == 0, result.stderr
    from slime.config.argsfile import without_machine_lines

    assert without_machine_lines(result.stdout) == render_bash(generated["run_qwen3_4B"])
    target = tmp_path / "args.sh"
    assert generator("--config-name", "run_qwen3_4B", "-o", str(target)).returncode == 0
    assert target.read_text() == result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["args.sh"]  # no temporary file left behind


def test_overrides_presets_and_deletions_reach_the_arrays():
    result = generator("--config-name", "run_qwen3_4B", "optimizer.lr=2e-6", "+experiment=quick_test",
                       "~misc.attention_backend", "++rollout.rollout_top_p=0.9")
    assert result.returncode == 0, result.stderr
    arrays = source_arrays(result.stdout, ENV)
    assert arrays["OPTIMIZER_ARGS"][arrays["OPTIMIZER_ARGS"].index("--lr") + 1] == "2e-6"
    assert "--attention-backend" not in arrays["MISC_ARGS"]
    assert ["--num-rollout", "3"] == arrays["ROLLOUT_ARGS"][arrays["ROLLOUT_ARGS"].index("--num-rollout"):][:2]
    assert "--rollout-top-p" in arrays["ROLLOUT_ARGS"]


def test_json_format(generated):
    data = json.loads(render_json(generated["run_qwen3_4B_ppo"]))
    assert data["arrays"]["MISC_ARGS"][-2] == "--megatron-config-path"
    assert data["shell_variables"] == ["BASE_FOLDER"]
    assert data["roles"] == [{"name": "default", "role": "critic", "overrides": {"lr": 1e-5}}]
    cli = generator("--config-name", "run_qwen3_4B", "--format", "json")
    assert json.loads(cli.stdout)["arrays"]["CLUSTER_ARGS"] == ["--actor-num-nodes", "1", "--actor-num-gpus-per-node",
                                                                 "8", "--colocate", "--gpu-memory-gib", "79.11"]


def test_issue13_12_role_overrides_stay_in_the_args_file(generated, tmp_path):
    gen = generated["run_qwen3_4B_ppo"]
    assert gen.argv[-2:] == ["--megatron-config-path",
                             '[{"name": "default", "role": "critic", "overrides": {"lr": 1e-5}}]']
    assert gen.namespace.role_overrides == {"critic": {"lr": 1e-5}}
    # The file alone is the run: sourced anywhere, with no generated/ folder beside it, it parses the same.
    arrays = source_arrays(render_bash(gen), {**ENV})
    args = parse_args([token for array in gen.arrays for token in arrays[array]])
    assert args.role_overrides == {"critic": {"lr": 1e-5}}
    failed = generator("--config-name", "run_qwen3_4B_ppo", "roles.critic.lr=abc", "-o", str(tmp_path / "args.sh"),
                       cwd=tmp_path)
    assert failed.returncode == 2 and "override roles.critic.lr=abc: lr: expected float, got 'abc'" in failed.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_multirun_writes_one_validated_file_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = generator("--config-name", "run_qwen3_4B", "--multirun", "optimizer.lr=1e-6,3e-6",
                       "rollout.n_samples_per_prompt=8,16", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    import yaml

    manifest = yaml.safe_load((sweep / "manifest.yaml").read_text())
    assert len(manifest["jobs"]) == 4
    seen = set()
    for job in manifest["jobs"]:
        arrays = source_arrays((sweep / job["args_file"]).read_text(), ENV)
        args = parse_args([t for name, values in arrays.items() if name.endswith("_ARGS") for t in values])
        seen.add((args.lr, args.n_samples_per_prompt))
    assert seen == {(1e-6, 8), (1e-6, 16), (3e-6, 8), (3e-6, 16)}


def test_a_failing_sweep_writes_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    result = generator("--config-name", "run_qwen3_4B", "--multirun", "rollout.global_batch_size=256,24",
                       f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "rollout.global_batch_size=24" in result.stderr
    assert not sweep.exists()


def test_hydra_options_work():
    tree = generator("--config-name", "run_qwen3_4B", "--info", "defaults-tree")
    assert tree.returncode == 0 and "model: qwen3-4B" in tree.stdout
    job = generator("--config-name", "run_qwen3_4B", "--cfg", "job")
    assert job.returncode == 0 and "num_layers: 36" in job.stdout
    help_text = generator("--help").stdout
    assert "== Configuration groups ==" in help_text and "model:" in help_text and "--provenance" in help_text


def test_provenance_names_the_file_of_each_key():
    which = generator("--config-name", "run_qwen3_4B", "+experiment=quick_test", "--which", "rollout.global_batch_size")
    assert which.stdout.strip() == "rollout.global_batch_size = 8  # conf/experiment/quick_test.yaml"
    every = generator("--config-name", "run_qwen3_4B", "--provenance").stdout
    assert "rollout.prompt_data = ${BASE_FOLDER}/dapo-math-17k/dapo-math-17k.jsonl # conf/rollout/dapo_math.yaml" in \
        " ".join(every.split())
    assert "# conf/run_qwen3_4B.yaml" in every


def test_plan_from_the_generator():
    plan = generator("--config-name", "run_qwen3_235B_A22B", "--plan")
    assert plan.returncode == 0 and "TP 4 × PP 4 × CP 2 → DP 2" in plan.stdout


def test_namespace_from_config_is_the_sourced_command_line():
    args = namespace_from_config("run_qwen3_4B", ["optimizer.lr=2e-6"], environ=ENV)
    assert args.lr == 2e-6 and args.hf_checkpoint == "/cluster/base folder/Qwen3-4B"
    assert args.global_batch_size == 256 and args.derived_values["num_steps_per_rollout"]


def test_namespace_from_config_names_unset_variables():
    from slime.config.generate import GenerationError

    with pytest.raises(GenerationError, match="shell variable BASE_FOLDER is not set"):
        namespace_from_config("run_qwen3_4B", environ={})


def test_train_py_takes_a_config_name():
    result = subprocess.run([sys.executable, "train.py", "--config-name", "run_qwen3_4B_ppo", "optimizer.lr=3e-6",
                             "--dry-run"], capture_output=True, text=True, cwd=ROOT, env={**ENV, "PATH": "/usr/bin"},
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "lr 3e-6" in result.stdout and "Critic" in result.stdout


def test_issue15_2_a_deletion_alone_is_an_override():
    from tests.helpers.generator import run_generator

    result = run_generator("--config-name", "run_qwen3_4B", "~misc.attention_backend")
    assert result.returncode == 0, result.stderr
    assert "--attention-backend" not in result.stdout


def test_issue15_4_dry_run_prints_the_launch_plan():
    from tests.helpers.generator import run_generator

    dry, plan = (run_generator("--config-name", "run_qwen3_4B", flag) for flag in ("--dry-run", "--plan"))
    assert dry.returncode == 0 and dry.stdout == plan.stdout and dry.stdout.startswith("slime launch plan")


@pytest.mark.slow
def test_issue15_5_quick_test_saves_nothing_and_evaluates_nothing():
    from tests.helpers.generator import run_generator

    for name in primary_configs():
        result = run_generator("--config-name", name, "+experiment=quick_test")
        assert result.returncode == 0, (name, result.stderr)
        assert "--save " not in result.stdout and "--eval-prompt-data" not in result.stdout, name
        assert "--load " not in result.stdout and "--hf-checkpoint " in result.stdout, name
        plan = run_generator("--config-name", name, "+experiment=quick_test", "--plan").stdout
        assert "Checkpoints" not in plan and "Evaluation" not in plan, name
    saved = run_generator("--config-name", "run_tiny_cpu", "ckpt.save_interval=null", "--plan").stdout
    assert "Checkpoints  none saved: --save ${BASE_FOLDER}/tiny-cpu_slime without --save-interval" in saved


def test_issue15_5_quick_test_loads_nothing_of_a_real_run(tmp_path):
    """A finished real run in <model>_slime is neither resumed nor reported complete (with advice to delete it)."""
    from slime.trainer import complete_run_note
    from slime.utils.checkpoint import INDEX

    real_run = tmp_path / "Qwen3-4B_slime"
    real_run.mkdir()
    (real_run / INDEX).write_text("2999\n")
    environ = {"BASE_FOLDER": str(tmp_path)}
    assert complete_run_note(namespace_from_config("run_qwen3_4B", environ=environ))  # the real run is complete
    quick = namespace_from_config("run_qwen3_4B", ["+experiment=quick_test"], environ=environ)
    assert quick.load is None and quick.save is None
    assert quick.ref_load == f"{tmp_path}/Qwen3-4B_torch_dist"  # the actor starts from the reference model
    assert complete_run_note(quick) is None


@pytest.mark.slow
def test_issue15_1_cfg_job_resolve_shows_shell_references_on_every_primary_config():
    import yaml

    from tests.helpers.generator import run_generator

    for name in primary_configs():
        result = run_generator("--config-name", name, "--cfg", "job", "--resolve")
        assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result.stderr[-500:])
        ckpt = yaml.safe_load(result.stdout)["ckpt"]
        assert ckpt["hf_checkpoint"].startswith("${BASE_FOLDER}/"), name
        assert "${" not in str(ckpt.get("load", "")).replace("${BASE_FOLDER}", ""), name


@pytest.mark.slow
def test_issue15_7_regenerate_round_trips_every_primary_config_with_config_dir_and_experiment(tmp_path):
    from tests.helpers.generator import run_generator

    extra = tmp_path / "my_configs"
    (extra / "experiment").mkdir(parents=True)
    (extra / "experiment" / "mine.yaml").write_text("# @package _global_\nrollout:\n  num_rollout: 7\n")
    for name in primary_configs():
        target = tmp_path / f"{name}.sh"
        made = run_generator("-cd", str(extra), "--config-name", name, "+experiment=mine",
                             "ckpt.save=/ckpt/${run.model_dir}" if name == "run_qwen3_4B" else "++misc.seed=7",
                             "-o", str(target), cwd=tmp_path)
        assert made.returncode == 0, (name, made.stderr)
        header = target.read_text().splitlines()[:8]
        assert f'# config dirs: ["{extra}"]' in header and any(line.startswith("# revision: ") for line in header)
        again = run_generator("--regenerate", str(target), cwd=ROOT)  # from anywhere: the header has it all
        assert again.returncode == 0 and again.stdout == "", (name, again.stdout, again.stderr)
    assert '# overrides: ["+experiment=mine", "ckpt.save=/ckpt/${run.model_dir}"]' in \
        (tmp_path / "run_qwen3_4B.sh").read_text()


def test_issue15_7_regenerate_shows_a_difference_and_reports_another_revision(tmp_path):
    from tests.helpers.generator import run_generator

    target = tmp_path / "args.sh"
    assert run_generator("--config-name", "run_tiny_cpu", "-o", str(target)).returncode == 0
    text = target.read_text()
    target.write_text(text.replace("--lr 0.003", "--lr 0.001"))
    changed = run_generator("--regenerate", str(target))
    assert changed.returncode == 1 and "-  --lr 0.001\n+  --lr 0.003\n" in changed.stdout
    target.write_text("".join("# revision: 0123abc (clean)\n" if line.startswith("# revision: ") else line
                              for line in text.splitlines(True)))
    moved = run_generator("--regenerate", str(target))
    assert moved.returncode == 0 and "was generated at revision 0123abc (clean); this checkout is at" in moved.stderr
    target.write_text("just a file\n")
    assert run_generator("--regenerate", str(target)).returncode == 2


def test_issue15_7_goldens_leave_out_the_machine_and_the_commit():
    from slime.config.argsfile import without_machine_lines

    machine = ("# config dirs: ", "# config path: ", "# search path: ", "# revision: ")
    for golden in sorted((ROOT / "tests" / "golden").glob("*.sh")):
        header = golden.read_text().splitlines()[:8]
        assert not any(line.startswith(machine) for line in header), golden
        assert "# sglang snapshot: 0.5.23" in header, golden
    text = "".join(f"{prefix}x\n" for prefix in machine) + "# config: c\n"
    assert without_machine_lines(text) == "# config: c\n"


def a_changed_conf(folder):
    """A copy of conf/ whose run_tiny_cpu asks for 77 rollouts (60 in conf/)."""
    import shutil

    shutil.copytree(ROOT / "conf", folder)
    config = folder / "run_tiny_cpu.yaml"
    config.write_text(config.read_text().replace("num_rollout: 60", "num_rollout: 77"))
    return folder


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_issue15_7_regenerate_reproduces_a_file_made_with_config_path(tmp_path, relative):
    from tests.helpers.generator import run_generator

    folder = a_changed_conf(tmp_path / "my_conf")
    target = tmp_path / "args.sh"
    made = run_generator("-cp", "my_conf" if relative else str(folder), "--config-name", "run_tiny_cpu",
                         "+experiment=quick_test", "rollout.num_rollout=${optimizer.lr}", "optimizer.lr=77",
                         "-o", str(target), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = target.read_text()
    assert f'# config path: "{folder}"\n' in text and "--num-rollout 77\n" in text
    again = run_generator("--regenerate", str(target), cwd=ROOT)  # from anywhere: the header has it all
    assert (again.returncode, again.stdout) == (0, ""), (again.stdout, again.stderr)
    (folder / "run_tiny_cpu.yaml").write_text((folder / "run_tiny_cpu.yaml").read_text().replace("60", "61"))
    assert run_generator("--regenerate", str(target)).returncode == 0  # still the same arrays


@pytest.mark.parametrize("how", ["override file://", "override plain", "override relative", "primary config"])
def test_issue15_7_regenerate_reproduces_a_file_made_with_a_searchpath(tmp_path, how):
    from tests.helpers.generator import run_generator

    extra = tmp_path / "my_configs"
    (extra / "experiment").mkdir(parents=True)
    (extra / "experiment" / "mine.yaml").write_text("# @package _global_\nrollout:\n  num_rollout: 7\n")
    entry = {"override file://": f"file://{extra}", "override plain": str(extra),
             "override relative": "my_configs", "primary config": f"file://{extra}"}[how]
    if how == "primary config":
        (tmp_path / "primary").mkdir()
        (tmp_path / "primary" / "mine.yaml").write_text(
            f"defaults:\n  - run_tiny_cpu\n  - _self_\nhydra:\n  searchpath: ['{entry}']\n")
        command = ["-cd", str(tmp_path / "primary"), "--config-name", "mine", "+experiment=mine"]
    else:
        command = ["--config-name", "run_qwen3_4B", f"hydra.searchpath=[{entry}]", "+experiment=mine"]
    target = tmp_path / "args.sh"
    made = run_generator(*command, "-o", str(target), cwd=tmp_path)  # -o reads what the search path holds too
    assert made.returncode == 0, made.stderr
    text = target.read_text()
    assert f'# search path: ["{extra}"]\n' in text and "--num-rollout 7\n" in text
    assert '# overrides: ["+experiment=mine"]' in text  # Hydra's own setting is not an override of the run
    again = run_generator("--regenerate", str(target), cwd=ROOT)
    assert (again.returncode, again.stdout) == (0, ""), (again.stdout, again.stderr)
    which = run_generator(*command, "--which", "rollout.num_rollout", cwd=tmp_path)
    assert which.stdout == f"rollout.num_rollout = 7  # {extra}/experiment/mine.yaml\n", which.stderr
