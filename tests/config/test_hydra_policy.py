"""Issue 20, item 1: a config file or override never makes Hydra run code or write files, even under
a launcher's --dry-run: every _target_ and every Hydra setting that instantiates, writes or logs
somewhere is refused with exit 2, naming the file or override (slime.config.hydra_policy)."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import typing

import pytest

from slime.config.hydra_policy import RULES, problems, rule_of
from tests.helpers.generator import run_generator
from tests.helpers.paths import ROOT

TINY = ("--config-name", "run_tiny_cpu")


class _Payload:
    """Unpickling it creates the marker file: what numpy.load(allow_pickle=True) would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _evil_experiment(tmp_path):
    marker = tmp_path / "RAN"
    (tmp_path / "blob.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    (tmp_path / "experiment").mkdir()
    evil = tmp_path / "experiment" / "evil.yaml"
    evil.write_text("# @package _global_\nhydra:\n  callbacks:\n    evil:\n      _target_: numpy.load\n"
                    f"      file: {tmp_path / 'blob.pkl'}\n      allow_pickle: true\n")
    return evil, marker


def test_issue20_1_an_experiment_file_runs_no_code_even_under_a_launcher_dry_run(tmp_path):
    evil, marker = _evil_experiment(tmp_path)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "run-tiny-cpu.sh"), "--dry-run", "-cd", str(tmp_path),
                             "+experiment=evil"], capture_output=True, text=True, check=False,
                            env={**os.environ, "BASE_FOLDER": str(tmp_path)}, timeout=120)
    assert result.returncode != 0
    assert f"{evil}: hydra.callbacks.evil._target_=numpy.load: Hydra instantiates every callback" in result.stderr
    assert "nothing was started" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("callback", [
    ["_target_=os.makedirs", "name={victim}"],
    ["_target_=builtins.open", "file={victim}", "mode=w"],
    ["_target_=shutil.copyfile", "src=/etc/hostname", "dst={victim}"],
])
def test_issue20_1_a_callback_override_is_refused_and_runs_nothing(tmp_path, callback):
    victim = tmp_path / "victim"
    overrides = [f"+hydra.callbacks.x.{part.format(victim=victim)}" for part in callback]
    result = run_generator(*TINY, *overrides, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert f"override {overrides[0]}: hydra.callbacks.x._target_={callback[0].split('=')[1]}:" in result.stderr
    assert not victim.exists() and list(tmp_path.iterdir()) == []


def test_issue20_1_a_file_handler_in_job_logging_is_refused_and_truncates_nothing(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "mine.yaml").write_text(
        "defaults:\n  - run_tiny_cpu\n  - _self_\nhydra:\n  job_logging:\n    version: 1\n    handlers:\n"
        f"      f:\n        class: logging.FileHandler\n        filename: {victim}\n        mode: w\n"
        "    root:\n      handlers: [f]\n")
    result = run_generator("-cd", str(tmp_path), "--config-name", "mine", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path / 'mine.yaml'}: hydra.job_logging.handlers.f.class=logging.FileHandler" in result.stderr
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("overrides, refused", [
    (["hydra/job_logging=default"], "override hydra/job_logging=default: hydra.job_logging.handlers.file.class"),
    (["+hydra.hydra_logging.handlers.console.()=os.getcwd"], "hydra.hydra_logging.handlers.console.()"),
    (["+hydra.job_logging.formatters.f.format=ext://os.getcwd"], "hydra.job_logging.formatters.f.format"),
    (["hydra.output_subdir=.hydra"], "override hydra.output_subdir=.hydra: hydra.output_subdir=.hydra: Hydra would "
                                     "write copies of the config"),
    (["hydra.run.dir=/etc/slime-test"], "hydra.run.dir=/etc/slime-test: Hydra creates the run folder"),
    (["--multirun", "hydra.sweep.dir=/srv/slime-test"], "hydra.sweep.dir=/srv/slime-test"),
    (["--multirun", "hydra.sweep.subdir=../out"], "a job's folder must be a relative name inside the sweep folder"),
    (["+hydra.job.env_set.LD_PRELOAD=/tmp/x.so"], "Hydra would set these variables"),
    (["hydra.launcher._target_=os.getcwd"], "hydra.launcher._target_=os.getcwd: Hydra would instantiate this launcher"),
    (["--multirun", "hydra/job_logging=stdout,default"], "Hydra's own settings are not swept"),
    (["+run.x._target_=os.getcwd"], "override +run.x._target_=os.getcwd: run.x._target_=os.getcwd: a _target_"),
])
def test_issue20_1_every_hydra_setting_that_writes_logs_or_instantiates_is_refused(tmp_path, overrides, refused):
    result = run_generator(*TINY, *overrides, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert refused in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_issue20_1_a_sweep_parameter_on_hydras_settings_in_a_file_is_refused(tmp_path):
    (tmp_path / "mine.yaml").write_text("defaults:\n  - run_tiny_cpu\n  - _self_\nhydra:\n  sweeper:\n    params:\n"
                                        "      +hydra.callbacks.x._target_: os.getcwd\n")
    result = run_generator("-cd", str(tmp_path), "--config-name", "mine", "--multirun", cwd=tmp_path)
    assert result.returncode == 2
    assert (f"{tmp_path / 'mine.yaml'}: hydra.sweeper.params.+hydra.callbacks.x._target_=os.getcwd: a sweep parameter "
            "on Hydra's own settings") in result.stderr


def test_issue20_1_a_target_in_a_config_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "mine.yaml").write_text("defaults:\n  - run_tiny_cpu\n  - _self_\nrun:\n  x:\n    _target_: os.getcwd\n")
    result = run_generator("-cd", str(tmp_path), "--config-name", "mine")
    assert result.returncode == 2
    assert f"{tmp_path / 'mine.yaml'}: run.x._target_=os.getcwd: a _target_ names a callable" in result.stderr


@pytest.mark.parametrize("overrides", [
    [], ["hydra/job_logging=stdout"], ["hydra/job_logging=none"], ["hydra/hydra_logging=default"],
    ["hydra.verbose=true"], ["hydra.job.chdir=true"], ["hydra.run.dir=runs/here"],
])
def test_issue20_1_hydra_settings_that_only_print_or_stay_here_still_generate(tmp_path, overrides):
    result = run_generator(*TINY, *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_issue20_1_a_sweep_into_the_temporary_folder_or_below_here_is_allowed(tmp_path):
    for sweep in (tmp_path / "sweep", "sweeps/lr"):
        result = run_generator(*TINY, "--multirun", "optimizer.lr=1e-3,2e-3", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "sweeps" / "lr" / "1" / "args.sh").is_file()


def test_issue20_1_the_compose_api_refuses_the_same_settings(tmp_path):
    """train.py --config-name composes with Hydra's Compose API: the same settings are refused there."""
    result = subprocess.run(["python", str(ROOT / "train.py"), "--config-name", "run_tiny_cpu", "--dry-run",
                             "+hydra.callbacks.x._target_=os.makedirs", f"+hydra.callbacks.x.name={tmp_path / 'x'}"],
                            capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
                            env={**os.environ, "BASE_FOLDER": str(tmp_path)})
    assert result.returncode == 2
    assert "override +hydra.callbacks.x._target_=os.makedirs: hydra.callbacks.x._target_=os.makedirs" in result.stderr
    assert not (tmp_path / "x").exists()


def _schema_paths(cls, prefix: str = ""):
    """Every setting of a Hydra schema dataclass, by dotted path: its fields, those of nested dataclasses walked."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        path = f"{prefix}{field.name}"
        kind = hints[field.name]
        nested = next((t for t in (kind, *typing.get_args(kind)) if dataclasses.is_dataclass(t)), None)
        if nested is None:
            yield path
        else:
            yield from _schema_paths(nested, path + ".")


def test_issue20_1_every_setting_of_hydras_own_schema_has_a_rule():
    """A later Hydra's new setting (a new field of HydraConf, or a new group of its defaults list) fails
    here until slime.config.hydra_policy.RULES says what it may hold."""
    from hydra.conf import HydraConf

    paths = list(_schema_paths(HydraConf))
    groups = [group for entry in HydraConf().defaults for group in entry]
    assert "callbacks" in paths and "job.env_set" in paths and "job.config.override_dirname.kv_sep" in paths
    missing = [p for p in paths + groups if rule_of(p) is None and p != "output"]  # hydra/output sets run/sweep
    assert missing == []
    assert all(rule_of(p) is not None for p in ("run.dir", "sweep.dir", "sweep.subdir"))
    assert set(RULES) >= {"callbacks", "launcher", "sweeper", "job_logging", "hydra_logging", "output_subdir"}


def test_issue20_1_a_hydra_setting_the_rules_do_not_know_is_refused():
    found = problems({"plugins_of_the_future": {"x": 1}, "verbose": False}, {}, lambda key: None)
    assert [r.key for r in found] == ["hydra.plugins_of_the_future"]
    assert "does not know" in found[0].why


@pytest.mark.slow  # a generator subprocess, ~4 s
def test_the_generators_logging_keeps_loggers_made_before_it_and_writes_them_to_stderr_only():
    """Hydra's own "disabled" logging disables every logger that existed when it configured logging (a
    plugin's, a library's); the generator's keeps them, on stderr, so stdout stays the args file."""
    script = (
        "import logging, sys\n"
        "plugin = logging.getLogger('a_plugin')\n"
        "from slime.cli import generate_args\n"
        "import hydra.core.utils as hydra_utils\n"
        "configure = hydra_utils.configure_log\n"
        "def configure_then_warn(*args, **kwargs):\n"
        "    configure(*args, **kwargs)\n"
        "    plugin.warning('still heard')\n"
        "    logging.getLogger('a_plugin').info('not heard: below WARNING')\n"
        "hydra_utils.configure_log = configure_then_warn\n"
        "sys.exit(generate_args.main(['--config-name', 'run_tiny_cpu']))\n"
    )
    result = subprocess.run(["python3", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "WARNING a_plugin: still heard" in result.stderr
    assert "not heard" not in result.stderr + result.stdout
    assert "still heard" not in result.stdout and result.stdout.startswith(("#", "MODEL_ARGS", "SLIME")), result.stdout[:200]
