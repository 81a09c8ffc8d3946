"""The local spec's core attention through torch's SDPA (slime.backends.megatron.sdpa_attention) gives
megatron's own unfused attention's output, with the causal mask given and without one (megatron's
softmax then makes the causal mask itself)."""

from __future__ import annotations

import pytest

from tests.helpers.megatron import spawn


def _largest_differences(rank, world_size, port):
    import torch
    import torch.distributed as dist

    from slime.backends.megatron import cpu_compat

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    cpu_compat.install()
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed
    from megatron.core.transformer import TransformerConfig
    from megatron.core.transformer.dot_product_attention import DotProductAttention
    from megatron.core.transformer.enums import AttnMaskType

    from slime.backends.megatron.sdpa_attention import sdpa_core_attention

    parallel_state.initialize_model_parallel(1, 1)
    model_parallel_cuda_manual_seed(0)
    config = TransformerConfig(num_layers=1, hidden_size=32, num_attention_heads=4, num_query_groups=2,
                               use_cpu_initialization=True)
    built = dict(config=config, layer_number=1, attn_mask_type=AttnMaskType.causal, attention_type="self")
    megatrons, ours = DotProductAttention(**built).eval(), sdpa_core_attention()(**built).eval()
    torch.manual_seed(0)
    query, key, value = torch.randn(5, 2, 4, 8), torch.randn(5, 2, 2, 8), torch.randn(5, 2, 2, 8)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)[None, None]
    found = {}
    with cpu_compat.cuda_as_cpu():
        for name, mask in (("causal mask", causal), ("no mask", None)):
            found[name] = float((megatrons(query, key, value, mask) - ours(query, key, value, mask)).abs().max())
    return found


@pytest.mark.slow  # a spawned process importing megatron, ~15 s
def test_sdpa_core_attention_is_megatrons_attention_with_and_without_a_mask():
    found = spawn(1, _largest_differences)[0]
    assert all(difference < 1e-5 for difference in found.values()), found
