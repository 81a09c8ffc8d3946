#!/usr/bin/env python3
"""What spanning hosts costs: the tiny megatron run (actor TP 2 over gloo, one torch engine, weights
pushed over a weight-update group) through its launcher on three network-namespace hosts
(tools/netns_cluster.py: the actor's ranks on node1 and node2, the engine on node3, the workers joined
over ssh from a HOSTFILE) against the same run on one of those hosts alone, measured in the same run.

    sudo python benchmarks/multinode.py                   # 2 runs of each, 10 rollouts per run
    sudo python benchmarks/multinode.py --repeats 3 --rollouts 12

Start-up is from the launcher's start to the trainer's "ready to train" line (so the three-host run's
includes the workers joining over ssh); time per rollout is the median, over the rollouts after the
first, of each one's time in all as the run logs it (benchmarks/loop_overhead.py reads both the same
way). The two kinds alternate; the hosts share torch's compile cache, as an NFS home would, so neither
compiles more than the other. Needs root, iproute2 and openssh-server (as the multi-node tests).
"""

from __future__ import annotations

import argparse
import getpass
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loop_overhead import load, summarize, timestamped

from slime.cli.netns_cluster import NetnsCluster, unavailable

ROOT = Path(__file__).resolve().parents[1]

LAYOUTS = {
    "one host": ["cluster.actor_num_nodes=1", "cluster.actor_num_gpus_per_node=2", "+cluster.rollout_num_gpus=1",
                 "cluster.colocate=false", "+cluster.num_gpus_per_node=3"],
    "three hosts": ["cluster.actor_num_nodes=2", "cluster.actor_num_gpus_per_node=1", "+cluster.rollout_num_gpus=1",
                    "cluster.colocate=false", "+cluster.num_gpus_per_node=1"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind, alternating")
    parser.add_argument("--rollouts", type=int, default=10, help="rollouts per run (the first is not timed)")
    opts = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"benchmarks/multinode.py: cannot build the hosts here: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="slime-multinode-", dir="/var/tmp"))
    base = work / "base"
    subprocess.run([sys.executable, "tools/make_tiny_model.py", "--out", str(base), "--only", "tiny"], cwd=ROOT,
                   check=True, capture_output=True)  # tiny-cpu and the count task
    cache = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}")
    cache.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    print(f"logs in {work}; load average at the start {load()}", flush=True)
    with NetnsCluster(3, work / "hosts", shared=[work, cache]) as cluster:
        node1 = cluster.hosts[0]
        hostfile = work / "hostfile"
        hostfile.write_text("node2\nnode3\n")
        for repeat in range(opts.repeats):
            for kind, layout in LAYOUTS.items():
                env = {**os.environ, "BASE_FOLDER": str(base), "PYTHON": sys.executable,
                       "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"}
                env.pop("RAY_ADDRESS", None)
                if kind == "three hosts":
                    env.update(MASTER_ADDR=node1.address, HOSTFILE=str(hostfile))
                overrides = [*layout, f"rollout.num_rollout={opts.rollouts}", "ckpt.save_interval=null",
                             f"ckpt.save={work}/ckpt-{kind.replace(' ', '-')}-{repeat}"]
                command = cluster.command(node1, ["bash", "scripts/run-tiny-megatron.sh", *overrides])
                before = load()
                result = summarize(timestamped(command, env, work / f"{kind.replace(' ', '-')}-{repeat}.log"))
                result["load"] = f"{before} → {load()}"
                results[kind].append(result)
                print(f"  {kind}, run {repeat + 1}: start-up {result['startup']:.1f} s, "
                      f"{result['per_rollout'] * 1000:.0f} ms per rollout (load {result['load']})", flush=True)
    report(results)
    return 0


def report(results: dict[str, list[dict]]) -> None:
    median = statistics.median
    one, three = results["one host"], results["three hosts"]
    print(f"\nmedians over {len(one)} run(s) of each")
    print(f"{'':<12} {'start-up':>9} {'per rollout':>12} {'generate':>9} {'train':>7} {'sync':>7}")
    for name, group in results.items():
        phases = {p: median(r["phases"][p] for r in group) for p in ("generate", "train", "sync")}
        print(f"{name:<12} {median(r['startup'] for r in group):>7.1f} s "
              f"{median(r['per_rollout'] for r in group) * 1000:>9.0f} ms "
              + " ".join(f"{phases[p] * 1000:>6.0f}ms" for p in ("generate", "train", "sync")))
    startup = median(r["startup"] for r in three) / median(r["startup"] for r in one)
    per_rollout = median(r["per_rollout"] for r in three) / median(r["per_rollout"] for r in one)
    print(f"\nthree hosts against one: start-up {startup:.2f}x, per rollout {per_rollout:.2f}x")
    for name, group in results.items():
        print(f"  {name}, the trainer's own summary (last run): {group[-1]['ready_line'].removeprefix('slime: ')}")


if __name__ == "__main__":
    sys.exit(main())
