"""Progress of a run: one line per rollout on stdout (reward, response length, KL, losses, time per
phase and the rollout's time in all), TensorBoard when --use-tensorboard, Weights & Biases when
--use-wandb and wandb is installed (logged in with --wandb-key/--wandb-host, resuming --wandb-run-id; the key never goes into the run's config)."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager

HEADLINE = ("reward", "response_len", "kl", "actor/loss", "critic/loss", "train_rollout_logprob_abs_diff")


@contextmanager
def timed(phases: dict[str, float], name: str):
    """Add the seconds the block takes to ``phases[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - start


class RunLog:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.last_rollout: float | None = None
        self.phases: dict[str, float] = {}
        self.writer = None
        self.wandb = None
        if args.use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise RuntimeError("--use-tensorboard needs the tensorboard package: pip install tensorboard") from None
            self.writer = SummaryWriter(args.tensorboard_dir)
        if args.use_wandb:
            try:
                import wandb
            except ImportError:
                self.note("--use-wandb is set but wandb is not installed: logging to stdout only")
            else:
                if args.wandb_key or args.wandb_host:
                    wandb.login(key=args.wandb_key, host=args.wandb_host)
                resume = {"id": args.wandb_run_id, "resume": "allow"} if args.wandb_run_id else {}
                wandb.init(project=args.wandb_project, entity=args.wandb_team, group=args.wandb_group,
                           mode=args.wandb_mode, dir=args.wandb_dir, **resume,
                           config={k: v for k, v in vars(args).items() if k != "wandb_key"})
                self.wandb = wandb

    @staticmethod
    def note(message: str) -> None:
        print(f"slime: {message}", flush=True)

    def phase(self, name: str):
        return timed(self.phases, name)

    def add_phase(self, name: str, seconds: float) -> None:
        """A phase timed elsewhere (a generation on another thread, beside this rollout's training)."""
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def mark(self) -> None:
        """Where the next rollout's time in all starts (the loop calls it before the first rollout)."""
        self.last_rollout = time.perf_counter()

    def rollout(self, rollout_id: int, metrics: dict) -> None:
        shown = "  ".join(f"{key} {metrics[key]:.4f}" for key in HEADLINE if key in metrics)
        times = "  ".join(f"{name} {seconds:.2f}s" for name, seconds in self.phases.items())
        now = time.perf_counter()
        in_all = {} if self.last_rollout is None else {"rollout": now - self.last_rollout}
        self.last_rollout = now
        suffix = f"  ({in_all['rollout']:.2f}s in all)" if in_all else ""
        print(f"rollout {rollout_id + 1}/{self.args.num_rollout}  {shown}  |  {times}{suffix}", flush=True)
        values = {**metrics, **{f"time/{name}": seconds for name, seconds in {**self.phases, **in_all}.items()}}
        if self.writer:
            for key, value in values.items():
                self.writer.add_scalar(key, value, rollout_id)
        if self.wandb:
            self.wandb.log(values, step=rollout_id)
        self.phases = {}

    def close(self) -> None:
        if self.writer:
            self.writer.close()
        if self.wandb:
            self.wandb.finish()
        sys.stdout.flush()
