"""The parallel topology of a train role (slime.arguments.topology): computed once from the Namespace,
and what validation checks, the plan shows and the memory estimate shards by."""

from __future__ import annotations

import argparse
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from slime.arguments.parser import ArgumentProblems, parse_args
from slime.arguments.topology import Topology
from slime.launch.plan import build_plan
from tests.helpers.command_lines import MINIMAL
from tests.helpers.command_lines import MOE_64_GPUS

DIVIDES = "does not divide the actor's"
EXPERTS_FIT = "expert parallelism does not fit the actor"


def test_the_64_gpu_moe_run_has_dp_2_and_one_copy_of_each_expert(model_args):
    args = parse_args([*model_args["qwen3-235B-A22B"], *(a for a in MOE_64_GPUS if a != "--dry-run")])
    t = Topology.of(args, "actor")
    assert t == Topology(world=64, tp=4, pp=4, cp=2, ep=16, etp=1)
    assert (t.model_parallel, t.dp, t.expert_dp) == (32, 2, 1)


def test_an_unset_expert_tensor_parallel_size_is_the_tensor_parallel_size():
    args = argparse.Namespace(tensor_model_parallel_size=2, pipeline_model_parallel_size=1, context_parallel_size=1,
                              expert_model_parallel_size=1, expert_tensor_parallel_size=None,
                              critic_num_nodes=2, critic_num_gpus_per_node=4)
    assert Topology.of(args, "critic") == Topology(world=8, tp=2, etp=2)
    assert Topology.of(args, "critic", world=2).dp == 1 and Topology().dp == 1


SIZES = st.sampled_from([1, 2, 4, 8])


@settings(max_examples=60, deadline=None)
@given(tp=SIZES, pp=SIZES, cp=SIZES, ep=SIZES, etp=SIZES, nodes=st.integers(1, 4), per_node=SIZES)
def test_validation_refuses_exactly_the_topologies_that_do_not_divide(tp, pp, cp, ep, etp, nodes, per_node):
    argv = [*MINIMAL, "--num-experts", "64", "--num-layers", "8", "--actor-num-nodes", str(nodes),
            "--actor-num-gpus-per-node", str(per_node), "--num-gpus-per-node", str(per_node),
            "--tensor-model-parallel-size", str(tp), "--pipeline-model-parallel-size", str(pp),
            "--context-parallel-size", str(cp), "--expert-model-parallel-size", str(ep),
            "--expert-tensor-parallel-size", str(etp)]
    t = Topology(nodes * per_node, tp, pp, cp, ep, etp)
    try:
        args = parse_args(argv)
    except ArgumentProblems as err:
        messages = [problem.message for problem in err.problems]
        assert any(DIVIDES in m for m in messages) == (t.dp is None), messages
        assert any(EXPERTS_FIT in m for m in messages) == (t.dp is not None and t.expert_dp is None), messages
        return
    assert t.dp is not None and t.expert_dp is not None
    assert Topology.of(args, "actor") == t
    assert build_plan(args)["actor"]["data_parallel"] == t.dp


def test_an_actors_own_topology_is_checked_too():
    """Without a critic the actor may change its sizes in --megatron-config-path: they must divide its GPUs."""
    overrides = json.dumps([{"name": "wide", "role": "actor", "overrides": {"tensor_model_parallel_size": 3}}])
    try:
        parse_args([*MINIMAL, "--megatron-config-path", overrides])
    except ArgumentProblems as err:
        assert [p.message for p in err.problems if DIVIDES in p.message] == [
            "--tensor-model-parallel-size 3 × --pipeline-model-parallel-size 1 × --context-parallel-size 1 = 3 does "
            "not divide the actor's 8 GPUs (--actor-num-nodes × --actor-num-gpus-per-node)"]
    else:
        raise AssertionError("an actor topology of 3 ranks on 8 GPUs was accepted")
    fine = json.dumps([{"name": "wide", "role": "actor", "overrides": {"tensor_model_parallel_size": 2}}])
    args = parse_args([*MINIMAL, "--megatron-config-path", fine])
    assert build_plan(args)["actor"]["data_parallel"] == 4
