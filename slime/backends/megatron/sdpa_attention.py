"""megatron-core's local core attention computed by torch's ``scaled_dot_product_attention``.

megatron's ``DotProductAttention`` (the local spec's, what runs without transformer-engine) is the
unfused path: a baddbmm into megatron's global buffer, a masked softmax, a bmm, with the key and value
heads repeated for grouped-query attention. On a CPU torch's fused kernel does the same in one call
without the copies; same inputs, same outputs (to float rounding). Where megatron's own path does
something SDPA does not (query-key layer scaling, a learnable softmax offset, a sliding window,
attention dropout in training), the layer falls back to it.
"""

from __future__ import annotations

import functools


@functools.cache
def sdpa_core_attention():
    import torch
    from megatron.core.transformer.dot_product_attention import DotProductAttention
    from megatron.core.transformer.enums import AttnMaskType

    class SDPACoreAttention(DotProductAttention):
        def _fused(self) -> bool:
            dropout = self.attention_dropout.p if self.training else 0.0
            return (not self.config.apply_query_key_layer_scaling and self.softmax_offset is None
                    and self.scale_mask_softmax.window_size is None and dropout == 0.0)

        def forward(self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None,
                    packed_seq_params=None):
            if not self._fused() or attention_bias is not None or packed_seq_params is not None:
                return super().forward(query, key, value, attention_mask, attn_mask_type=attn_mask_type,
                                       attention_bias=attention_bias, packed_seq_params=packed_seq_params)
            # [s, b, heads, dim] -> [b, heads, s, dim]
            q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))
            # megatron's mask is True where attention is masked out; SDPA's is True where it is allowed.
            # With no mask, megatron's softmax makes the causal one itself (for more than one query).
            causal = attention_mask is None and self.attn_mask_type == AttnMaskType.causal and q.shape[2] > 1
            context = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=None if attention_mask is None else ~attention_mask, is_causal=causal,
                scale=self.softmax_scale, enable_gqa=k.shape[1] != q.shape[1])
            # [b, heads, s, dim] -> [s, b, heads × dim]
            return context.permute(2, 0, 1, 3).reshape(context.shape[2], context.shape[0], self.hidden_size_per_partition)

    return SDPACoreAttention
