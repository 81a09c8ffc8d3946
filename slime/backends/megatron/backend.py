"""The megatron-core train backend: one Ray actor per GPU (per CPU process on a laptop) of a role.

init: the role's process group and megatron's parallel state → the model of this rank's pipeline
stage (``model.py``) in megatron's DDP → megatron's optimizer and ``OptimizerParamScheduler`` →
weights: the latest checkpoint of --load (model, optimizer, scheduler, RNG, rollout id), else
--ref-load (a torch_dist folder or an HF folder), else --hf-checkpoint. The actor keeps the reference
model (for KL) as a CPU copy of its own shards, swapped in for the reference forward.

Forward and backward go through megatron's own schedules (``get_forward_backward_func``: no
pipelining, or 1F1B across pipeline stages). Log-probs and entropies come from the tensor-parallel
logits (``log_probs.py``); the losses are ``slime.algorithms.micro_batch``'s. Each loss function
returns its micro-batch's sum with its token (or sample) count, and megatron scales the gradients by
one over the step's total count across data-parallel ranks: the global batch's mean.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
from functools import partial

import torch
import torch.distributed as dist

from slime.algorithms.micro_batch import MicroBatch, actor_loss, critic_loss
from slime.backends.base import Layout, TrainBackend
from slime.backends.megatron import batches, checkpoint, config as megatron_config, cpu_compat, offload, parallel
from slime.backends.megatron.log_probs import vocab_parallel_log_probs
from slime.backends.megatron.offload import TrainMemory
from slime.backends.megatron.weights import ModelWeights
from slime.utils.checkpoint import latest_rollout_id
from slime.utils.hf_checkpoint import is_hf_checkpoint
from slime.arguments.validation import uses_reference_model
from slime.arguments.topology import Topology
from slime.backends.schedule import schedule, total_optimizer_steps


def loss_outside_mode(compute, micro, output):
    """``compute(micro, output)``: the micro-batch's loss, which megatron's schedule calls inside
    ``cuda_as_cpu``, computed outside it."""
    with cpu_compat.outside_cuda_as_cpu():
        return compute(micro, output)


class MegatronTrainBackend(TrainBackend):
    def __init__(self, args: argparse.Namespace, role: str):
        self.args, self.role = megatron_config.with_slime_defaults(args), role
        self._loaded: int | None = None
        self._layout: Layout | None = None
        self.reference_weights: dict[str, torch.Tensor] | None = None

    # -- setup ---------------------------------------------------------------------------------
    def init(self, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        from megatron.core.distributed import DistributedDataParallel, finalize_model_grads
        from megatron.core.optimizer import get_megatron_optimizer
        from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

        from slime.backends.megatron.model import build_model
        from slime.backends.megatron.parallel import init_distributed

        a = self.args
        cpu_compat.install()
        from megatron.core.config import set_experimental_flag

        set_experimental_flag(bool(a.enable_megatron_core_experimental))  # --enable-experimental
        problems = megatron_config.unsupported_here(a)
        if problems:
            raise ValueError("the megatron backend cannot run this configuration here:\n" +
                             "\n".join(f"  {message}" for message, _ in problems))
        torch.set_num_threads(1)
        self.topology = Topology.of(a, self.role, world=world_size)
        self._layout = init_distributed(a, self.topology, rank, master_addr, master_port)
        self.config = megatron_config.transformer_config(a)
        self.config.finalize_model_grads_func = finalize_model_grads
        self.memory = TrainMemory(enabled=bool(a.offload_train))
        with self.memory.region(offload.MODEL):
            model = build_model(a, self.config, self.role)
            self.model = DistributedDataParallel(self.config, megatron_config.ddp_config(a), module=model)
        with self.memory.region(offload.OPTIMIZER), cpu_compat.cuda_as_cpu():
            self.optimizer = get_megatron_optimizer(megatron_config.optimizer_config(a), [self.model])
        self.memory.track(self.model, self.optimizer)
        # what Megatron-LM's training loop wires: loss scaling, and the hooks of overlapped reductions
        self.config.grad_scale_func = self.optimizer.scale_loss
        if self.model.ddp_config.overlap_grad_reduce:
            self.config.no_sync_func, self.config.grad_sync_func = self.model.no_sync, self.model.start_grad_sync
        if self.model.ddp_config.overlap_param_gather:
            self.config.param_sync_func = self.model.start_param_sync
        steps = schedule(a, total_optimizer_steps(a))
        self.scheduler = OptimizerParamScheduler(self.optimizer, **dataclasses.asdict(steps))
        self.weights = ModelWeights(model, self.config, a, self.role)
        self._load_weights()

    def layout(self) -> Layout:
        return self._layout

    def loaded_rollout_id(self) -> int | None:
        return self._loaded

    @property
    def module(self):
        """The GPTModel inside megatron's DDP wrapper."""
        return self.model.module

    def _load_weights(self) -> None:
        """slime's order: the latest checkpoint of --load resumes everything; without one the role starts
        from a release in --load, else from --ref-load, else from --hf-checkpoint. The actor's reference
        model is --ref-load (or the HF checkpoint)."""
        a = self.args
        initial = a.ref_load or a.hf_checkpoint
        started = False
        if self.role == "actor" and uses_reference_model(a):
            self._load_initial(initial)
            self.reference_weights, started = self._snapshot(), True
        if latest_rollout_id(a.load) is not None and a.finetune:  # its weights only, the run starts afresh
            checkpoint.load(a.load, self.module)
        elif latest_rollout_id(a.load) is not None:
            with cpu_compat.cuda_as_cpu():
                self._loaded = checkpoint.load(a.load, self.module, None if a.no_load_optim else self.optimizer,
                                               self.scheduler, with_rng=not a.no_load_rng)
        elif checkpoint.is_torch_dist(a.load):
            self._load_initial(a.load)
        elif not started:
            self._load_initial(initial)

    def _load_initial(self, source: str) -> None:
        """Weights only, from a torch_dist folder or an HF folder (the critic keeps its value head)."""
        if checkpoint.is_torch_dist(source):
            # the critic starts from the policy's weights, all but the LM head (its value head stays)
            checkpoint.load(source, self.module, skip=("output_layer.",) if self.role == "critic" else ())
        elif is_hf_checkpoint(source):
            self.load_hf(source)
        else:
            raise FileNotFoundError(f"{source}: neither a torch_dist checkpoint (latest_checkpointed_iteration.txt) "
                                    "nor an HF checkpoint (config.json and safetensors)")

    # -- weights ---------------------------------------------------------------------------------
    def load_hf(self, path: str) -> None:
        self.weights.load_hf(path)

    def hf_weight_buckets(self, bucket_bytes: int):
        """Full HF tensors in buckets, yielded on global rank 0 (empty buckets elsewhere); every rank
        takes part in the gathers. Under --offload-train the parameters come back for the while."""
        with self.memory.parameters_present():
            yield from self.weights.hf_buckets(bucket_bytes)

    def export_weights(self) -> dict:
        """Every full HF tensor at once, as copies (buckets may hold views of the live parameters)."""
        return {name: tensor.clone() for bucket in self.hf_weight_buckets(1 << 62) for name, tensor in bucket}

    # -- forward passes ----------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().to("cpu", copy=True) for name, t in self._state().items()}

    def _state(self) -> dict[str, torch.Tensor]:
        return {name: t for name, t in self.module.state_dict(keep_vars=True).items() if not name.endswith("_extra_state")}

    @contextlib.contextmanager
    def _swapped(self, weights: dict[str, torch.Tensor]):
        """Run with ``weights`` in the model (the reference), then put the trained ones back."""
        state = self._state()
        backup = self._snapshot()
        with torch.no_grad():
            for name, tensor in weights.items():
                state[name].copy_(tensor)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, tensor in backup.items():
                    state[name].copy_(tensor)

    def _lockstep(self) -> tuple[bool, bool]:
        """(whether the data-parallel ranks must run as many micro-batches, and of as many tokens).

        An MoE model's micro-batches run collectives across data-parallel ranks: its token
        dispatcher's (over the expert-parallel group, when experts are spread over data-parallel
        ranks) and its router's load-balancing statistics. megatron's all-gather dispatcher also
        gathers tensors of the same size from every rank of that group."""
        from megatron.core import parallel_state as ps

        a = self.args
        if not a.num_experts or ps.get_data_parallel_world_size() == 1:
            return False, False
        spread = ps.get_expert_tensor_and_model_parallel_world_size() > ps.get_tensor_model_parallel_world_size()
        return True, spread and a.moe_token_dispatcher_type == "allgather"

    def _run(self, samples: list[dict], compute, forward_only: bool) -> list[dict]:
        """Megatron's schedule over the micro-batches of ``samples``; returns what ``compute`` reports
        per micro-batch (on the last pipeline stage), with each micro-batch's sample indices. Where the
        data-parallel ranks run in lockstep (``_lockstep``) they agree on the micro-batches' count and
        shapes first, a rank with fewer running empty ones (``batches.agree``)."""
        from megatron.core import parallel_state as ps
        from megatron.core.pipeline_parallel import get_forward_backward_func

        a = self.args
        if self.memory.offloaded:
            raise RuntimeError("the megatron backend's model is offloaded (--offload-train): onload() it before a "
                               "forward or training step")
        groups = batches.split(samples, a.micro_batch_size, a.max_tokens_per_gpu if a.use_dynamic_batch_size else None)
        device = parallel.device()
        multiple = self.topology.tp if a.sequence_parallel else 1
        shapes = [batches.shape([samples[i] for i in group], multiple) for group in groups]
        same_count, same_shapes = self._lockstep()
        if same_count:
            shapes = batches.agree(shapes, ps.get_data_parallel_group(), same_shapes, device)
        # the groups past this rank's own are empty: padding micro-batches (no sample, zero loss)
        packed = [batches.pack([samples[i] for i in group], device, multiple, size)
                  for group, size in itertools.zip_longest(groups, shapes, fillvalue=[])]

        def forward_step(iterator, model):
            micro = next(iterator)
            with cpu_compat.outside_cuda_as_cpu():
                output = model(micro.input_ids, micro.position_ids, micro.attention_mask)
            return output, partial(loss_outside_mode, compute if micro.samples else self._nothing, micro)

        context = torch.no_grad() if forward_only else contextlib.nullcontext()
        with context, cpu_compat.cuda_as_cpu():
            reports = get_forward_backward_func()(
                forward_step_func=forward_step, data_iterator=iter(packed), model=[self.model],
                num_microbatches=len(packed), seq_length=max(p.input_ids.shape[1] for p in packed),
                micro_batch_size=max(p.input_ids.shape[0] for p in packed), forward_only=forward_only)
        # the padding micro-batches come last: their reports are dropped
        return [dict(report, indices=group) for report, group in zip(reports, groups)]

    @staticmethod
    def _nothing(micro: batches.Packed, output: torch.Tensor):
        """A padding micro-batch's loss: zero, on the graph (its backward runs the same collectives as
        the others'), counting no token."""
        return output.sum() * 0, torch.tensor(0, dtype=torch.int), {}

    def _response_logits(self, micro: batches.Packed, output: torch.Tensor) -> torch.Tensor:
        return output[micro.rows, micro.columns]

    def _log_probs(self, micro: batches.Packed, output: torch.Tensor, with_entropy: bool):
        return vocab_parallel_log_probs(self._response_logits(micro, output), micro.targets,
                                        temperature=self.args.rollout_temperature, vocab_size=self.args.vocab_size,
                                        with_entropy=with_entropy)

    @staticmethod
    def _unflatten(reports: list[dict], key: str, count: int) -> list[list[float]]:
        per_sample: list = [None] * count
        for report in reports:
            lengths = report["lengths"]
            for i, values in zip(report["indices"], torch.split(report[key], lengths)):
                per_sample[i] = values.tolist()
        return per_sample

    def compute_log_probs(self, batch: list[dict], reference: bool = False) -> list[list[float]] | None:
        if reference and self.reference_weights is None:
            raise ValueError("no reference model: only a KL of nonzero weight (--kl-coef, --kl-loss-coef) loads one")

        def compute(micro, output):
            log_probs, _ = self._log_probs(micro, output, with_entropy=False)
            return log_probs.sum() * 0, torch.tensor(0, dtype=torch.int), \
                {"log_probs": log_probs, "lengths": micro.response_lengths}

        self.model.eval()
        with self._swapped(self.reference_weights) if reference else contextlib.nullcontext():
            reports = self._run(batch, compute, forward_only=True)
        return self._unflatten(reports, "log_probs", len(batch)) if self._layout.is_result_rank else None

    def update_reference(self) -> None:
        """The reference becomes a CPU copy of this rank's current shards."""
        if self.reference_weights is None:
            raise ValueError("no reference model to update: only a KL of nonzero weight (--kl-coef, --kl-loss-coef) "
                             "loads one")
        self.reference_weights = self._snapshot()

    def compute_values(self, batch: list[dict]) -> list[list[float]] | None:
        def compute(micro, output):
            values = output[micro.rows, micro.columns, 0].float()
            return values.sum() * 0, torch.tensor(0, dtype=torch.int), \
                {"values": values, "lengths": micro.response_lengths}

        self.model.eval()
        reports = self._run(batch, compute, forward_only=True)
        return self._unflatten(reports, "values", len(batch)) if self._layout.is_result_rank else None

    # -- training ----------------------------------------------------------------------------------
    def _loss(self, micro: batches.Packed, output: torch.Tensor):
        """The micro-batch's summed loss and its count (tokens, or samples): megatron divides the
        gradients by the step's total count."""
        a = self.args
        flat = MicroBatch.from_dicts(micro.samples, device=output.device)
        if self.role == "critic":
            values = output[micro.rows, micro.columns, 0].float()
            loss, metrics = critic_loss(a, values, flat, 1.0, 1)
        else:
            log_probs, entropy = self._log_probs(micro, output, with_entropy=True)
            loss, metrics = actor_loss(a, log_probs, entropy, flat, 1.0, 1)
        tokens = float(flat.loss_mask.sum())
        count = int(tokens) if a.calculate_per_token_loss else len(micro.samples)
        # the metrics are means over the micro-batch's tokens: weighted by them, they add up to the step's
        weighted = {key: value * tokens for key, value in metrics.items()}
        return loss, torch.tensor(count, dtype=torch.int), {"loss": loss.detach(), "count": count, "tokens": tokens,
                                                            **weighted}

    def train(self, batch: list[dict], step_sizes: list[int], global_tokens: list[int]) -> dict:
        totals: dict[str, float] = {}
        start = 0
        self.model.train()
        for size in step_sizes:
            step, start = batch[start:start + size], start + size
            self.model.zero_grad_buffer()
            self.optimizer.zero_grad()
            reports = self._run(step, self._loss, forward_only=False)
            # the optimizer's state is created at its first step: in the region that --offload-train pauses
            with self.memory.region(offload.OPTIMIZER), cpu_compat.cuda_as_cpu():
                _, grad_norm, _ = self.optimizer.step()
            self.scheduler.step(increment=1)
            step_metrics = self._step_metrics(reports)
            step_metrics["grad_norm"] = float(grad_norm or 0.0)
            for key, value in step_metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        steps = max(1, len(step_sizes))
        result = {f"{self.role}/{key}": value / steps for key, value in totals.items()}
        result[f"{self.role}/lr"] = self.optimizer.param_groups[0]["lr"]
        return result

    @staticmethod
    def _step_metrics(reports: list[dict]) -> dict[str, float]:
        """The step's loss (its summed losses over its total count) and every other metric as a mean over
        the step's tokens, across data-parallel ranks (on the last pipeline stage, which has them): the
        same whatever the layout and micro-batches."""
        from megatron.core import parallel_state as ps

        names = sorted({k for r in reports for k in r} - {"loss", "count", "tokens", "indices"})
        if ps.is_pipeline_last_stage() and ps.get_data_parallel_world_size() > 1:
            # a rank without a sample in the step has no metric names of its own
            every = [None] * ps.get_data_parallel_world_size()
            dist.all_gather_object(every, names, group=ps.get_data_parallel_group())
            names = sorted({name for mine in every for name in mine})
        values = torch.tensor([sum(float(r.get(k, 0.0)) for r in reports) for k in ("loss", "count", "tokens", *names)],
                              dtype=torch.float64, device=parallel.device())
        if ps.is_pipeline_last_stage():
            dist.all_reduce(values, group=ps.get_data_parallel_group())
        tokens = float(values[2].clamp(min=1))
        return {"loss": float(values[0] / values[1].clamp(min=1)),
                **{k: float(v) / tokens for k, v in zip(names, values[3:])}}

    # -- memory (colocated with the engines) -------------------------------------------------------
    def offload(self) -> None:
        """--offload-train: parameters, gradient buffers and optimizer state off the accelerator while
        the engines generate (``offload.py``: torch_memory_saver on a GPU where installed, else
        storage copies into host memory)."""
        self.memory.offload()

    def onload(self) -> None:
        self.memory.onload()

    # -- checkpoints -------------------------------------------------------------------------------
    def non_finite_parameters(self) -> str | None:
        """Every rank's answer for its own shards, gathered: all ranks then agree whether to save."""
        from slime.utils.non_finite import parameters_problem

        with cpu_compat.cuda_as_cpu():
            mine = parameters_problem(self._state().items())
            answers = [None] * dist.get_world_size()
            dist.all_gather_object(answers, mine)
        bad = [f"rank {rank}: {answer}" for rank, answer in enumerate(answers) if answer]
        return "; ".join(bad) or None

    def save(self, directory: str, rollout_id: int) -> None:
        with cpu_compat.cuda_as_cpu():
            checkpoint.save(directory, rollout_id, self.module,
                            None if self.args.no_save_optim else self.optimizer, self.scheduler,
                            with_rng=not self.args.no_save_rng)

    def state_fingerprint(self) -> dict:
        """This rank's model shards and optimizer state, to compare a resumed run with the saved one."""
        return {"model": self._snapshot(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def shutdown(self) -> None:
        from slime.backends.megatron.parallel import destroy

        destroy()
