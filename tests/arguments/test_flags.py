"""The flag tables against what real launchers and upstream slime mean by each flag.

Every flag real launch scripts use parses with its real meaning, and every reference model's
MODEL_ARGS parses and validates. Every flag upstream slime's parser registers parses here as it does
there: generated, one case per row, from tests/reference/upstream_slime_flags.tsv (flag, argparse
action, type, nargs, default, choices and dest of upstream's ``slime/utils/arguments.py``; Megatron
flags with slime's defaults). A row's expectations are read from the TSV alone, never from this
project's registry: the attribute a flag sets (what a custom function written for upstream reads),
its default after argparse's own conversion (a string default goes through ``type``), how it takes
values (a switch, a ``--no-`` pair, one value, ``+``/``*`` lists, a repeatable flag), the type a value
is converted to, and that every upstream choice is accepted (this project may accept more).
"""

from __future__ import annotations

import csv
import json

import pytest

from slime.arguments.parser import ArgumentProblems, parse_args, parse_argv
from slime.arguments.registry import flag_by_option
from tests.helpers.command_lines import MINIMAL_RUN
from tests.helpers.paths import REFERENCE

# The meaning of each flag in tests/reference/launcher_flags.txt, written down independently
# of the registry: what a launch script means when it passes the flag.
SWITCHES_ON = """
--accumulate-allreduce-grads-in-fp32 --add-qkv-bias --allgather-cp --apply-chat-template --apply-layernorm-1p
--attention-output-gate --attention-softmax-in-fp32 --balance-data --calculate-per-token-loss --colocate
--debug-train-only --enable-experimental --enable-mtp-training --group-query-attention --moe-enable-deepep
--moe-grouped-gemm --moe-permute-fusion --moe-router-enable-expert-bias --moe-router-pre-softmax
--moe-shared-expert-gate --multi-latent-attention --optimizer-cpu-offload --overlap-cpu-optimizer-d2h-h2d
--post-mlp-layernorm --post-self-attn-layernorm --qk-layernorm --rollout-shuffle --rotary-interleaved
--sequence-parallel --sglang-disable-overlap-schedule --sglang-enable-dp-attention --sglang-enable-dp-lm-head
--swiglu --untie-embeddings-and-output-weights --use-distributed-optimizer --use-dynamic-batch-size
--use-gated-attention --use-kl-loss --use-precision-aware-optimizer --use-rotary-position-embeddings
--use-tensorboard --use-tis
""".split()
# Switches that turn something off: (flag, attribute set to False).
SWITCHES_OFF = {
    "--disable-bias-linear": "add_bias_linear",
    "--disable-compute-advantages-and-returns": "compute_advantages_and_returns",
    "--no-check-for-nan-in-loss-and-grad": "check_for_nan_in_loss_and_grad",
    "--no-masked-softmax-fusion": "masked_softmax_fusion",
    "--no-position-embedding": "add_position_embedding",
    "--no-rope-fusion": "apply_rope_fusion",
}
INTS = """
--actor-num-gpus-per-node --actor-num-nodes --context-parallel-size --data-pad-size-multiplier
--decoder-first-pipeline-num-layers --decoder-last-pipeline-num-layers --eval-interval --eval-max-response-len
--expert-model-parallel-size --expert-tensor-parallel-size --ffn-hidden-size --global-batch-size --hidden-size
--kv-channels --kv-lora-rank --log-probs-chunk-size --make-vocab-size-divisible-by --max-position-embeddings
--max-tokens-per-gpu --moe-ffn-hidden-size --moe-router-group-topk --moe-router-num-groups --moe-router-topk
--moe-shared-expert-intermediate-size --mtp-num-layers --n-samples-per-eval-prompt --n-samples-per-prompt
--num-attention-heads --num-epoch --num-experts --num-layers --num-query-groups --num-rollout
--num-steps-per-rollout --over-sampling-batch-size --pipeline-model-parallel-size --prefill-num-servers
--q-lora-rank --qk-head-dim --qk-pos-emb-head-dim --recompute-num-layers --rollout-batch-size
--rollout-max-response-len --rollout-num-gpus --rollout-num-gpus-per-engine --rotary-base --save-interval
--sglang-chunked-prefill-size --sglang-cuda-graph-max-bs --sglang-dp-size --sglang-ep-size
--sglang-max-running-requests --sglang-moe-dense-tp-size --sglang-page-size --sglang-server-concurrency
--sglang-speculative-eagle-topk --sglang-speculative-num-draft-tokens --sglang-speculative-num-steps
--tensor-model-parallel-size --update-weight-buffer-size --v-head-dim --vocab-size
""".split()
FLOATS = """
--adam-beta1 --adam-beta2 --attention-dropout --entropy-coef --eps-clip --eps-clip-high --eval-temperature
--eval-top-p --hidden-dropout --kl-coef --kl-loss-coef --lr --lr-warmup-fraction --min-lr
--moe-router-bias-update-rate --moe-router-topk-scaling-factor --mscale --mscale-all-dim
--mtp-loss-scaling-factor --norm-epsilon --rollout-temperature --rotary-percent --rotary-scaling-factor
--sglang-mem-fraction-static --sglang-watchdog-timeout --tis-clip --tis-clip-low --weight-decay
""".split()
STRINGS = """
--dynamic-sampling-filter-path --hf-checkpoint --input-key --label-key --load --model-name --prompt-data
--ref-load --rollout-function-path --save --sglang-config --sglang-disaggregation-ib-device
--sglang-speculative-algorithm --sglang-speculative-draft-attention-backend
""".split()
# A value each choice flag is used with in real scripts.
CHOICES = {
    "--advantage-estimator": "gspo", "--attention-backend": "flash", "--kl-loss-type": "low_var_kl",
    "--loss-mask-type": "qwen3", "--loss-type": "policy_loss", "--lr-decay-style": "constant",
    "--moe-router-dtype": "fp32", "--moe-router-score-function": "sigmoid", "--moe-token-dispatcher-type": "alltoall",
    "--moe-token-drop-policy": "probs", "--normalization": "RMSNorm", "--optimizer": "adam",
    "--position-embedding-type": "rope", "--recompute-granularity": "full", "--recompute-method": "uniform",
    "--rm-type": "deepscaler", "--sglang-attention-backend": "fa3", "--sglang-deepep-mode": "auto",
    "--sglang-disaggregation-transfer-backend": "mooncake", "--sglang-kv-cache-dtype": "fp8_e4m3",
    "--sglang-mamba-scheduler-strategy": "no_buffer", "--sglang-moe-a2a-backend": "deepep",
    "--sglang-nsa-decode-backend": "flashmla_kv", "--sglang-nsa-prefill-backend": "flashmla_sparse",
}
# Flags taking several values: (argv values, parsed value).
LISTS = {
    "--eval-prompt-data": (["aime", "/data/aime.jsonl"], ["aime", "/data/aime.jsonl"]),
    "--spec": (["slime_plugins.models.glm4", "get_glm_spec"], ["slime_plugins.models.glm4", "get_glm_spec"]),
    "--moe-aux-loss-coeff": (["0.001"], [0.001]),
    "--moe-router-load-balancing-type": (["seq_aux_loss"], ["seq_aux_loss"]),
    "--rollout-stop-token-ids": (["151329", "151336"], [151329, 151336]),
    "--sglang-cuda-graph-bs": (["1", "2", "4", "8", "16", "24"], [1, 2, 4, 8, 16, 24]),
    "--moe-layer-freq": (["[0,1,1]"], [0, 1, 1]),
}


def _expected_cases():
    cases = [(f, [], True) for f in SWITCHES_ON]
    cases += [(f, [], False) for f in SWITCHES_OFF]
    cases += [(f, ["3"], 3) for f in INTS]
    cases += [(f, ["0.25"], 0.25) for f in FLOATS]
    cases += [(f, ["some/value"], "some/value") for f in STRINGS]
    cases += [(f, [v], v) for f, v in CHOICES.items()]
    cases += [(f, values, parsed) for f, (values, parsed) in LISTS.items()]
    return cases


def test_every_launcher_flag_has_a_written_down_meaning(launcher_flags):
    described = {case[0] for case in _expected_cases()}
    assert sorted(set(launcher_flags) - described) == []


@pytest.mark.parametrize(("option", "values", "expected"), _expected_cases(), ids=lambda x: x if isinstance(x, str) else "")
def test_launcher_flag_parses_with_its_meaning(option, values, expected):
    args = parse_args([option, *values], validate=False)
    attr = SWITCHES_OFF.get(option) or flag_by_option()[option].attr
    value = getattr(args, attr)
    assert value == expected and type(value) is type(expected)


def test_a_switch_rejects_a_value_and_a_valued_flag_requires_one():
    with pytest.raises(ValueError, match="--swiglu takes no value"):
        parse_args(["--swiglu", "true"], validate=False)
    with pytest.raises(ValueError, match="--num-layers: expected one argument"):
        parse_args(["--num-layers"], validate=False)


def test_every_reference_model_parses(model_args):
    for name, argv in model_args.items():
        args = parse_args(argv, validate=False)
        freq = args.moe_layer_freq
        if isinstance(freq, list):
            assert len(freq) == args.num_layers, name


def test_every_reference_model_validates_on_one_node_or_says_what_the_backend_cannot_build(model_args):
    unbuildable = {}
    for name, argv in model_args.items():
        try:
            parse_args([*argv, *MINIMAL_RUN])
        except ArgumentProblems as err:
            messages = [str(problem) for problem in err.problems]
            assert all("megatron backend" in m or "not implemented yet" in m for m in messages), (name, messages)
            unbuildable[name] = messages
    # the layers megatron-core (and this project's plugins) do not build yet: gated attention and gated
    # delta-net (Qwen3-Next, Qwen3.5), GLM-5's and MiniMax-M2's specs (and GLM-5's --allgather-cp),
    # multi-token prediction (MiMo)
    assert sorted(unbuildable) == ["glm5-744B-A40B", "glm5.2-744B-A40B", "mimo-7B-rl", "minimax-m2",
                                   "qwen3-next-80B-A3B", "qwen3.5-0.8B", "qwen3.5-27B", "qwen3.5-35B-A3B",
                                   "qwen3.5-35B-A3B-vl", "qwen3.5-4B", "qwen3.5-9B"]


# -- upstream slime's own flags (tests/reference/upstream_slime_flags.tsv) ------------------------------
TSV = REFERENCE / "upstream_slime_flags.tsv"


def _rows() -> list[dict]:
    with TSV.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _rows()
# What a value of each upstream type becomes: (argv token, parsed value).
SAMPLES = {"int": ("3", 3), "float": ("0.25", 0.25), "str": ("3", "3"), "json.loads": ('{"a": [1]}', {"a": [1]})}
CONVERT = {"int": int, "float": float, "str": str, "json.loads": json.loads}


def _dest(row: dict) -> str:
    return row["dest"] or row["flag"].lstrip("-").replace("-", "_")


def _default(row: dict):
    """The attribute's value when the flag is absent, as argparse leaves it upstream."""
    action = row["action"]
    if not row["default"]:
        return {"store_true": False, "store_false": True}.get(action)
    value = json.loads(row["default"])
    if isinstance(value, str) and not action:  # argparse converts a string default with the flag's type
        value = CONVERT[row["type"] or "str"](value)
    return value


def _parsed(argv: list[str], row: dict):
    return getattr(parse_argv(argv), _dest(row))


def _rejects(argv: list[str]) -> bool:
    try:
        parse_argv(argv)
    except ArgumentProblems:
        return True
    return False


def test_the_reference_lists_every_upstream_flag_once():
    flags = [row["flag"] for row in ROWS]
    assert len(flags) == len(set(flags)) == 223


@pytest.fixture(scope="module")
def defaults():
    return parse_argv([])


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["flag"])
def test_upstream_flag_has_upstream_attribute_and_default(row, defaults):
    args = defaults
    assert hasattr(args, _dest(row)), f"{row['flag']} sets no attribute {_dest(row)}"
    value, expected = getattr(args, _dest(row)), _default(row)
    assert value == expected and type(value) in (type(expected), float if type(expected) is int else type(expected))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["flag"])
def test_upstream_flag_takes_values_as_upstream(row):
    option, action, nargs = row["flag"], row["action"], row["nargs"]
    if action == "store_true":
        assert _parsed([option], row) is True
        assert _rejects([option, "x"])
    elif action == "store_false":
        assert _parsed([option], row) is False
        assert _rejects([option, "x"])
    elif action == "<argparse.BooleanOptionalAction>":
        assert _parsed([option], row) is True
        assert _parsed(["--no-" + option[2:]], row) is False
    elif action == "append":
        assert _parsed([option, "a", option, "b"], row) == ["a", "b"]
    else:
        assert action == "", f"an action this test does not know: {action}"
        token, value = SAMPLES[row["type"] or "str"]
        if row["choices"]:
            token = value = json.loads(row["choices"])[0]
        if nargs in ("+", "*"):
            parsed = _parsed([option, token, token], row)
            assert parsed == [value, value] and type(parsed[0]) is type(value)
            assert _rejects([option]) if nargs == "+" else _parsed([option], row) == []
        else:
            parsed = _parsed([option, token], row)
            assert parsed == value and type(parsed) is type(value)
            assert _rejects([option, token, token])
            assert _rejects([option])
        if row["type"] == "int":
            assert _rejects([option, "2.5"])


@pytest.mark.parametrize("row", [row for row in ROWS if row["choices"]], ids=lambda row: row["flag"])
def test_upstream_flag_accepts_every_upstream_choice(row):
    for choice in json.loads(row["choices"]):
        parsed = _parsed([row["flag"], choice], row)
        assert parsed == ([choice] if row["nargs"] in ("+", "*") else choice)
