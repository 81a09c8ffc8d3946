"""The torch train backend on its own (no Ray): a checkpoint restores exactly the model and optimizer
state that was saved, and training moves the weights."""

from __future__ import annotations

import pytest
import torch

from slime.backends.torch_backend import TorchTrainBackend
from slime.utils.checkpoint import write_run_record


@pytest.fixture(scope="module")
def tiny(tiny_base):
    return tiny_base


def args_for(tiny, save, *extra):
    from slime.config.compose import namespace_from_config

    return namespace_from_config("run_tiny_cpu", [f"ckpt.save={save}", *extra], environ={"BASE_FOLDER": str(tiny)})


def batch():
    return [{"prompt_tokens": [5, 13, 4, 14], "response_tokens": [t], "loss_mask": [1], "rollout_log_probs": [-2.7],
             "advantages": [a], "returns": [a], "old_log_probs": [-2.7], "ref_log_probs": [-2.7], "old_values": [0.0]}
             for t, a in ((7, 1.0), (9, -1.0), (3, -1.0), (7, 1.0))]


def test_resuming_restores_the_saved_model_and_optimizer_exactly(tiny, tmp_path):
    save = tmp_path / "ckpt"
    args = args_for(tiny, save)
    first = TorchTrainBackend(args, "actor")
    first.init(0, 1, "127.0.0.1", 0)
    before = first.export_weights()
    first.train(batch(), [4], [4])
    assert any(not torch.equal(before[k], v) for k, v in first.export_weights().items())  # it learned something
    first.save(str(save), 7)
    write_run_record(str(save), 7, ["train.py"], args, {})
    saved = first.state_fingerprint()

    second = TorchTrainBackend(args_for(tiny, save), "actor")
    second.init(0, 1, "127.0.0.1", 0)
    assert second.loaded_rollout_id() == 7
    restored = second.state_fingerprint()
    assert all(torch.equal(saved["model"][k], restored["model"][k]) for k in saved["model"])
    for a, b in zip(saved["optimizer"]["state"].values(), restored["optimizer"]["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert saved["optimizer"]["param_groups"] == restored["optimizer"]["param_groups"]
    # and the next step is the same from both
    first.train(batch(), [4], [4])
    second.train(batch(), [4], [4])
    assert all(torch.equal(a, b) for a, b in zip(first.export_weights().values(), second.export_weights().values()))


def test_log_probs_match_the_models_own(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    backend = TorchTrainBackend(args_for(tiny, tmp_path / "c"), "actor")
    backend.init(0, 1, "127.0.0.1", 0)
    model = AutoModelForCausalLM.from_pretrained(tiny / "tiny-cpu")
    logits = model(torch.tensor([[5, 13, 4, 14, 7]])).logits[0, 3]
    expected = torch.log_softmax(logits, -1)[7].item()
    assert backend.compute_log_probs(batch()[:1])[0][0] == pytest.approx(expected, abs=1e-5)


def test_the_reference_model_is_loaded_only_for_a_kl_of_nonzero_weight(tiny, tmp_path):
    weightless = TorchTrainBackend(args_for(tiny, tmp_path / "a"), "actor")  # run_tiny_cpu: --kl-loss-coef 0
    weightless.init(0, 1, "127.0.0.1", 0)
    assert weightless.reference is None
    with pytest.raises(ValueError, match="nonzero weight"):
        weightless.compute_log_probs(batch()[:1], reference=True)
    weighted = TorchTrainBackend(args_for(tiny, tmp_path / "b", "grpo.kl_loss_coef=0.01"), "actor")
    weighted.init(0, 1, "127.0.0.1", 0)
    assert weighted.compute_log_probs(batch(), reference=True) == weighted.compute_log_probs(batch())


def test_non_finite_parameters_are_named(tiny, tmp_path):
    backend = TorchTrainBackend(args_for(tiny, tmp_path / "ckpt"), "actor")
    backend.init(0, 1, "127.0.0.1", 0)
    assert backend.non_finite_parameters() is None
    name, parameter = next(iter(backend.model.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[0] = float("inf")
    assert backend.non_finite_parameters() == f"1 parameter tensor(s) hold NaN or infinite values: {name}"


@pytest.mark.slow
def test_the_torch_backend_makes_the_actor_its_reference(tiny_base, tmp_path):
    from slime.backends.torch_backend import TorchTrainBackend
    from slime.config.compose import namespace_from_config

    args = namespace_from_config("run_tiny_cpu", [f"ckpt.save={tmp_path / 'ckpt'}", "grpo.kl_loss_coef=0.01",
                                                  "grpo.use_kl_loss=true"], environ={"BASE_FOLDER": str(tiny_base)})
    backend = TorchTrainBackend(args, "actor")
    backend.init(0, 1, "127.0.0.1", 0)
    batch = [{"prompt_tokens": [5, 13, 4, 14], "response_tokens": [t], "loss_mask": [1], "rollout_log_probs": [-2.7],
              "advantages": [a], "returns": [a], "old_log_probs": [-2.7], "ref_log_probs": [-2.7]}
             for t, a in ((7, 1.0), (9, -1.0), (3, -1.0), (7, 1.0))]
    backend.train(batch, [4], [4])
    assert backend.compute_log_probs(batch, True) != backend.compute_log_probs(batch)  # trained away from it
    backend.update_reference()
    assert backend.compute_log_probs(batch, True) == backend.compute_log_probs(batch)
