"""Timing helpers for the benchmarks: interleaved repeats, medians, ratios against a baseline
measured in the same run (shared machines are noisy; absolute times mislead)."""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import Callable


def time_command(argv: list[str], cwd=None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds of each run, measured round-robin so drifts in machine load hit all alike."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def report(medians: dict[str, float], baseline: str) -> None:
    base = medians[baseline]
    width = max(map(len, medians))
    for name, value in medians.items():
        print(f"{name:<{width}}  {value * 1000:8.1f} ms  {value / base:6.2f}x {baseline}")
