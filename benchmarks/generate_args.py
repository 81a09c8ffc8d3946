#!/usr/bin/env python3
"""Speed of tools/generate_args.py, as ratios to baselines measured in the same run.

1. One generator process per primary config, against a bare @hydra.main app that composes the
   same config and does nothing else (target: at most 1.3x).
2. Batch regeneration of every golden file in one process, per config (target: at most 80 ms).

    python benchmarks/generate_args.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _timing import interleaved, time_command

ROOT = Path(__file__).resolve().parents[1]

BARE_APP = """
import sys
import hydra

@hydra.main(config_path={conf!r}, config_name=None, version_base=None)
def compose_only(cfg):
    pass

compose_only()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats

    from slime.config.compose import primary_configs
    from slime.config.goldens import golden_files

    configs = primary_configs()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_hydra_app.py"
        bare.write_text(BARE_APP.format(conf=str(ROOT / "conf")))
        print(f"1. one process per config, median of {repeats} interleaved runs")
        ratios = []
        for name in configs:
            medians = interleaved({
                "bare": lambda: time_command([sys.executable, str(bare), "--config-name", name], cwd=tmp),
                "generator": lambda: time_command(
                    [sys.executable, str(ROOT / "tools" / "generate_args.py"), "--config-name", name], cwd=tmp),
            }, repeats)
            ratio = medians["generator"] / medians["bare"]
            ratios.append(ratio)
            print(f"   {name:<22} bare @hydra.main {medians['bare'] * 1000:6.0f} ms  "
                  f"generate_args.py {medians['generator'] * 1000:6.0f} ms  {ratio:5.2f}x")
        print(f"   median ratio {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x (target <= 1.30x)")

    golden_files()  # warm: imports and the first Hydra initialisation are not per-config costs
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        files = golden_files()
        runs.append(time.perf_counter() - start)
    total = statistics.median(runs)
    print(f"2. batch regeneration of {len(files)} files ({len(configs)} configs + model scripts) in one process: "
          f"{total * 1000:.0f} ms, {total / len(configs) * 1000:.0f} ms per config (target <= 80 ms)")


if __name__ == "__main__":
    main()
