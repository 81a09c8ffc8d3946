"""--megatron-config-path: per-role overrides on top of the shared command line."""

from __future__ import annotations

import pytest

from slime.arguments.parser import ArgumentProblems, parse_args
from slime.arguments.role_overrides import RoleOverrideWarning, role_args
from tests.helpers.command_lines import MINIMAL

PPO = [*MINIMAL, "--advantage-estimator", "ppo", "--use-critic", "--tensor-model-parallel-size", "2"]


@pytest.fixture
def role_file(tmp_path):
    def write(text: str) -> list[str]:
        path = tmp_path / "roles.yaml"
        path.write_text(text)
        return ["--megatron-config-path", str(path)]
    return write


def test_both_roles(role_file):
    args = parse_args([*PPO, *role_file("""
megatron:
  - name: default
    role: actor
    overrides: {lr: 1e-6, save: /ckpt/actor}
  - name: default
    role: critic
    overrides: {lr: 1e-5, save: /ckpt/critic}
""")])
    actor, critic = role_args(args, "actor"), role_args(args, "critic")
    assert (actor.lr, actor.save) == (1e-6, "/ckpt/actor")
    assert (critic.lr, critic.save) == (1e-5, "/ckpt/critic")
    assert isinstance(critic.lr, float)  # YAML reads 1e-5 as a string; it is converted to the flag's type


def test_one_role_and_a_top_level_list(role_file):
    args = parse_args([*PPO, *role_file("- {role: critic, overrides: {lr: 1e-5, lr_warmup_iters: '10'}}\n")])
    assert role_args(args, "actor").lr == 1e-6  # inherits the command line
    assert role_args(args, "critic").lr == 1e-5
    assert role_args(args, "critic").lr_warmup_iters == 10


def test_args_is_an_alias_of_overrides(role_file):
    args = parse_args([*PPO, *role_file("- {role: critic, args: {weight_decay: 0.0}}\n")])
    assert role_args(args, "critic").weight_decay == 0.0


def test_critic_flags_apply_to_the_critic_role():
    args = parse_args([*PPO, "--critic-lr", "2e-6", "--critic-save", "/ckpt/critic"])
    assert (role_args(args, "critic").lr, role_args(args, "critic").save) == (2e-6, "/ckpt/critic")
    assert role_args(args, "actor").lr == 1e-6


def test_placement_keys_are_ignored_with_a_warning(role_file):
    with pytest.warns(RoleOverrideWarning, match="is ignored; placement comes from --critic-num-nodes"):
        args = parse_args([*PPO, *role_file("- {role: critic, overrides: {num_nodes: 4, num_gpus_per_node: 2, lr: 1e-5}}\n")])
    assert args.role_overrides == {"critic": {"lr": 1e-5}}
    assert args.role_overrides_ignored == ["critic.num_nodes", "critic.num_gpus_per_node"]
    assert role_args(args, "critic").critic_num_nodes == 1


def test_unknown_key_suggests_the_attribute(role_file):
    with pytest.raises(ArgumentProblems, match="unknown key learning_rat|unknown key lr_decay_stile: did you mean lr_decay_style"):
        parse_args([*PPO, *role_file("- {role: actor, overrides: {lr_decay_stile: cosine}}\n")])


def test_topology_must_match_between_roles(role_file):
    with pytest.raises(ArgumentProblems, match="tensor_model_parallel_size is 2 for the actor but 4 for the critic"):
        parse_args([*PPO, *role_file("- {role: critic, overrides: {tensor_model_parallel_size: 4}}\n")])


def test_bad_values_and_shapes_are_all_reported(role_file):
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([*PPO, *role_file("""
- {role: actor, overrides: {lr: fast, lr_decay_style: sideways, use_distributed_optimizer: 'yes'}}
- {role: judge}
- {role: critic, overrides: {actor_num_nodes: 2}}
""")])
    text = caught.value.render()
    assert "lr: expected float, got 'fast'" in text
    assert "lr_decay_style: expected one of constant" in text
    assert "use_distributed_optimizer: expected true or false" in text
    assert "entry 2: needs role: actor or role: critic" in text
    assert "actor_num_nodes is placement and stays on the command line" in text


def test_critic_overrides_need_a_critic(role_file):
    with pytest.raises(ArgumentProblems, match="no critic is trained"):
        parse_args([*MINIMAL, *role_file("- {role: critic, overrides: {lr: 1e-5}}\n")])


def test_unreadable_and_malformed_files(role_file, tmp_path):
    with pytest.raises(ArgumentProblems, match="cannot read the file"):
        parse_args([*PPO, "--megatron-config-path", str(tmp_path / "missing.yaml")])
    with pytest.raises(ArgumentProblems, match="not valid YAML"):
        parse_args([*PPO, *role_file("- {role: actor, overrides: {lr: [}\n")])
