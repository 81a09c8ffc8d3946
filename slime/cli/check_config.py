#!/usr/bin/env python3
"""The deep check: what megatron-core, SGLang and the checkpoint say about a config, and its memory.

    python tools/check_config.py --config-name run_qwen3_4B [overrides]
    python tools/check_config.py --config-name run_qwen3_4B model=qwen3-8B --hf-config /models/Qwen3-8B
    python tools/check_config.py --all

For each config: the generator's own checks (the trainer's parser), then megatron-core's config
objects built by the megatron backend's code, each engine's server arguments read by SGLang's
parser, the model flags against the checkpoint's config.json (``--hf-checkpoint`` with the shell
variables of this environment, or ``--hf-config``), and the memory estimate per GPU. Every problem
is reported at once, naming the config key, its value and the file that set it; the exit status
is 2 when any config has one. A config whose estimate needs more memory than a GPU has fails too,
exit status 1, naming the role, the figure and the flags that lower it; ``--allow-over-memory``
reports it as a warning and passes. ``--all`` checks every primary config and prints the time of each.
Imports torch, megatron-core and SGLang (the generator does not).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings


def options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-name", help="a primary config (conf/run_*.yaml)")
    parser.add_argument("--all", action="store_true", help="check every primary config")
    parser.add_argument("--hf-config", help="the checkpoint (a folder or its config.json) to compare the model with")
    parser.add_argument("--allow-over-memory", action="store_true",
                        help="report a GPU the estimate says is over its memory as a warning, not a failure")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for tools/generate_args.py")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = options()
    o = parser.parse_args(argv)
    from slime.config.compose import hydra_context, primary_configs

    configs = primary_configs()
    if o.all == bool(o.config_name):
        parser.error("give --config-name NAME or --all")
    if o.config_name and o.config_name not in configs:
        from slime.config.hydra_errors import unknown_primary_config

        print(f"check_config: {unknown_primary_config(o.config_name, configs)}", file=sys.stderr)
        return 2
    # megatron-core's and SGLang's notices about kernels a laptop lacks, deprecations: not the config's
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    from slime.launch.deep_check import deep_check, import_owners, render

    import_owners()
    print(f"imports (torch, megatron-core, SGLang): {time.perf_counter() - started:.1f} s")
    status, checking = 0, time.perf_counter()
    with hydra_context():
        for name in configs if o.all else [o.config_name]:
            report = deep_check(name, o.overrides, hf_config=o.hf_config, allow_over_memory=o.allow_over_memory)
            print(render(report), file=sys.stdout if report.ok else sys.stderr, flush=True)
            status = max(status, report.status)
    if o.all:
        print(f"{len(configs)} configs checked in {time.perf_counter() - checking:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
