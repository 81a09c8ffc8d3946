"""The CPU training backend: a transformers model trained with plain torch, one Ray actor per
data-parallel rank, gradients summed over ranks with gloo. The actor role trains the policy; the
critic role trains a value head on the same architecture (PPO).

Each rank receives its share of a rollout, split into the rollout's optimizer steps; the loss of a
step is normalized by the step's token (or sample) count over all ranks, so summing gradients over
ranks gives the gradient of the global batch's mean.
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.distributed as dist

from slime.algorithms.log_probs import token_log_probs
from slime.algorithms.micro_batch import MicroBatch, actor_loss, critic_loss
from slime.backends.base import Layout, TrainBackend
from slime.backends.schedule import schedule, set_weight_decay, torch_scheduler, total_optimizer_steps, weight_decay_at
from slime.utils.checkpoint import iteration_dir, latest_rollout_id
from slime.arguments.validation import uses_reference_model


class ValueModel(torch.nn.Module):
    """A causal LM's backbone with a scalar head: one value per position."""

    def __init__(self, hf_checkpoint: str, trust_remote_code: bool = False):
        super().__init__()
        from transformers import AutoModel

        self.backbone = AutoModel.from_pretrained(hf_checkpoint, dtype=torch.float32,
                                                  trust_remote_code=trust_remote_code)
        self.value_head = torch.nn.Linear(self.backbone.config.hidden_size, 1)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask):
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.value_head(hidden).squeeze(-1)


class TorchTrainBackend(TrainBackend):
    def __init__(self, args: argparse.Namespace, role: str):
        torch.set_num_threads(1)
        self.args, self.role = args, role
        self.rank, self.world_size = 0, 1
        self.device = torch.device("cpu")
        self._loaded = None

    # -- setup ---------------------------------------------------------------------------------
    def init(self, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        from transformers import AutoModelForCausalLM

        a = self.args
        self.rank, self.world_size = rank, world_size
        torch.manual_seed(a.seed + rank)
        if world_size > 1:
            dist.init_process_group("gloo", init_method=f"tcp://{master_addr}:{master_port}", rank=rank,
                                    world_size=world_size)
        remote = a.sglang_trust_remote_code  # a checkpoint's own code runs only when asked for, as in the engines
        if self.role == "critic":
            self.model = ValueModel(a.hf_checkpoint, remote)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(a.hf_checkpoint, dtype=torch.float32,
                                                              trust_remote_code=remote)
        self.reference = None
        if self.role == "actor" and uses_reference_model(a):
            self.reference = AutoModelForCausalLM.from_pretrained(a.ref_load or a.hf_checkpoint, dtype=torch.float32,
                                                                  trust_remote_code=remote).eval()
        self.schedule = schedule(a, total_optimizer_steps(a))  # megatron-core's, as the megatron backend's
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=a.lr, betas=(a.adam_beta1, a.adam_beta2),
                                           eps=a.adam_eps, weight_decay=weight_decay_at(self.schedule, 0))
        self.scheduler = torch_scheduler(self.optimizer, self.schedule)
        if a.load and latest_rollout_id(a.load) is not None:
            self._load(a.load)

    def loaded_rollout_id(self) -> int | None:
        return self._loaded

    def layout(self) -> Layout:
        return Layout(rank=self.rank, world_size=self.world_size, dp_rank=self.rank, dp_size=self.world_size)

    # -- forward passes ------------------------------------------------------------------------
    @staticmethod
    def _pad(batch: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        sequences = [s["prompt_tokens"] + s["response_tokens"] for s in batch]
        width = max(map(len, sequences))
        ids = torch.zeros(len(sequences), width, dtype=torch.long)
        mask = torch.zeros(len(sequences), width, dtype=torch.long)
        for i, seq in enumerate(sequences):
            ids[i, :len(seq)] = torch.tensor(seq)
            mask[i, :len(seq)] = 1
        return ids, mask

    @staticmethod
    def _response_positions(batch: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row, column, target token) of every response token of the padded batch, concatenated."""
        lengths = torch.tensor([len(s["response_tokens"]) for s in batch])
        starts = torch.tensor([len(s["prompt_tokens"]) - 1 for s in batch])  # the position predicting token 0
        rows = torch.repeat_interleave(torch.arange(len(batch)), lengths)
        first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        columns = torch.repeat_interleave(starts, lengths) + torch.arange(int(lengths.sum())) - first
        targets = torch.tensor([t for s in batch for t in s["response_tokens"]], dtype=torch.long)
        return rows, columns, targets

    def _token_log_probs(self, model, batch: list[dict], with_entropy: bool = False):
        """Flat log-probs of every response token of ``batch`` (and the entropies at those positions), at the
        rollout temperature: the distribution the engine sampled from."""
        ids, mask = self._pad(batch)
        rows, columns, targets = self._response_positions(batch)
        logits = model(input_ids=ids, attention_mask=mask).logits[rows, columns]
        return token_log_probs(logits, targets, temperature=self.args.rollout_temperature, with_entropy=with_entropy)

    @staticmethod
    def _split(flat: torch.Tensor, batch: list[dict]) -> list[list[float]]:
        return [part.tolist() for part in torch.split(flat, [len(s["response_tokens"]) for s in batch])]

    @torch.no_grad()
    def compute_log_probs(self, batch: list[dict], reference: bool = False) -> list[list[float]]:
        model = self.reference if reference else self.model
        if model is None:
            raise ValueError("no reference model: only a KL of nonzero weight (--kl-coef, --kl-loss-coef) loads one")
        log_probs, _ = self._token_log_probs(model, batch)
        return self._split(log_probs, batch)

    def update_reference(self) -> None:
        if self.reference is None:
            raise ValueError("no reference model to update: only a KL of nonzero weight (--kl-coef, --kl-loss-coef) "
                             "loads one")
        self.reference.load_state_dict(self.model.state_dict())

    def _values(self, batch: list[dict]) -> torch.Tensor:
        ids, mask = self._pad(batch)
        rows, columns, _ = self._response_positions(batch)
        return self.model(ids, mask)[rows, columns]

    @torch.no_grad()
    def compute_values(self, batch: list[dict]) -> list[list[float]]:
        return self._split(self._values(batch), batch)

    # -- training ------------------------------------------------------------------------------
    def _actor_loss(self, micro: list[dict], total_tokens: float, total_samples: int):
        log_probs, entropy = self._token_log_probs(self.model, micro, with_entropy=True)
        return actor_loss(self.args, log_probs, entropy, MicroBatch.from_dicts(micro), total_tokens, total_samples)

    def _critic_loss(self, micro: list[dict], total_tokens: float, total_samples: int):
        return critic_loss(self.args, self._values(micro), MicroBatch.from_dicts(micro), total_tokens, total_samples)

    def train(self, batch: list[dict], step_sizes: list[int], global_tokens: list[int]) -> dict:
        a = self.args
        loss_fn = self._critic_loss if self.role == "critic" else self._actor_loss
        micro_size = a.micro_batch_size or 1
        totals: dict[str, float] = {}
        start = 0
        self.model.train()
        for size, tokens in zip(step_sizes, global_tokens):
            step, start = batch[start:start + size], start + size
            self.optimizer.zero_grad()
            step_loss = 0.0
            for i in range(0, len(step), micro_size):
                loss, metrics = loss_fn(step[i:i + micro_size], float(tokens), size * self.world_size)
                loss.backward()
                step_loss += float(loss.detach())
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value / max(1, math.ceil(len(step) / micro_size))
            if self.world_size > 1:
                for p in self.model.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                losses = torch.tensor([step_loss])
                dist.all_reduce(losses)
                step_loss = float(losses)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.clip_grad)
            self.optimizer.step()
            self.scheduler.step()
            set_weight_decay(self.optimizer, self.schedule, self.scheduler.last_epoch)
            totals["loss"] = totals.get("loss", 0.0) + step_loss
            totals["grad_norm"] = totals.get("grad_norm", 0.0) + float(grad_norm)
        steps = max(1, len(step_sizes))
        result = {f"{self.role}/{key}": value / steps for key, value in totals.items()}
        result[f"{self.role}/lr"] = self.scheduler.get_last_lr()[0]
        return result

    # -- checkpoints and weights ----------------------------------------------------------------
    def non_finite_parameters(self) -> str | None:
        from slime.utils.non_finite import parameters_problem

        return parameters_problem(self.model.named_parameters())  # data parallel: the same on every rank

    def save(self, directory: str, rollout_id: int) -> None:
        if self.rank != 0:
            return
        target = iteration_dir(directory, rollout_id)
        target.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), target / "model.pt")
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                   target / "optimizer.pt")

    def _load(self, directory: str) -> None:
        rollout_id = latest_rollout_id(directory)
        source = iteration_dir(directory, rollout_id)
        if not (source / "model.pt").exists():
            raise FileNotFoundError(f"{source}/model.pt: the checkpoint of rollout {rollout_id} has no {self.role}")
        self.model.load_state_dict(torch.load(source / "model.pt", weights_only=True))
        if self.args.finetune:  # its weights only: the run starts afresh at rollout 0
            return
        if not self.args.no_load_optim:
            state = torch.load(source / "optimizer.pt", weights_only=True)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_weight_decay(self.optimizer, self.schedule, self.scheduler.last_epoch)
        self._loaded = rollout_id

    def holds_full_weights(self) -> bool:
        return self.rank == 0  # every rank holds a replica: the first one sends

    def offload(self) -> None:
        self._move("cpu")

    def onload(self) -> None:
        self._move(self.device)

    def _move(self, device) -> None:
        """Model and optimizer state to ``device``; a no-op on a CPU-only run."""
        if str(device) == str(next(self.model.parameters()).device):
            return
        self.model.to(device)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value):
                    state[key] = value.to(device)

    def export_weights(self) -> dict:
        return {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}

    def state_fingerprint(self) -> dict:
        """Model and optimizer state as plain tensors, to compare a resumed run with the saved one."""
        return {"model": self.export_weights(), "optimizer": self.optimizer.state_dict()}

