"""The megatron-core model of a role: its layer spec, the ``GPTModel`` of this pipeline stage, and the
critic's value head.

The spec comes from ``--spec MODULE FUNCTION`` when given (called as ``FUNCTION(args, config,
vp_stage)``, slime's plugin convention), else from megatron-core: the transformer-engine spec for
``--transformer-impl transformer_engine``, the local spec (pure megatron-core modules, what runs on
CPU) for ``local``, with torch's SDPA as its core attention (``sdpa_attention``); MoE models get
megatron's per-layer decoder block spec (dense and expert layers by ``--moe-layer-freq``).
"""

from __future__ import annotations

import argparse
import functools
import importlib

import torch

from slime.backends.megatron.config import gpt_model_kwargs


def layer_spec(args: argparse.Namespace, config, vp_stage: int | None = None, pp_rank: int | None = None):
    """The layer spec of this rank's pipeline stage (``pp_rank`` when megatron's parallel state is
    not initialised, as in ``tools/check_config.py``)."""
    from megatron.core.models.gpt import gpt_layer_specs as specs

    if args.spec:
        module_name, function_name = args.spec
        try:
            build = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"--spec {module_name} {function_name}: {err}") from None
        return build(args, config, vp_stage)
    use_te = args.transformer_impl == "transformer_engine"
    if args.num_experts:
        spec = specs.get_gpt_decoder_block_spec(config, use_transformer_engine=use_te,
                                                normalization=args.normalization, vp_stage=vp_stage, pp_rank=pp_rank)
    elif use_te:
        spec = specs.get_gpt_layer_with_transformer_engine_spec(
            qk_layernorm=args.qk_layernorm, multi_latent_attention=args.multi_latent_attention)
    else:
        spec = specs.get_gpt_layer_local_spec(qk_layernorm=args.qk_layernorm,
                                              multi_latent_attention=args.multi_latent_attention,
                                              normalization=args.normalization)
    if not use_te:
        from slime.backends.megatron.sdpa_attention import sdpa_core_attention

        core = _mla_core_attention() if args.multi_latent_attention else sdpa_core_attention()
        for layer in getattr(spec, "layer_specs", [spec]):
            layer.submodules.self_attention.submodules.core_attention = core
    return spec


@functools.cache
def _mla_core_attention():
    from megatron.core.transformer.dot_product_attention import DotProductAttention

    class MLACoreAttention(DotProductAttention):
        """megatron's unfused attention with MLA's head sizes: keys of ``k_channels`` (the no-RoPE and
        RoPE parts), values of ``v_channels``. megatron-core 0.16's local MLA spec passes those
        sizes to ``DotProductAttention``, which does not take them."""

        def __init__(self, config, layer_number, attn_mask_type, attention_type, attention_dropout=None,
                     softmax_scale=None, k_channels=None, v_channels=None, cp_comm_type=None, pg_collection=None):
            super().__init__(config, layer_number, attn_mask_type, attention_type, attention_dropout=attention_dropout,
                             softmax_scale=softmax_scale, cp_comm_type=cp_comm_type, pg_collection=pg_collection)
            if v_channels is not None:
                self.hidden_size_per_attention_head = v_channels
                self.hidden_size_per_partition = v_channels * self.num_attention_heads_per_partition

    return MLACoreAttention


class ValueHead(torch.nn.Module):
    """The critic's output layer: one value per position, in place of the vocabulary projection.

    Its parameters are named as the LM head's (``output_layer.weight``, ``.bias``), which megatron's
    checkpointing expects of a language model. Replicated on every tensor-parallel rank (the hidden
    states it reads are whole there); with sequence parallel they are first gathered along the
    sequence, as the LM head does.
    """

    def __init__(self, hidden_size: int, sequence_parallel: bool):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, hidden_size))
        self.bias = torch.nn.Parameter(torch.zeros(1))
        self.sequence_parallel = sequence_parallel

    def forward(self, hidden_states, weight=None, runtime_gather_output=None):
        if self.sequence_parallel:
            from megatron.core.tensor_parallel import gather_from_sequence_parallel_region

            hidden_states = gather_from_sequence_parallel_region(hidden_states, tensor_parallel_output_grad=False)
        return torch.nn.functional.linear(hidden_states, self.weight, self.bias), None


def build_model(args: argparse.Namespace, config, role: str):
    """The ``GPTModel`` of this rank's pipeline stage (fp32 or the config's dtype), a value model for
    the critic."""
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel

    kwargs = gpt_model_kwargs(args)
    if role == "critic":
        kwargs["share_embeddings_and_output_weights"] = False
    model = GPTModel(config, layer_spec(args, config), pre_process=parallel_state.is_pipeline_first_stage(),
                     post_process=parallel_state.is_pipeline_last_stage(), parallel_output=True, **kwargs)
    if role == "critic" and model.post_process:
        model.output_layer = ValueHead(config.hidden_size, config.sequence_parallel)
    return model.to(config.params_dtype)
