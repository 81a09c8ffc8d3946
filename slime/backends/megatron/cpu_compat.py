"""megatron-core on a machine without CUDA: what megatron hard-codes for CUDA, mapped onto the CPU.

Active only when CUDA is absent (``install()`` does nothing on a GPU machine). Each mapping and why:

- ``torch.cuda.current_device()`` → ``"cpu"``: rotary embeddings, attention and the tensor-parallel
  gathers allocate on "the current device" (``models/common/embeddings``, ``tensor_parallel/``).
- ``torch.cuda.manual_seed`` / ``get_rng_state`` / ``set_rng_state`` and megatron's own
  ``_get_cuda_rng_state`` / ``_set_cuda_rng_state`` → the CPU generator: the model-parallel RNG tracker
  (``tensor_parallel/random.py``) forks "CUDA" RNG states for dropout and initialisation. On CPU the
  tracker's states and the default generator are one generator, as on a GPU the CUDA ones are.
- ``torch.cuda.synchronize()`` → nothing: dist_checkpointing's writer and DDP call it; CPU ops are
  synchronous.
- ``cuda_as_cpu()``, a ``TorchFunctionMode`` for the optimizer's construction, step and state loading
  only: megatron's optimizer creates tensors with ``device='cuda'``, calls ``Tensor.cuda()`` and checks
  ``Tensor.type() == 'torch.cuda.FloatTensor'`` (``optimizer/optimizer.py``, ``optimizer/clip_grads.py``).
  The mode maps those devices onto the CPU and reports CPU tensors by their CUDA type names. It is
  on for megatron's schedule too (its token counters are made on "cuda"), but not for the model's
  forward and the loss inside it (``outside_cuda_as_cpu``), where it would only cost time.

And two fixes where transformer-engine is absent (as on every CPU machine), for megatron-core 0.16.1:
its MoE router calls ``te_general_gemm`` if it "is not None" but never defines the name when the TE
import fails (``transformer/moe/moe_utils.py``): defined as None there; and its multi-latent attention
believes TE is present, because ``extensions/transformer_engine.py`` stands mock classes in for TE's,
then ``isinstance`` fails on them (``transformer/multi_latent_attention.py``): its ``HAVE_TE`` is set
to False.

Off on CPU, and refused by ``slime.backends.megatron.config`` with a message: rope fusion (needs
transformer-engine), gradient-accumulation fusion (Apex), persist_layer_norm, sequence parallel, the
transformer-engine layer spec, bf16/fp16, the distributed optimizer (its resume needs TE or Apex).
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings

import torch
from torch.overrides import TorchFunctionMode

_installed = False


def cuda_missing() -> bool:
    return not torch.cuda.is_available()


def _cpu_device(device):
    if device is None:
        return None
    if isinstance(device, int) or (isinstance(device, str) and device.startswith("cuda")):
        return torch.device("cpu")
    if isinstance(device, torch.device) and device.type == "cuda":
        return torch.device("cpu")
    return device


class _CudaAsCpu(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            name = func(*args)
            return name.replace("torch.", "torch.cuda.", 1) if not name.startswith("torch.cuda.") else name
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        if func is torch.Tensor.to and len(args) > 1 and not isinstance(args[1], torch.dtype | torch.Tensor):
            args = (args[0], _cpu_device(args[1]), *args[2:])
        return func(*args, **kwargs)


@contextlib.contextmanager
def cuda_as_cpu():
    """Megatron's optimizer code on CPU tensors (a no-op context where CUDA is present)."""
    if not cuda_missing():
        yield
        return
    with _CudaAsCpu():
        yield


@contextlib.contextmanager
def outside_cuda_as_cpu():
    """The model's forward and loss without ``cuda_as_cpu``'s mode, inside megatron's schedule (which
    needs it for its own CUDA tensors): the mode would add a Python call to every op of the forward."""
    from torch.overrides import _get_current_function_mode_stack, _pop_mode_temporarily

    stack = _get_current_function_mode_stack()
    if not stack or not isinstance(stack[-1], _CudaAsCpu):
        yield
        return
    with _pop_mode_temporarily():
        yield


def install() -> None:
    """Map megatron's CUDA calls onto the CPU, once per process; nothing on a machine with CUDA."""
    global _installed
    if _installed or not cuda_missing():
        return
    # megatron warns at import, on every rank, about what a CPU never has (transformer-engine, Apex);
    # config.unsupported_here names what that rules out, once
    for expected in ("Transformer Engine and Apex are not installed", "Apex is not installed",
                     "full scope is deprecated"):
        warnings.filterwarnings("ignore", message=expected)
    from megatron.core.tensor_parallel import random as megatron_random

    if importlib.util.find_spec("transformer_engine") is None:
        from megatron.core.transformer import multi_latent_attention
        from megatron.core.transformer.moe import moe_utils

        moe_utils.te_general_gemm = getattr(moe_utils, "te_general_gemm", None)
        multi_latent_attention.HAVE_TE = False

    torch.cuda.current_device = lambda: "cpu"
    torch.cuda.synchronize = lambda device=None: None
    torch.cuda.manual_seed = lambda seed: torch.default_generator.manual_seed(int(seed))
    torch.cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()
    torch.cuda.set_rng_state = lambda state, device="cuda": torch.set_rng_state(state)
    torch.cuda.random.get_rng_state = torch.cuda.get_rng_state
    megatron_random._get_cuda_rng_state = lambda device="cuda", clone=False, graph_safe=False: torch.get_rng_state()
    megatron_random._set_cuda_rng_state = lambda state, device=-1, graph_safe=False: torch.set_rng_state(state)
    _installed = True
