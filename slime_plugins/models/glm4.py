"""GLM-4's layer: megatron's GPT layer with GLM's sandwich norms.

GLM-4 normalises the attention output before the residual add (``post_self_attn_layernorm``) and
the MLP output likewise (``post_mlp_layernorm``), besides the usual pre-norms. Megatron-core's
``TransformerLayer`` has no slot for them, so the spec wraps its attention and MLP modules in
subclasses that apply the norm to their output; everything else (QKV biases, half-rotary interleaved
RoPE, GQA) is megatron's own. ``--spec slime_plugins.models.glm4 get_glm_spec``.
"""

from __future__ import annotations

import argparse
import logging


def with_output_norm(base: type, attribute: str, norm_spec) -> type:
    """``base`` (a module returning ``(output, bias)``) with a norm applied to its output."""
    from megatron.core.transformer.spec_utils import build_module

    class OutputNormed(base):
        def __init__(self, config, *args, **kwargs):
            super().__init__(config, *args, **kwargs)
            setattr(self, attribute, build_module(norm_spec, config=config, hidden_size=config.hidden_size,
                                                  eps=config.layernorm_epsilon))

        def sharded_state_dict(self, prefix: str = "", sharded_offsets: tuple = (), metadata: dict | None = None):
            # megatron's MLP asks every child for its sharded state; a plain norm has none, so the base
            # class sees the module without it, and the norm is added as megatron adds plain modules
            from megatron.core import parallel_state
            from megatron.core.transformer.utils import sharded_state_dict_default

            norm = self._modules.pop(attribute)
            try:
                state = super().sharded_state_dict(prefix, sharded_offsets, metadata)
            finally:
                self._modules[attribute] = norm
            group = getattr(self, "tp_group", None) or parallel_state.get_tensor_model_parallel_group()
            state.update(sharded_state_dict_default(norm, f"{prefix}{attribute}.", sharded_offsets, metadata,
                                                    tp_group=group))
            return state

        def forward(self, *args, **kwargs):
            output, bias = super().forward(*args, **kwargs)
            if bias is not None:
                raise ValueError("GLM-4's sandwich norm needs --disable-bias-linear (no output bias to fold in)")
            return getattr(self, attribute)(output), None

    OutputNormed.__name__ = OutputNormed.__qualname__ = f"{base.__name__}With{attribute.title().replace('_', '')}"
    return OutputNormed


def _quiet_about_the_mlp_subclass(record: logging.LogRecord) -> bool:
    # TransformerLayer passes its tensor-parallel group only to the MLP classes it knows, and warns
    # about others; the subclass takes megatron's default group, which is that same group.
    return "Unknown MLP type" not in record.getMessage()


def get_glm_spec(args: argparse.Namespace, config, vp_stage: int | None = None):
    """The GLM-4 layer spec on megatron's local or transformer-engine spec (by --transformer-impl)."""
    from megatron.core.models.gpt import gpt_layer_specs as specs
    from megatron.core.transformer.spec_utils import ModuleSpec

    logging.getLogger("megatron.core.transformer.transformer_layer").addFilter(_quiet_about_the_mlp_subclass)

    use_te = args.transformer_impl == "transformer_engine"
    if use_te:
        from megatron.core.extensions.transformer_engine import TENorm

        spec, norm = specs.get_gpt_layer_with_transformer_engine_spec(qk_layernorm=args.qk_layernorm), TENorm
    else:
        spec = specs.get_gpt_layer_local_spec(qk_layernorm=args.qk_layernorm, normalization=args.normalization)
        norm = spec.submodules.input_layernorm
    layer = spec.submodules
    for slot, attribute in (("self_attention", "post_self_attn_layernorm"), ("mlp", "post_mlp_layernorm")):
        inner = getattr(layer, slot)
        setattr(layer, slot, ModuleSpec(module=with_output_norm(inner.module, attribute, norm), params=inner.params,
                                        submodules=inner.submodules))
    return spec
