#!/usr/bin/env python3
"""Tokens per second of one training step: the megatron backend (tensor parallel 1 and 2) against the
torch backend, on the same tiny model and batch, measured in one run.

    python benchmarks/train_step.py [--repeats 15] [--samples 32] [--response-len 16]

Every backend lives in its own processes for the whole run (megatron at TP 2 in two); the parent
asks them for one optimizer step at a time, round-robin, so drifts in machine load hit all alike.
The figure is the median step time; tokens are prompt plus response tokens of the batch.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_batch(samples: int, prompt_len: int, response_len: int) -> list[dict]:
    import random

    rng = random.Random(0)
    return [{"prompt_tokens": [2] + [rng.randint(3, 14) for _ in range(prompt_len - 1)],
             "response_tokens": [rng.randint(3, 14) for _ in range(response_len)],
             "loss_mask": [1] * response_len, "rollout_log_probs": [-2.7] * response_len,
             "old_log_probs": [-2.7] * response_len, "ref_log_probs": [-2.7] * response_len,
             "advantages": [rng.choice([1.0, -1.0])] * response_len, "returns": [0.0] * response_len}
            for _ in range(samples)]


def backend_args(base: Path, kind: str, tp: int, samples: int):
    from slime.config.compose import namespace_from_config

    if kind == "torch":
        return namespace_from_config("run_tiny_cpu", ["cluster.actor_num_gpus_per_node=1",
                                                      f"perf.micro_batch_size={samples}"],
                                     environ={"BASE_FOLDER": str(base)})
    return namespace_from_config("run_tiny_megatron", [f"cluster.actor_num_gpus_per_node={tp}",
                                                       f"perf.tensor_model_parallel_size={tp}",
                                                       f"perf.micro_batch_size={samples}"],
                                 environ={"BASE_FOLDER": str(base)})


def worker(kind: str, rank: int, world_size: int, port: int, base: Path, samples: int, batch, conn) -> None:
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    args = backend_args(base, kind, world_size, samples)
    if kind == "torch":
        from slime.backends.torch_backend import TorchTrainBackend as Backend
    else:
        from slime.backends.megatron.backend import MegatronTrainBackend as Backend
    backend = Backend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    tokens = sum(len(s["loss_mask"]) for s in batch)
    conn.send("ready")
    while conn.recv() == "step":
        start = time.perf_counter()
        backend.train(batch, [len(batch)], [tokens])
        conn.send(time.perf_counter() - start)


def start(kind: str, world_size: int, base: Path, samples: int, batch) -> list:
    from slime.utils.ports import free_ports

    context = multiprocessing.get_context("spawn")
    port, pipes = free_ports(1)[0], []
    for rank in range(world_size):
        parent, child = context.Pipe()
        context.Process(target=worker, args=(kind, rank, world_size, port, base, samples, batch, child),
                        daemon=True).start()
        pipes.append(parent)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    return pipes


def step(pipes: list) -> float:
    for pipe in pipes:
        pipe.send("step")
    return max(pipe.recv() for pipe in pipes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=8)
    parser.add_argument("--response-len", type=int, default=16)
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="train-step-"))
    subprocess.run([sys.executable, "tools/make_tiny_model.py", "--out", str(base), "--only", "tiny"], cwd=ROOT,
                   check=True, capture_output=True)
    batch = make_batch(options.samples, options.prompt_len, options.response_len)
    tokens = options.samples * (options.prompt_len + options.response_len)
    contenders = {"torch backend": start("torch", 1, base, options.samples, batch),
                  "megatron backend, TP 1": start("megatron", 1, base, options.samples, batch),
                  "megatron backend, TP 2": start("megatron", 2, base, options.samples, batch)}
    for pipes in contenders.values():  # warm-up: first steps allocate optimizer state
        step(pipes), step(pipes)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(options.repeats):
        for name, pipes in contenders.items():
            times[name].append(step(pipes))
    for pipes in contenders.values():
        for pipe in pipes:
            pipe.send("stop")
    print(f"one optimizer step on {options.samples} samples × {options.prompt_len + options.response_len} tokens "
          f"= {tokens} tokens (tiny model of conf/model/tiny.yaml), median of {options.repeats} interleaved steps")
    baseline = statistics.median(times["torch backend"])
    width = max(map(len, times))
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<{width}}  {tokens / median:9.0f} tokens/s  {median * 1000:8.1f} ms  "
              f"{baseline / median:5.2f}x the torch backend's throughput")


if __name__ == "__main__":
    main()
