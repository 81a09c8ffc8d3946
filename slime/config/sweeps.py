"""A sweep's files (``tools/generate_args.py --multirun``): one validated args file per job under
``<hydra.sweep.dir>/<job>/`` and a ``manifest.yaml`` listing each job's overrides and file; the args
files an earlier sweep into the same folder left and this one did not write are removed. A sweep that
fails leaves nothing: the job folders Hydra made are removed, and the ``multirun.yaml`` a previous
sweep left is put back."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import yaml

from slime.utils.files import atomic_write


class SweepManifest:
    """Hydra rewrites <sweep dir>/multirun.yaml before any job runs: a sweep that fails puts back the
    one a previous sweep left there (for a sweep folder named by hydra.sweep.dir=… without ${…})."""

    def __init__(self, hydra_args: list[str]):
        named = [arg.split("=", 1)[1] for arg in hydra_args if arg.startswith("hydra.sweep.dir=")]
        self.path = Path(named[-1]) / "multirun.yaml" if named and "${" not in named[-1] else None
        self.before = self.path.read_bytes() if self.path is not None and self.path.is_file() else None

    def restore(self) -> None:
        if self.before is not None and (not self.path.is_file() or self.path.read_bytes() != self.before):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(self.before)


def write_sweep(sweep_dir: Path, config_name: str, jobs: Sequence[tuple[list[str], Path, str]], filename: str) -> None:
    """Each job's ``(overrides, output folder, text)`` written to ``<output folder>/<filename>``, then the
    manifest; the files an earlier sweep listed and this one did not write are removed."""
    manifest = {"config_name": config_name, "jobs": []}
    for overrides, output_dir, text in jobs:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(output_dir / filename, text)
        manifest["jobs"].append({
            "overrides": overrides,
            "args_file": str((output_dir / filename).relative_to(sweep_dir)),
        })
    _remove_stale_jobs(sweep_dir, {job["args_file"] for job in manifest["jobs"]})
    atomic_write(sweep_dir / "manifest.yaml", yaml.safe_dump(manifest, sort_keys=False))


def _remove_stale_jobs(sweep_dir: Path, written: set[str]) -> None:
    """A sweep folder used again: the args files an earlier sweep listed and this one did not write
    are removed, with their job folder if nothing else is in it."""
    try:
        previous = yaml.safe_load((sweep_dir / "manifest.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return
    for job in previous.get("jobs", []) if isinstance(previous, dict) else []:
        relative = job.get("args_file") if isinstance(job, dict) else None
        if not relative or relative in written or Path(relative).is_absolute() or ".." in Path(relative).parts:
            continue
        stale = sweep_dir / relative
        stale.unlink(missing_ok=True)
        if stale.parent != sweep_dir and stale.parent.is_dir() and not any(stale.parent.iterdir()):
            stale.parent.rmdir()


def remove_empty_sweep(sweep_dir: Path | None, output_dirs: Sequence[Path]) -> None:
    """Undo the directories Hydra created for a sweep that failed; keep anything with files in it."""
    if sweep_dir is None:
        return
    for output_dir in output_dirs:
        if output_dir.is_dir() and not any(output_dir.iterdir()):
            output_dir.rmdir()
    leftover = sweep_dir / "multirun.yaml"
    if leftover.exists() and [p.name for p in sweep_dir.iterdir()] == ["multirun.yaml"]:
        shutil.rmtree(sweep_dir)
