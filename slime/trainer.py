"""The RL training loop (slime's shape), run by ``train.py`` and ``train_async.py`` on a validated Namespace.

Ray (the cluster the job runs on, or a fresh local one) → placement groups from the plan → the
actor group (and a critic group for PPO) and the rollout engines → for each rollout from the
resumed one to --num-rollout: generate → reward → (critic train) → actor train → save every
--save-interval → push weights to the engines → evaluate every --eval-interval → log.
``train_async.py`` runs the same steps one step off policy: the next rollout generates while this
one trains, and is finished before the weights are pushed.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
from pathlib import Path

from slime.utils.background import in_background
from slime.utils.checkpoint import CheckpointFailed, latest_rollout_id, read_run_record, saving, write_run_record
from slime.utils.non_finite import NonFinite, metrics_problem, reward_problem
from slime.arguments.role_overrides import role_args
from slime.utils.run_log import RunLog, timed
from slime.arguments.validation import uses_reference_model
from slime.utils.checkout import ROOT



class Stopped(Exception):
    """The run was asked to stop (SIGTERM): it shuts Ray down like any other ending."""


def _on_sigterm(signum, frame):
    raise Stopped("stopped by SIGTERM")


def complete_run_note(args: argparse.Namespace) -> str | None:
    """What to say instead of training when --load already holds the last rollout of the run."""
    done = latest_rollout_id(args.load) if not (args.debug_rollout_only or args.finetune) else None
    if done is None or args.num_rollout is None or done + 1 < args.num_rollout:
        return None
    return (f"the run is complete: {args.load} holds rollout {done + 1} of {args.num_rollout}, so there is nothing "
            f"to train. To train further, raise --num-rollout (rollout.num_rollout=...); to start over, remove "
            f"{args.save or args.load} or give the run new folders (ckpt.save=... ckpt.load=...)")


def connect_ray(args: argparse.Namespace):
    """Join the cluster of a Ray job (RAY_ADDRESS), or start a private local one with the run's GPUs declared."""
    import ray

    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True)
        return
    from slime.ray.placement import bundles_needed

    # The local cluster's workers inherit this process's environment, PYTHONPATH included.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # On loopback: the engines, the router and the weight-update group of a local run stay on this machine.
    ray.init(address="local", num_gpus=max(bundles_needed(args), 1), num_cpus=os.cpu_count(), include_dashboard=False,
             log_to_driver=True, _node_ip_address="127.0.0.1")


def _training_dicts(samples) -> list[dict]:
    return [{"prompt_tokens": s.prompt_tokens, "response_tokens": s.response_tokens, "loss_mask": s.loss_mask,
             "rollout_log_probs": s.rollout_log_probs} for s in samples]


def rollout_old_log_probs(samples) -> list[list[float]]:
    """The rollout engine's log-probs as the old policy's (--use-rollout-logprobs): one per response token."""
    for i, s in enumerate(samples):
        if len(s.rollout_log_probs) != s.response_length:
            raise ValueError(f"--use-rollout-logprobs: sample {i} has {len(s.rollout_log_probs)} rollout log-probs "
                             f"for {s.response_length} response tokens; the rollout function must fill "
                             "sample.rollout_log_probs (the SGLang rollout does), or drop the flag to recompute them")
    return [list(s.rollout_log_probs) for s in samples]


def group_size(args: argparse.Namespace, samples: int) -> int:
    """The samples one group normalization spans, by upstream slime's rule: a prompt's
    --n-samples-per-prompt when the rollout holds --rollout-batch-size whole groups, else the whole
    rollout (a rollout function that returns another count)."""
    return args.n_samples_per_prompt if samples == args.n_samples_per_prompt * args.rollout_batch_size else samples


def estimator_options(args: argparse.Namespace) -> dict:
    """The settings of ``slime.algorithms.advantages.compute_advantages`` that the flags give."""
    return {"kl_coef": args.kl_coef, "gamma": args.gamma, "lambd": args.lambd,
            "divide_by_std": args.grpo_std_normalization, "normalize": args.normalize_advantages,
            # a reward post-process hook's rewards replace group normalization, as upstream's do
            "normalize_rewards": args.rewards_normalization and not args.custom_reward_post_process_path,
            "kl_in_group_rewards": args.kl_penalty_in_group_rewards}


def upstream_rollout_data(args: argparse.Namespace, samples, rewards, kl, values, old, ref) -> dict:
    """What upstream's custom advantage function ``fn(args, rollout_data)`` reads, per sample: tensors of
    the response tokens, and the rewards after the rollout side's normalization."""
    import torch

    from slime.algorithms.advantages import normalized_rewards

    options = estimator_options(args)
    normalized = normalized_rewards(args.advantage_estimator, rewards, group_size(args, len(samples)),
                                    options["divide_by_std"], options["normalize_rewards"])

    def tensors(rows):
        return None if rows is None else [torch.tensor(row, dtype=torch.float32) for row in rows]

    return {"rewards": normalized.float().tolist(), "raw_reward": [float(s.get_reward_value(args)) for s in samples],
            "kl": tensors(kl) or [torch.zeros(s.response_length) for s in samples], "values": tensors(values),
            "loss_masks": tensors([s.loss_mask for s in samples]), "log_probs": tensors(old),
            "ref_log_probs": tensors(ref), "rollout_log_probs": tensors([s.rollout_log_probs or [] for s in samples]),
            "response_lengths": [s.response_length for s in samples], "total_lengths": [len(s.tokens) for s in samples],
            "tokens": [torch.tensor(s.tokens) for s in samples]}


def ref_update_due(args: argparse.Namespace, rollout_id: int) -> bool:
    """Whether the reference model becomes the actor after training on ``rollout_id`` (--ref-update-interval)."""
    return bool(args.ref_update_interval) and (rollout_id + 1) % args.ref_update_interval == 0


def _shard(batch: list[dict], steps: int, ranks: int) -> list[list[dict]]:
    """Each optimizer step's samples split evenly over the ranks, steps kept in order."""
    per_step = len(batch) // steps
    per_rank = per_step // ranks
    return [[batch[k * per_step + r * per_rank + i] for k in range(steps) for i in range(per_rank)] for r in range(ranks)]


def _unshard(per_rank: list[list], steps: int, ranks: int) -> list:
    per_rank_step = len(per_rank[0]) // steps
    return [per_rank[r][k * per_rank_step + i] for k in range(steps) for r in range(ranks) for i in range(per_rank_step)]


class StartupClock:
    """Seconds of each start-up phase, and a one-line summary since the process started. The engines
    start while the data loads and the train actors start: those are summed up side by side (colocated,
    the train actors start after the engines: ``engines_first``)."""

    SIDE_BY_SIDE = ("engines", "data", "train actors")

    def __init__(self, started: float | None, before: str = "imports and connecting to Ray"):
        self.started, self.before, self.created = started, before, time.time()
        self.phases: dict[str, float] = {}
        self.engines_first = False

    def phase(self, name: str):
        return timed(self.phases, name)

    def summary(self) -> str:
        parts = [f"{name} {seconds:.1f} s" for name, seconds in self.phases.items() if name not in self.SIDE_BY_SIDE]
        beside = {name: f"{name} {self.phases[name]:.1f} s" for name in self.SIDE_BY_SIDE if name in self.phases}
        if self.engines_first and "engines" in beside and "train actors" in beside:
            parts.append(f"then {beside['engines']} and after them {beside['train actors']}"
                         + (f" ({beside['data']} beside them)" if "data" in beside else ""))
        elif beside:
            parts.append("then side by side " + ", ".join(beside.values()))
        if self.started is None:
            return "ready to train: " + ", ".join(parts)
        parts.insert(0, f"{self.before} {self.created - self.started:.1f} s")
        return f"ready to train {time.time() - self.started:.1f} s after the process started: " + ", ".join(parts)


class Trainer:
    def __init__(self, args: argparse.Namespace, argv: list[str], args_file: str | None = None,
                 started: float | None = None, entry_point: str = "train.py"):
        self.args, self.argv, self.args_file, self.entry_point = args, argv, args_file, entry_point
        self.started = started  # time.time() when train.py started, for the start-up summary
        self.log = RunLog(args)
        self.actor = self.critic = self.engines = self.client = None
        self.data_source = None
        self.eval_sets: dict = {}
        self.weight_version = 0  # the engines' weights: those of the checkpoint, then one more per push
        self.own_disk_dir = None
        self.placement = None

    # -- setup ---------------------------------------------------------------------------------
    def setup(self) -> int:
        """Data, placement, the train groups and the engines (``_start_groups``); the rollout to start at."""
        import ray

        from slime.ray.placement import create_placement

        a = self.args
        clock = StartupClock(self.started)
        available = ray.cluster_resources().get("GPU", 0)
        with clock.phase("placement"):
            placement = self.placement = create_placement(a, available)
        if a.update_weight_transport == "disk" and not a.update_weight_disk_dir and not a.debug_train_only:
            import tempfile

            # One folder per run: two runs on a machine must not read each other's weights.
            a.update_weight_disk_dir = self.own_disk_dir = tempfile.mkdtemp(prefix="slime-weights-")
            self.log.note(f"weights reach the engines through {a.update_weight_disk_dir} (--update-weight-disk-dir)")
        if a.use_kl_loss and not uses_reference_model(a):
            self.log.note("--use-kl-loss with --kl-loss-coef 0 adds nothing to the loss: the reference model is "
                          "neither loaded nor run and no kl is logged (give --kl-loss-coef a weight to use it)")
        if a.kl_coef and a.advantage_estimator in ("grpo", "gspo", "cispo") and not a.kl_penalty_in_group_rewards:
            self.log.note(f"--kl-coef {a.kl_coef:g} with {a.advantage_estimator}: as in upstream slime the KL to the "
                          "reference is logged but does not change the advantages (--kl-penalty-in-group-rewards "
                          "charges it to the rewards; --use-kl-loss puts it in the loss)")
        released = self._start_groups(placement, clock)
        self._note_placement()
        start = 0
        resumed = self.actor.first("loaded_rollout_id") if self.actor else None
        if resumed is not None:
            start = resumed + 1
            record = read_run_record(a.load, resumed)
            if self.data_source and record.get("data_source"):
                self.data_source.load_state_dict(record["data_source"])
            self.log.note(f"resumed from {a.load} at rollout {resumed}: model and optimizer loaded, "
                          f"continuing at rollout {start}")
        if a.start_rollout_id is not None:
            start = a.start_rollout_id
            self.log.note(f"starting at rollout {start} (--start-rollout-id)")
        if self.engines and a.offload_train:
            self._on_engine_gpus("offload")
        if released:  # as after training: weights back, the trained ones in, then the KV cache
            self.engines.resume(["weights"])
            self._push_weights()
            self.engines.resume(["kv_cache"])
        elif resumed is not None:
            self._push_weights()
        self.log.note(clock.summary())
        return start

    def _on_engine_gpus(self, method: str) -> None:
        """``method`` (offload, onload) on every train group on the engines' GPUs: the actor, and the critic
        when it trains on the actor's GPUs (--critic-placement with-actor)."""
        from slime.arguments.topology import critic_with_actor

        for group in (self.actor, self.critic if critic_with_actor(self.args) else None):
            if group is not None:
                group.on_every_rank(method)

    def seats(self) -> list:
        """Every train rank and engine of the run, with the host it is on."""
        from slime.ray.hosts import Seat

        seats = []
        for name, group, slots in (("actor", self.actor, self.placement.actor if self.placement else []),
                                   ("critic", self.critic, self.placement.critic if self.placement else [])):
            if group is None:
                continue
            for rank, slot in enumerate(slots[:group.size]):
                host = self.placement.host(slot)
                if host is not None:
                    seats.append(Seat(f"{name} rank {rank} of {group.size}", host))
        for engine in self.engines.engines if self.engines else []:
            seats += [Seat(f"rollout engine {engine.index} ({engine.url})", host) for host in engine.hosts]
        return seats

    def _note_placement(self) -> None:
        """On several nodes: where every rank and engine is, and where each role's ranks meet."""
        from slime.ray.hosts import placement_note, spans_nodes

        seats = self.seats()
        if not spans_nodes(seats):
            return
        meet = [f"the {group.role}'s ranks meet at {group.rendezvous[0]}:{group.rendezvous[1]}"
                for group in (self.actor, self.critic) if group is not None and group.size > 1]
        self.log.note(placement_note(seats) + ("; " + "; ".join(meet) if meet else ""))

    def host_loss(self, error: BaseException) -> str | None:
        """When ``error`` came from a lost host (a run on several nodes): the host, what it held, the last
        saved rollout and the command that resumes; else None."""
        import ray

        from slime.ray.hosts import lost_hosts, lost_note, spans_nodes
        from slime.utils.resume import resume_note

        seats = self.seats() if ray.is_initialized() else []
        if not spans_nodes(seats):
            return None
        gone = lost_hosts({seat.host for seat in seats})
        if not gone:
            return None
        first = (str(getattr(error, "cause", None) or error).strip().splitlines() or [type(error).__name__])[0]
        return (f"{lost_note(seats, gone)}. The run stops: {resume_note(self.args, self.argv, self.entry_point)}\n"
                f"  once {' and '.join(host.describe() for host in gone)} is back, or another host with its GPUs is in "
                f"its place (HOSTFILE, or the Ray cluster of RAY_ADDRESS).\n  The error it caused: {first[:400]}")

    def load_data(self) -> None:
        """The tokenizer, the prompts (and --num-rollout from --num-epoch) and the evaluation sets."""
        from transformers import AutoTokenizer

        from slime.rollout.data_source import DataSource, load_prompts

        a = self.args
        self.tokenizer = AutoTokenizer.from_pretrained(a.hf_checkpoint, trust_remote_code=a.sglang_trust_remote_code)
        if a.prompt_data and a.rollout_global_dataset and not a.load_debug_rollout_data:
            prompts = load_prompts(a.prompt_data, self.tokenizer, input_key=a.input_key, label_key=a.label_key,
                                   metadata_key=a.metadata_key, apply_chat_template=a.apply_chat_template,
                                   chat_template_kwargs=a.apply_chat_template_kwargs,
                                   max_prompt_len=a.rollout_max_prompt_len, tool_key=a.tool_key)
            self.data_source = DataSource(prompts, a.rollout_shuffle, a.rollout_seed, a.n_samples_per_prompt)
            if a.num_rollout is None:
                a.num_rollout = math.ceil(a.num_epoch * len(prompts) / a.rollout_batch_size)
                self.log.note(f"{a.num_epoch} epoch(s) of {len(prompts)} prompts: {a.num_rollout} rollouts")
        if not a.debug_train_only:
            self.eval_sets = self._eval_sets()

    def _start_groups(self, placement, clock: StartupClock) -> bool:
        """The engines here and, in threads meanwhile, the data and the train groups: the processes load
        their models side by side. Colocated, the train groups start once the engines are up (and have
        released their memory, with --offload-rollout): SGLang sizes its KV cache from the GPU memory free
        when it starts, which must not depend on how far a trainer on the same GPU has got (upstream slime
        starts them in this order too). The train groups wait for the data only when --num-rollout comes
        from it (their learning-rate schedules need it). (The engines start here, not in a thread: the
        router they start dies with the thread that started it, PR_SET_PDEATHSIG.) An error of any is
        raised once all are settled, and whatever did start is in ``self`` for ``run`` to shut down.
        Returns whether the engines were released (to be resumed once the trainers are offloaded)."""
        from concurrent.futures import ThreadPoolExecutor

        from slime.engines.group import EngineGroup

        a = self.args
        engines_first = clock.engines_first = bool(a.colocate) and not a.debug_train_only and not a.debug_rollout_only
        released = False
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="start") as pool:
            data = pool.submit(self._timed_data, clock)
            train = (self._train_groups, placement, clock, data if a.num_rollout is None else None)
            training = None if engines_first else pool.submit(*train)
            errors = []
            try:
                if not a.debug_train_only:
                    with clock.phase("engines"):
                        self.engines = EngineGroup(a, placement, log=self.log.note)
                        if engines_first and a.offload_rollout:
                            self.engines.release()
                            released = True
            except BaseException as err:  # the threads are settled first, so that nothing is left starting
                errors.append(err)
            if training is None and not errors:
                training = pool.submit(*train)
            for future in (data, training):
                try:
                    if future is not None:
                        future.result()
                except BaseException as err:
                    errors.append(err)
            if errors:
                raise errors[0]
        if self.engines:
            from slime.rollout.client import GenerateClient

            self.client = GenerateClient(self.engines.router_url, [e.url for e in self.engines.engines],
                                         check=self.engines.check, recover=self.engines.recover,
                                         key=self.engines.key)
            if self.actor:
                self.engines.on_restart = self._push_weights  # a restarted engine gets the current weights
        return released

    def _eval_sets(self) -> dict:
        from slime.rollout.data_source import load_prompts
        from slime.arguments.eval_datasets import eval_datasets

        a = self.args
        return {name: load_prompts(path, self.tokenizer, input_key=a.eval_input_key or a.input_key,
                                   label_key=a.eval_label_key or a.label_key, metadata_key=a.metadata_key,
                                   apply_chat_template=a.apply_chat_template,
                                   chat_template_kwargs=a.apply_chat_template_kwargs,
                                   max_prompt_len=a.eval_max_prompt_len, tool_key=a.eval_tool_key or a.tool_key)
                for name, path in eval_datasets(a)}

    # -- one rollout ---------------------------------------------------------------------------
    def rollout_context(self):
        """What every rollout function gets as its ``data_source`` (slime.rollout.plugins)."""
        from slime.rollout.sglang_rollout import RolloutContext

        return RolloutContext(self.client if self.engines else None, self.tokenizer, self.data_source, self.eval_sets)

    def _generate(self, rollout_id: int) -> tuple[list, dict]:
        """One rollout's samples (replayed, or from the rollout function) and the metrics it reported."""
        import torch

        from slime.rollout.plugins import call_rollout, train_samples, trimmed
        from slime.rollout.sample import Sample
        from slime.utils.functions import load_function

        a = self.args
        if a.load_debug_rollout_data:
            rows = torch.load(a.load_debug_rollout_data.format(rollout_id=rollout_id), weights_only=False)
            return [Sample.from_dict(row) for row in rows], {}
        path = a.rollout_function_path
        samples, metrics = train_samples(call_rollout(load_function(path), a, rollout_id, self.rollout_context()),
                                         a, path)
        if len(samples) % a.global_batch_size:
            kept = trimmed(samples, a.global_batch_size, path)
            self.log.note(f"rollout {rollout_id}: {len(samples)} samples trimmed to {len(kept)}, a multiple of "
                          f"--global-batch-size {a.global_batch_size}")
            samples = kept
        if a.save_debug_rollout_data:
            path = Path(a.save_debug_rollout_data.format(rollout_id=rollout_id))
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save([s.to_dict() for s in samples], path)
        return samples, metrics

    def _train(self, rollout_id: int, samples) -> dict:
        from slime.rollout.hooks import filter_samples

        a = self.args
        steps, ranks = len(samples) // a.global_batch_size, self.actor.dp_size  # as upstream: whole global batches
        filtered = filter_samples(a, samples)  # removed samples train with a loss mask of zeros
        batch = _training_dicts(samples)
        shards, gather = self._shards(batch, steps, ranks)
        critic = self._shards(batch, steps, self.critic.dp_size) if self.critic else None  # the same dicts
        metrics = self._sft_fields(batch) if a.loss_type == "sft_loss" else \
            self._rl_fields(samples, batch, shards, gather, critic)
        per_step = len(batch) // steps
        tokens = [sum(sum(r["loss_mask"]) for r in batch[k * per_step:(k + 1) * per_step]) for k in range(steps)]
        if a.rollout_sample_filter_path:
            metrics["samples_filtered_out"] = filtered
            self.log.note(f"rollout {rollout_id}: {filtered} of {len(samples)} samples left out of the loss "
                          "(--rollout-sample-filter-path)")
        if critic:
            sizes = [per_step // self.critic.dp_size] * steps
            metrics.update(self.critic.run_sharded("train", [(s, sizes, tokens) for s in critic[0]])[0])
        if rollout_id >= a.num_critic_only_steps:
            sizes = [per_step // ranks] * steps
            metrics.update(self.actor.run_sharded("train", [(s, sizes, tokens) for s in shards])[0])
            if ref_update_due(a, rollout_id):
                self.actor.on_every_rank("update_reference")
                self.log.note(f"rollout {rollout_id}: the reference model is now the actor (--ref-update-interval)")
        return metrics

    @staticmethod
    def _sft_fields(batch: list[dict]) -> dict:
        """--loss-type sft_loss trains on the log-likelihood alone: no old policy, reference or advantages."""
        for row in batch:
            zeros = [0.0] * len(row["response_tokens"])
            row.update(advantages=zeros, returns=zeros, old_log_probs=zeros, ref_log_probs=None, old_values=None)
        return {}

    def _rl_fields(self, samples, batch: list[dict], shards: list[list[dict]], gather, critic) -> dict:
        """Each row's old (and reference) log-probs, values (``critic``: its shards and gather), advantages
        and returns, in place; the KL metric and the engine's log-prob gap."""
        import torch

        from slime.algorithms.advantages import compute_advantages
        from slime.algorithms.kl import kl_estimate
        from slime.algorithms.layout import pad_lists, unpad_lists, valid_mask
        from slime.rollout.hooks import custom_advantages, post_processed_rewards

        a = self.args
        if a.use_rollout_logprobs:
            old = rollout_old_log_probs(samples)
        else:
            old = gather(self.actor.run_sharded("compute_log_probs", [(s,) for s in shards]))
        needs_reference = uses_reference_model(a)
        ref = gather(self.actor.run_sharded("compute_log_probs", [(s, True) for s in shards])) \
            if needs_reference else None
        values = None
        if critic:
            critic_shards, critic_gather = critic
            values = critic_gather(self.critic.run_sharded("compute_values", [(s,) for s in critic_shards]))
        lengths = torch.tensor([s.response_length for s in samples])
        keep = valid_mask(lengths) & (pad_lists([s.loss_mask for s in samples]) > 0)
        kl = kl_estimate(pad_lists(old), pad_lists(ref), a.kl_loss_type) if ref else None
        rewards = torch.tensor(post_processed_rewards(a, samples), dtype=torch.float32)
        if a.custom_advantage_function_path:
            per_sample_kl = unpad_lists(kl, lengths) if ref else None
            advantages, returns = custom_advantages(
                a, samples, rewards, per_sample_kl, values,
                rollout_data=upstream_rollout_data(a, samples, rewards, per_sample_kl, values, old, ref))
        elif a.compute_advantages_and_returns:
            advantages, returns = compute_advantages(
                a.advantage_estimator, rewards, lengths, group_size(a, len(samples)), loss_mask=keep, kl=kl,
                values=pad_lists(values) if values else None, **estimator_options(a))
            advantages, returns = unpad_lists(advantages, lengths), unpad_lists(returns, lengths)
        else:
            advantages = returns = [torch.as_tensor(s.metadata["advantages"]).tolist() for s in samples]
        for i, row in enumerate(batch):
            row.update(advantages=advantages[i], returns=returns[i], old_log_probs=old[i],
                       ref_log_probs=ref[i] if ref else None, old_values=values[i] if values else None)
        metrics = {"kl": float(kl[keep].mean())} if kl is not None and keep.any() else {}
        if not a.use_rollout_logprobs and keep.any() and all(len(s.rollout_log_probs) == s.response_length
                                                             for s in samples):
            # the engine's log-probs against the trainer's: ~0 on policy, the policy's lag one step off it
            gap = (pad_lists(old) - pad_lists([s.rollout_log_probs for s in samples])).abs()
            metrics["train_rollout_logprob_abs_diff"] = float(gap[keep].mean())
        return metrics

    def _shards(self, batch: list[dict], steps: int, ranks: int):
        """Each rank's share of the rollout, and the function that puts per-rank results back in the
        rollout's order. With --balance-data each step's samples are spread so that the ranks get
        about the same number of tokens."""
        order = list(range(len(batch)))
        if self.args.balance_data and ranks > 1:
            from slime.utils.seqlen_balancing import balanced_order

            order = balanced_order([len(r["prompt_tokens"]) + len(r["response_tokens"]) for r in batch], steps, ranks)

        def gather(per_rank: list[list]) -> list:
            result = [None] * len(batch)
            for position, value in zip(order, _unshard(per_rank, steps, ranks)):
                result[position] = value
            return result

        return _shard([batch[i] for i in order], steps, ranks), gather

    def _timed_data(self, clock: StartupClock) -> None:
        with clock.phase("data"):
            self.load_data()

    def _train_groups(self, placement, clock: StartupClock, data=None) -> None:
        from slime.ray.groups import TrainGroup

        a = self.args
        if data is not None:
            data.result()  # --num-rollout comes from the data, and the train ranks' schedules from it
        if a.debug_rollout_only:
            return
        with clock.phase("train actors"):
            self.actor = TrainGroup(role_args(a, "actor"), "actor", placement)
            if a.use_critic:
                self.critic = TrainGroup(role_args(a, "critic"), "critic", placement)

    def _push_weights(self, engines=None) -> None:
        """Every actor rank pushes (a collective); to every engine in service, or to ``engines``. Under
        --use-fault-tolerance an engine that dies meanwhile is restarted (and given the weights then)."""
        from slime.rollout.client import EngineError

        if not self.engines:
            return
        with self.engines.lock:  # not while an engine is being restarted: it would miss these weights
            self.engines.check()
            try:
                self.actor.on_every_rank("update_weights", self.engines.endpoints(engines), self.weight_version)
            except EngineError:
                if not self.args.use_fault_tolerance or engines is not None:
                    raise
                self.engines.sweep()  # restarts the dead engine, which gets the weights as it comes back
                self.actor.on_every_rank("update_weights", self.engines.endpoints(), self.weight_version)

    def _save(self, rollout_id: int) -> None:
        a = self.args
        for name, group in (("actor", self.actor), ("critic", self.critic)):
            problem = group.first("non_finite_parameters") if group else None
            if problem:
                raise NonFinite(f"rollout {rollout_id}: the {name}'s {problem}; the checkpoint was not saved (the "
                                "last one stays the latest): resume from it with a lower --lr or a --clip-grad")
        critic_save = (role_args(a, "critic").save,) if self.critic else ()
        with saving(a.save, rollout_id, critic_save, passed_on=(Stopped,)):  # never a partial iteration left
            self.actor.on_every_rank("save", a.save, rollout_id)
            if self.critic:
                self.critic.on_every_rank("save", critic_save[0], rollout_id)
            write_run_record(a.save, rollout_id, self.argv, a,
                             {"data_source": self.data_source.state_dict() if self.data_source else None},
                             args_file=self.args_file)

    def run(self, one_step_off_policy: bool = False) -> None:
        start = self.setup()
        self.loop_one_step_off_policy(start) if one_step_off_policy else self.loop(start)

    def loop(self, start: int) -> None:
        """train.py: rollouts ``start`` to --num-rollout, each generated with the weights trained on the one
        before, with the groups, engines and client set up."""
        self._before_first_rollout(start)
        for rollout_id in range(start, self.args.num_rollout):
            with self.log.phase("generate"):
                samples, rollout_metrics = self._generate(rollout_id)
            self._learn_from(rollout_id, samples, rollout_metrics=rollout_metrics)

    def loop_one_step_off_policy(self, start: int) -> None:
        """train_async.py: rollout n + 1 is generated (in a thread of this process, over the engines' HTTP
        API) while the train groups train on rollout n; before the weights are pushed, that generation is
        finished, so every rollout comes from one set of weights, one update behind the trained ones."""
        a = self.args
        self._before_first_rollout(start)
        pending = in_background(self._timed_generate, start, name="rollout")
        for rollout_id in range(start, a.num_rollout):
            with self.log.phase("wait"):  # the part of the generation that training did not hide
                (samples, rollout_metrics), seconds = pending.result()
            self.log.add_phase("generate", seconds)
            pending = in_background(self._timed_generate, rollout_id + 1, name="rollout") \
                if rollout_id + 1 < a.num_rollout else None
            self._learn_from(rollout_id, samples, before_push=pending.result if pending else None,
                             rollout_metrics=rollout_metrics)

    def _timed_generate(self, rollout_id: int) -> tuple[tuple[list, dict], float]:
        began = time.perf_counter()
        samples = self._generate(rollout_id)
        return samples, time.perf_counter() - began

    def _before_first_rollout(self, start: int) -> None:
        a = self.args
        self.log.mark()
        if self.engines and self.eval_sets and a.eval_interval and not a.skip_eval_before_train and start == 0:
            self._evaluate(start - 1)

    def _learn_from(self, rollout_id: int, samples, before_push=None, rollout_metrics: dict | None = None) -> None:
        """One rollout's checks, training, checkpoint, weight push (after ``before_push()``, which waits
        for a generation in flight), evaluation and log line (with the metrics the rollout reported)."""
        a = self.args
        metrics = {**(rollout_metrics or {}), "response_len": sum(s.response_length for s in samples) / len(samples)}
        if a.loss_type != "sft_loss":  # SFT samples have no reward
            metrics["reward"] = sum(s.get_reward_value(a) for s in samples) / len(samples)
        failed = sum("reward_error" in s.metadata for s in samples)
        if failed:
            first = next(s.metadata["reward_error"] for s in samples if "reward_error" in s.metadata)
            self.log.note(f"rollout {rollout_id}: {failed} reward(s) failed and count as 0; first: {first}")
        if self.engines:
            self.engines.sweep()
        from slime.rewards.hub import reward_source

        bad_rewards = reward_problem(reward_source(a), samples, a)
        if bad_rewards and not a.skip_non_finite_rewards:
            raise NonFinite(f"rollout {rollout_id}: {bad_rewards}; the run stops before training on them "
                            "(--skip-non-finite-rewards skips such a rollout instead)")
        if bad_rewards:
            self.log.note(f"rollout {rollout_id} not trained on (--skip-non-finite-rewards): {bad_rewards}")
            return
        if self.actor:
            if self.engines and a.offload_rollout:
                self.engines.release()
            if self.engines and a.offload_train:
                self._on_engine_gpus("onload")
            with self.log.phase("train"):
                metrics.update(self._train(rollout_id, samples))
            diverged = metrics_problem(metrics)
            if diverged:
                raise NonFinite(f"rollout {rollout_id}: training diverged ({diverged}); nothing of this rollout "
                                "was saved or sent to the engines: resume from the last checkpoint with a "
                                "lower --lr or a --clip-grad")
            last = rollout_id + 1 == a.num_rollout
            if a.save and a.save_interval and ((rollout_id + 1) % a.save_interval == 0 or last):
                with self.log.phase("save"):
                    self._save(rollout_id)
            if self.engines:
                if a.offload_train:
                    self._on_engine_gpus("offload")
                if a.offload_rollout:
                    self.engines.resume(["weights"])  # as slime: weights back, new ones in, then the KV cache
                if (rollout_id + 1) % a.update_weights_interval == 0:
                    if before_push is not None:
                        with self.log.phase("wait"):
                            before_push()
                    with self.log.phase("sync"):
                        self.weight_version += 1
                        self._push_weights()
                if a.offload_rollout:
                    self.engines.resume(["kv_cache"])
        if self.engines and self.eval_sets and a.eval_interval and (rollout_id + 1) % a.eval_interval == 0:
            with self.log.phase("eval"):
                metrics.update(self._evaluate(rollout_id))
        self.log.rollout(rollout_id, metrics)

    def _evaluate(self, rollout_id: int) -> dict:
        """Mean reward per evaluation dataset, from --eval-function-path (by default the rollout function)
        called with ``evaluation=True``; a rollout function that takes no ``evaluation`` leaves it to the
        default one."""
        from slime.rollout.plugins import call_rollout, eval_results, takes_evaluation
        from slime.utils.functions import DEFAULT_ROLLOUT_FUNCTION, load_function

        path = self.args.eval_function_path or self.args.rollout_function_path
        function = load_function(path)
        if not takes_evaluation(function):
            path, function = DEFAULT_ROLLOUT_FUNCTION, load_function(DEFAULT_ROLLOUT_FUNCTION)
        data, extra = eval_results(call_rollout(function, self.args, rollout_id, self.rollout_context(),
                                                evaluation=True), path)
        results = {name: sum(d["rewards"]) / max(1, len(d["rewards"])) for name, d in data.items()}
        self.log.note("eval " + ", ".join(f"{name} {value:.4f}" for name, value in results.items()))
        return {**{f"eval/{name}": value for name, value in results.items()}, **extra}


def _report(err: Exception, entry_point: str) -> int:
    """A failure's own message, without a traceback, for the errors a run is expected to meet; others raise."""
    import ray

    from slime.rewards.hub import RewardFailure
    from slime.rollout.client import EngineError

    if isinstance(err, (EngineError, RewardFailure, NonFinite, NotImplementedError, Stopped, FileNotFoundError,
                        ValueError, CheckpointFailed)):
        # Raised in an actor (a train rank's missing checkpoint, say): its own message, not the actor's traceback.
        cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) else None
        print(f"{entry_point}: {cause or err}", flush=True)
        return 1
    if isinstance(err, ray.exceptions.RayActorError):
        print(f"{entry_point}: a Ray actor of the run died: {str(err).splitlines()[0]}", flush=True)
        return 1
    raise err


def run(args: argparse.Namespace, argv: list[str], args_file: str | None = None, started: float | None = None,
        entry_point: str = "train.py") -> int:
    """Train; every ending, an error included, shuts Ray down. Returns the exit status. ``args_file``:
    the text of the run's args file, which every checkpoint keeps beside its run record; ``started``:
    time.time() when the process started, for the start-up summary."""
    import ray

    complete = complete_run_note(args)
    if complete:
        RunLog.note(complete)
        return 0
    previous = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(args, argv, args_file, started, entry_point)
    try:
        connect_ray(args)
        signal.signal(signal.SIGTERM, _on_sigterm)  # after ray.init, which installs its own handler
        trainer.run(one_step_off_policy=entry_point == "train_async.py")
        return 0
    except Stopped as err:
        return _report(err, entry_point)
    except Exception as err:
        try:
            lost = trainer.host_loss(err)  # a host of the run gone explains the error better than the error
        except Exception:  # the cluster itself is gone (its head host, say): the error as it is
            lost = None
        if lost:
            print(f"{entry_point}: {lost}", flush=True)
            return 1
        return _report(err, entry_point)
    finally:
        if trainer.engines is not None:
            trainer.engines.shutdown()
        if trainer.own_disk_dir:
            import shutil

            shutil.rmtree(trainer.own_disk_dir, ignore_errors=True)
        trainer.log.close()
        signal.signal(signal.SIGTERM, previous)
        if ray.is_initialized():
            ray.shutdown()
