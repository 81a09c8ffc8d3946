"""--offload-train on the megatron backend: the model's parameters, its gradient buffers and the
optimizer's state leave the accelerator while the colocated engines generate, and come back before
training.

Two ways, the first as slime does it:

- **torch_memory_saver** (an SGLang dependency), on a GPU where it is installed: the model is
  allocated inside its region tagged ``model``, megatron's DDP buffers and the optimizer (its state
  is created at the first step, so the step runs inside the region too) inside ``optimizer``, both
  with a CPU backup. ``pause`` hands the GPU memory back and keeps the contents on the host;
  ``resume`` maps memory at the same addresses and copies them back, so every tensor stays valid.
  Without an ``LD_PRELOAD`` of its hook (which slime sets on its train actors), its ``torch`` hook
  mode (a pluggable CUDA allocator) is used.
- **storage copies** otherwise (no torch_memory_saver, or no GPU): each storage of the training
  state — parameters and buffers, DDP's parameter buffers, the optimizer's parameters (fp32 main
  copies under bf16) and state — is copied into host memory (pinned on a GPU) and its device
  storage resized to nothing; gradient buffers are freed without a copy (each step zeroes them). The
  tensors keep their identity, their views stay views (parameters and ``main_grad`` inside DDP's
  buffers), so nothing that refers to them changes; onloading resizes each storage and copies its
  bytes back. On a CPU-only machine the same path runs, host to host, which is how the tests prove
  it.

While offloaded, the weights can still be pushed to the engines (slime's trainer pushes after
offloading): ``parameters_present`` brings back the parameters alone for the push.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os

import torch

MODEL, OPTIMIZER = "model", "optimizer"


def memory_saver():
    """torch_memory_saver's singleton where it can run (a GPU, the package installed), else None."""
    if not torch.cuda.is_available() or importlib.util.find_spec("torch_memory_saver") is None:
        return None
    from torch_memory_saver import torch_memory_saver as saver

    if "torch_memory_saver" not in os.environ.get("LD_PRELOAD", "") and getattr(saver, "_impl", None) is None:
        saver.hook_mode = "torch"  # no preloaded hook: its pluggable allocator (only before its first use)
    return saver


def _whole(storage: torch.UntypedStorage, nbytes: int) -> torch.Tensor:
    """The bytes of ``storage`` as one uint8 tensor."""
    return torch.empty(0, dtype=torch.uint8, device=storage.device).set_(storage, 0, (nbytes,), (1,))


class _Storages:
    """Device storages freed into host copies (or just freed) and restored, by storage."""

    def __init__(self):
        self.saved: dict[int, tuple[torch.UntypedStorage, int, torch.Tensor | None]] = {}

    def free(self, tensors, keep: bool) -> None:
        pinned = torch.cuda.is_available()
        for tensor in tensors:
            if tensor is None or (pinned and tensor.device.type == "cpu"):
                continue  # already off the GPU
            storage = tensor.untyped_storage()
            nbytes = storage.nbytes()
            if nbytes == 0 or storage.data_ptr() in self.saved:
                continue
            backup = None
            if keep:
                backup = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
                backup.copy_(_whole(storage, nbytes))
            self.saved[storage.data_ptr()] = (storage, nbytes, backup)
            storage.resize_(0)

    def restore(self) -> None:
        for storage, nbytes, backup in self.saved.values():
            storage.resize_(nbytes)
            whole = _whole(storage, nbytes)
            if backup is None:
                whole.zero_()
            else:
                whole.copy_(backup)
        self.saved = {}


class TrainMemory:
    """The offloading of one rank's model (megatron's DDP wrapper) and optimizer."""

    def __init__(self, enabled: bool):
        self.saver = memory_saver() if enabled else None
        self.offloaded = False
        self.model = self.optimizer = None
        self._state = _Storages()
        self._parameters = _Storages()

    @property
    def method(self) -> str:
        return "torch_memory_saver" if self.saver is not None else "storage copies"

    def region(self, tag: str):
        """Allocations that torch_memory_saver will pause under ``tag`` (nothing without it)."""
        if self.saver is None:
            return contextlib.nullcontext()
        return self.saver.region(tag=tag, enable_cpu_backup=True)

    def track(self, model, optimizer) -> None:
        self.model, self.optimizer = model, optimizer

    # -- what is moved ---------------------------------------------------------------------------
    def _parameter_tensors(self) -> list[torch.Tensor]:
        module = self.model.module
        tensors = [p.data for p in module.parameters()] + list(module.buffers())
        return tensors + [b.param_data for b in self._ddp_buffers() if b.param_data is not None]

    def _ddp_buffers(self) -> list:
        return list(self.model.buffers) + list(self.model.expert_parallel_buffers)

    def _optimizers(self) -> list:
        return [opt.optimizer for opt in getattr(self.optimizer, "chained_optimizers", [self.optimizer])
                if getattr(opt, "optimizer", None) is not None]

    def _optimizer_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(kept: the optimizer's own parameters and state, dropped: their gradients)."""
        kept, dropped = [], []
        for inner in self._optimizers():
            for group in inner.param_groups:
                for param in group["params"]:
                    kept.append(param.data)
                    dropped.append(param.grad)
            for state in inner.state.values():
                kept += [value for value in state.values() if torch.is_tensor(value)]
        return kept, dropped

    def _gradients(self) -> list[torch.Tensor]:
        grads = [b.grad_data for b in self._ddp_buffers() if b.grad_data is not None]
        return grads + [p.grad for p in self.model.module.parameters()]

    # -- moving --------------------------------------------------------------------------------
    def _free_parameters(self) -> None:
        if self.saver is not None:
            torch.cuda.synchronize()
            self.saver.pause(MODEL)
        else:
            self._parameters.free(self._parameter_tensors(), keep=True)

    def _restore_parameters(self) -> None:
        if self.saver is not None:
            self.saver.resume(MODEL)
        else:
            self._parameters.restore()

    def offload(self) -> None:
        if self.offloaded:
            return
        # the parameters first, apart: a push while offloaded brings them back alone (and the optimizer's
        # parameters, the model's own without bf16 main copies, stay with them)
        self._free_parameters()
        if self.saver is not None:
            self.saver.pause(OPTIMIZER)
        else:
            kept, dropped = self._optimizer_tensors()
            self._state.free(kept, keep=True)
            self._state.free(self._gradients() + dropped, keep=False)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.offloaded = True

    def onload(self) -> None:
        if not self.offloaded:
            return
        self._restore_parameters()
        if self.saver is not None:
            self.saver.resume(OPTIMIZER)
        else:
            self._state.restore()
        self.offloaded = False

    @contextlib.contextmanager
    def parameters_present(self):
        """The parameters on the device for a while (a weight push), the rest left where it is."""
        if not self.offloaded:
            yield
            return
        self._restore_parameters()
        try:
            yield
        finally:
            self._free_parameters()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
