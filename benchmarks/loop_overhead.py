#!/usr/bin/env python3
"""The loop's own overhead: the tiny GRPO run through its launcher (Hydra config → Ray head → Ray job
→ train actors and HTTP engines behind SGLang's router) against an in-process loop over the same
functions (same config, model, data and hyper-parameters: ``slime.trainer.Trainer.loop`` with the
train backend and the torch engine called directly, no Ray, no HTTP), and that loop against a
plain-PyTorch loop of the same algorithm (one model sampling with the torch engine's sampler and
training with the clipped policy loss, the same batch sizes and optimizer: what the project's own
functions cost), all measured in the same run.

    python benchmarks/loop_overhead.py                   # 2 runs of each kind, 10 rollouts per run
    python benchmarks/loop_overhead.py --repeats 3 --rollouts 12

Each run's output lines are timestamped as they arrive. Start-up is from the start of the command
(``bash scripts/run-tiny-cpu.sh``, or ``python`` for the in-process loop) to the trainer's "ready to
train" line, after which the first rollout starts (a Ray job's lines reach the launcher up to about a
second late, which counts against the launched run); its phases come from the launcher's progress
lines and the trainer's own start-up summary. Time per rollout is the median over the rollouts after
the first of each one's time in all, as the run logs it (generate, reward, train, sync and the
calls between), beside the medians of the generate, train and sync phases. The kinds of runs
alternate, so drifts in the machine's load hit both alike; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROLLOUT_LINE = re.compile(r"^rollout (\d+)/\d+\s.*\|\s+(.*)$")
PHASE = re.compile(r"(\w+) ([\d.]+)s")
IN_ALL = re.compile(r"\(([\d.]+)s in all\)")
READY = "slime: ready to train"
# Launcher and job milestones, in order: (label of the phase that ends there, marker in the output).
MILESTONES = [("config generation and checks", "launcher: starting a Ray head"),
              ("Ray head start", "launcher: Ray is up"),
              ("job submission", "slime launch plan"),
              ("trainer start-up (imports, Ray connection, actors, engines, model loads)", READY)]


# -- the in-process loop ------------------------------------------------------------------------------
class InProcessGroup:
    """A train role of one rank in this process: the interface of slime.ray.groups.TrainGroup without
    Ray. A weight push copies the weights into the engine's model (no HTTP)."""

    dp_size = 1

    def __init__(self, backend, engine):
        self.backend, self.engine = backend, engine

    def run_sharded(self, method: str, per_share: list[tuple]) -> list:
        return [getattr(self.backend, method)(*per_share[0])]

    def on_every_rank(self, method: str, *call) -> list:
        if method == "update_weights":
            self.engine.load_weights(self.backend.export_weights(), complete=True)
            return [None]
        return [getattr(self.backend, method)(*call)]

    def first(self, method: str, *call):
        return self.on_every_rank(method, *call)[0]


class InProcessEngines:
    """The engine group's interface over one torch engine in this process."""

    def __init__(self, engine):
        self.engine, self.lock = engine, threading.RLock()

    def check(self) -> None:
        pass

    def sweep(self) -> None:
        pass

    def endpoints(self, engines=None) -> list[dict]:
        return []

    def release(self) -> None:
        self.engine.released = True

    def resume(self, tags=None) -> None:
        if not tags or "kv_cache" in tags:
            self.engine.released = False


class InProcessClient:
    """GenerateClient's interface: the request the HTTP client would send, handed to the engine."""

    engine_urls = ["in-process"]

    def __init__(self, engine):
        self.engine = engine

    def check(self) -> None:
        pass

    def generate(self, input_ids: list[int], sampling_params: dict, return_logprob: bool = True) -> dict:
        return self.engine.generate({"input_ids": input_ids, "sampling_params": sampling_params,
                                     "return_logprob": return_logprob})


def in_process(base: str, overrides: list[str]) -> int:
    """The trainer's loop with its backend and engine in this process; prints what the real run prints."""
    started = time.time()
    from slime.backends.torch_backend import TorchTrainBackend
    from slime.engines.torch_engine import TorchEngine, parse_server_args
    from slime.config.compose import namespace_from_config
    from slime.trainer import StartupClock, Trainer

    args = namespace_from_config("run_tiny_cpu", overrides, environ={"BASE_FOLDER": base})
    trainer = Trainer(args, [], started=started)
    clock = StartupClock(started, before="imports")
    with clock.phase("tokenizer and prompts"):
        trainer.load_data()
    with clock.phase("models"):
        backend = TorchTrainBackend(args, "actor")
        backend.init(0, 1, "127.0.0.1", 0)
        engine = TorchEngine(parse_server_args(["--model-path", args.hf_checkpoint,
                                                "--random-seed", str(args.rollout_seed)]))
    trainer.actor = InProcessGroup(backend, engine)
    trainer.engines = InProcessEngines(engine)
    trainer.client = InProcessClient(engine)
    trainer.log.note(clock.summary())
    trainer.loop(0)
    return 0


# -- the plain-PyTorch loop -----------------------------------------------------------------------------
def plain(base: str, overrides: list[str]) -> int:
    """The same algorithm without the project's loop: one model that samples (the torch engine's sampler,
    called directly on a batch) and trains, GRPO advantages, the clipped policy loss with the sampler's
    log-probs as the old ones, the config's batch sizes, optimizer and learning rate. Prints the lines
    the trainer prints, so the same parser reads them."""
    started = time.time()
    import json
    import random
    import zlib

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from slime.config.compose import namespace_from_config
    from slime.engines.torch_engine import SampleRequest, sample_batch

    a = namespace_from_config("run_tiny_cpu", overrides, environ={"BASE_FOLDER": base})
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    tokenizer = AutoTokenizer.from_pretrained(a.hf_checkpoint)
    rows = [json.loads(line) for line in open(a.prompt_data)]
    prompts = [(tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": r[a.input_key]}],
                                                        tokenize=False, add_generation_prompt=True),
                          add_special_tokens=False)["input_ids"], str(r[a.label_key])) for r in rows]
    model = AutoModelForCausalLM.from_pretrained(a.hf_checkpoint, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(a.adam_beta1, a.adam_beta2), eps=a.adam_eps,
                                  weight_decay=a.weight_decay)
    print(f"slime: ready to train {time.time() - started:.1f} s after the process started (plain loop)", flush=True)
    order, rng, n = list(range(len(prompts))), random.Random(a.rollout_seed), a.n_samples_per_prompt
    last = time.perf_counter()
    for rollout_id in range(a.num_rollout):
        began = time.perf_counter()
        rng.shuffle(order)
        chosen = [prompts[order[(rollout_id * a.rollout_batch_size + g) % len(order)]]
                  for g in range(a.rollout_batch_size)]
        model.eval()
        requests = [SampleRequest(list(ids), a.rollout_max_response_len, a.rollout_temperature, a.rollout_top_p,
                                  a.rollout_top_k, {tokenizer.eos_token_id}, [],
                                  torch.Generator().manual_seed(zlib.crc32(f"{rollout_id}:{i}".encode())))
                    for i, (ids, _) in enumerate(p for p in chosen for _ in range(n))]
        replies = sample_batch(model, tokenizer, requests)
        rewards = torch.tensor([float(tokenizer.decode(out, skip_special_tokens=True).strip() == chosen[i // n][1])
                                for i, (out, _, _) in enumerate(replies)]).view(-1, n)
        advantages = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)).flatten()
        generated = time.perf_counter()
        model.train()
        samples = list(zip(requests, replies, advantages.tolist()))
        for step in range(0, len(samples), a.global_batch_size):
            optimizer.zero_grad()
            batch = samples[step:step + a.global_batch_size]
            tokens = sum(len(out) for _, (out, _, _), _ in batch)
            for m in range(0, len(batch), a.micro_batch_size):
                micro = batch[m:m + a.micro_batch_size]
                sequences = [r.input_ids + out for r, (out, _, _), _ in micro]
                width = max(map(len, sequences))
                ids = torch.tensor([s + [0] * (width - len(s)) for s in sequences])
                mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
                row, col, target, old, adv = zip(*[(i, len(r.input_ids) - 1 + t, tok, lp[t], advantage)
                                                   for i, (r, (out, lp, _), advantage) in enumerate(micro)
                                                   for t, tok in enumerate(out)])
                logits = model(input_ids=ids, attention_mask=mask).logits[list(row), list(col)].float()
                log_probs = torch.log_softmax(logits / a.rollout_temperature, -1)[torch.arange(len(target)),
                                                                                   torch.tensor(target)]
                ratio = (log_probs - torch.tensor(old)).exp()
                adv = torch.tensor(adv)
                loss = -torch.min(ratio * adv, ratio.clamp(1 - a.eps_clip, 1 + a.eps_clip_high) * adv).sum() / tokens
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip_grad)
            optimizer.step()
        now = time.perf_counter()
        print(f"rollout {rollout_id + 1}/{a.num_rollout}  reward {float(rewards.mean()):.4f}  |  generate "
              f"{generated - began:.2f}s  train {now - generated:.2f}s  ({now - last:.2f}s in all)", flush=True)
        last = now
    return 0


# -- running and reading the runs ---------------------------------------------------------------------
def timestamped(command: list[str], env: dict, log: Path) -> list[tuple[float, str]]:
    """Run ``command``; each output line with the seconds since the start at which it arrived."""
    start = time.perf_counter()
    lines = []
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process, open(log, "w") as out:
        for line in process.stdout:
            stamp = time.perf_counter() - start
            lines.append((stamp, line.rstrip("\n")))
            out.write(f"{stamp:8.2f} {line}")
        code = process.wait()
    if code:
        raise SystemExit(f"{' '.join(command[:3])} … failed with exit code {code}; its output: {log}")
    return lines


def first_time(lines: list[tuple[float, str]], marker: str) -> float | None:
    return next((stamp for stamp, line in lines if marker in line), None)


def summarize(lines: list[tuple[float, str]]) -> dict:
    rollouts = [(stamp, dict((name, float(value)) for name, value in PHASE.findall(match.group(2))))
                for stamp, line in lines if (match := ROLLOUT_LINE.match(line))]
    if len(rollouts) < 3:
        raise SystemExit("a run logged fewer than 3 rollouts: nothing to measure")
    # The trainer's own clock: a Ray job's output reaches the launcher in bursts, so arrival times do not tell.
    in_all = [float(m.group(1)) for _, line in lines if ROLLOUT_LINE.match(line) and (m := IN_ALL.search(line))][1:]
    phases = {name: statistics.median(p.get(name, 0.0) for _, p in rollouts[1:]) for name in ("generate", "train", "sync")}
    ready = first_time(lines, READY)
    milestones, previous = {}, 0.0
    for label, marker in MILESTONES:
        at = first_time(lines, marker)
        if at is not None:
            milestones[label], previous = at - previous, at
    summary = next((line for _, line in lines if READY in line), "")
    return {"startup": ready, "per_rollout": statistics.median(in_all), "phases": phases,
            "milestones": milestones, "ready_line": summary}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind, alternating")
    parser.add_argument("--rollouts", type=int, default=10, help="rollouts per run (the first is not timed)")
    parser.add_argument("--base", help="a BASE_FOLDER made by tools/make_tiny_model.py (default: a fresh one)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.in_process:
        return in_process(opts.base, opts.overrides)
    if opts.plain:
        return plain(opts.base, opts.overrides)
    from slime.utils.ports import free_ports

    work = Path(tempfile.mkdtemp(prefix="slime-loop-overhead-"))
    base = opts.base or str(work / "base")
    if not opts.base:
        subprocess.run([sys.executable, "tools/make_tiny_model.py", "--out", base], cwd=ROOT, check=True,
                       capture_output=True)
    results: dict[str, list[dict]] = {"launcher (Ray, HTTP engines)": [], "in-process loop": [],
                                      "plain-PyTorch loop": []}
    print(f"logs in {work}; load average at the start {load()}")
    for repeat in range(opts.repeats):
        for kind in results:
            overrides = [f"rollout.num_rollout={opts.rollouts}", "ckpt.save_interval=null",
                         f"ckpt.save={work}/ckpt-{len(results[kind])}-{kind.split()[0]}"]
            env = {**os.environ, "BASE_FOLDER": base, "PYTHON": sys.executable}
            if kind.startswith("launcher"):
                names = ("RAY_PORT", "RAY_DASHBOARD_PORT", "RAY_AGENT_PORT", "RAY_CLIENT_PORT")
                env.update(zip(names, map(str, free_ports(len(names)))))
                command = ["bash", "scripts/run-tiny-cpu.sh", *overrides]
            else:
                flag = "--in-process" if kind.startswith("in-process") else "--plain"
                command = [sys.executable, __file__, flag, "--base", base, "--", *overrides]
            before = load()
            result = summarize(timestamped(command, env, work / f"{kind.split()[0]}-{repeat}.log"))
            result["load"] = f"{before} → {load()}"
            results[kind].append(result)
            print(f"  {kind}, run {repeat + 1}: start-up {result['startup']:.1f} s, {result['per_rollout'] * 1000:.0f} ms "
                  f"per rollout (load {result['load']})", flush=True)
    report(results)
    return 0


def report(results: dict[str, list[dict]]) -> None:
    (launched, runs), (_, baseline), (_, plain_runs) = results.items()
    median = statistics.median
    base_rollout, base_startup = median(r["per_rollout"] for r in baseline), median(r["startup"] for r in baseline)
    plain_rollout = median(r["per_rollout"] for r in plain_runs)
    print(f"\nmedians over {len(runs)} run(s) of each")
    print(f"{'':<30} {'start-up':>9} {'per rollout':>12} {'generate':>9} {'train':>7} {'sync':>7}")
    for name, group in results.items():
        phases = {p: median(r["phases"][p] for r in group) for p in ("generate", "train", "sync")}
        print(f"{name:<30} {median(r['startup'] for r in group):>7.1f} s "
              f"{median(r['per_rollout'] for r in group) * 1000:>9.0f} ms "
              + " ".join(f"{phases[p] * 1000:>6.0f}ms" for p in ("generate", "train", "sync")))
    per_rollout = median(r["per_rollout"] for r in runs)
    startup = median(r["startup"] for r in runs)
    print(f"\nper rollout: launched {per_rollout / base_rollout:.2f}x the in-process loop (target 1.3x); "
          f"in-process {base_rollout / plain_rollout:.2f}x the plain-PyTorch loop (target 1.5x)")
    print(f"start-up: {startup:.1f} s ({startup / base_startup:.1f}x the in-process loop's {base_startup:.1f} s)")
    print("\nstart-up of the launched run, by phase (medians):")
    for label, _ in MILESTONES:
        values = [r["milestones"][label] for r in runs if label in r["milestones"]]
        if values:
            print(f"  {label:<75} {median(values):6.1f} s")
    print(f"  the trainer's own summary (last run): {runs[-1]['ready_line'].removeprefix('slime: ')}")
    print(f"  the in-process loop's (last run): {baseline[-1]['ready_line'].removeprefix('slime: ')}")


if __name__ == "__main__":
    sys.exit(main())
