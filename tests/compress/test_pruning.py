"""Unstructured magnitude pruning, structured channel pruning, and their file format."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassnet.compress import channel_prune, load_compressed, magnitude_prune, save_compressed
from glassnet.compress.pruning import prunable_weights, sparsity
from glassnet.errors import CheckpointError, ConfigError
from glassnet.models import count_parameters, create_model


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_magnitude_pruning_zeros_the_fraction_and_leaves_the_original_alone(digits_cnn, scope):
    before = _state(digits_cnn)
    pruned = magnitude_prune(digits_cnn, 0.6, scope=scope)
    assert sparsity(pruned) == pytest.approx(0.6, abs=0.01)
    assert sparsity(digits_cnn) < 0.01
    assert all(torch.equal(before[k], v) for k, v in digits_cnn.state_dict().items())
    # permanent: plain weights, no masks or hooks left behind
    assert not any(k.endswith(("_orig", "_mask")) for k in pruned.state_dict())
    assert set(pruned.state_dict()) == set(digits_cnn.state_dict())


def test_layer_scope_prunes_every_layer_equally_global_does_not(digits_cnn):
    layer = magnitude_prune(digits_cnn, 0.5, scope="layer")
    per_layer = [float((getattr(m, n) == 0).float().mean()) for m, n in prunable_weights(layer)]
    assert all(s == pytest.approx(0.5, abs=0.02) for s in per_layer)
    global_ = magnitude_prune(digits_cnn, 0.5, scope="global")
    spread = [float((getattr(m, n) == 0).float().mean()) for m, n in prunable_weights(global_)]
    assert max(spread) - min(spread) > 0.1


def test_iterative_pruning_fine_tunes_after_each_round_with_masks_holding(digits_cnn):
    seen = []

    def fine_tune(model):
        # the masks are still in place while fine-tuning: a training step must not revive pruned weights
        seen.append(sparsity_of_masked(model))
        with torch.no_grad():
            for module, _ in prunable_weights(model):
                module.weight_orig.add_(1.0)

    pruned = magnitude_prune(digits_cnn, 0.75, steps=3, fine_tune=fine_tune)
    assert len(seen) == 3
    assert seen[0] < seen[1] < seen[2]
    assert sparsity(pruned) == pytest.approx(0.75, abs=0.01)


def sparsity_of_masked(model):
    masks = [m.weight_mask for m, _ in prunable_weights(model)]
    return float(sum((k == 0).sum() for k in masks) / sum(k.numel() for k in masks))


def test_recurrent_weights_are_prunable():
    from glassnet.data import DataSpec

    spec = DataSpec(modality="sequence", input_shape=(12, 3), task="classify", num_outputs=2)
    model = create_model("gru", spec, hidden=8)
    pruned = magnitude_prune(model, 0.5)
    assert sparsity(pruned) == pytest.approx(0.5, abs=0.02)
    assert pruned(torch.randn(4, 12, 3)).shape == (4, 2)


def test_channel_pruning_really_shrinks_the_layers(digits_cnn, digits):
    x = digits.test.tensors[0]
    pruned = channel_prune(digits_cnn, x[:2], 0.5)
    convs = [m for m in pruned.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8]
    assert pruned.classifier[-2].out_features == digits.spec.num_outputs  # the output layer keeps its size
    assert count_parameters(pruned) < 0.4 * count_parameters(digits_cnn)
    assert pruned(x).shape == (len(x), digits.spec.num_outputs)
    assert [m.out_channels for m in digits_cnn.features if isinstance(m, nn.Conv2d)] == [8, 16]


def test_channel_pruning_calls_fine_tune_each_round(digits_cnn, digits):
    sizes = []
    channel_prune(
        digits_cnn, digits.test.tensors[0][:2], 0.5, steps=2, fine_tune=lambda m: sizes.append(count_parameters(m))
    )
    assert len(sizes) == 2 and sizes[0] > sizes[1]


def test_pruned_model_round_trips_through_its_file(digits_cnn, digits, tmp_path):
    x = digits.test.tensors[0][:32]
    pruned = channel_prune(digits_cnn, x[:2], 0.5)
    path = tmp_path / "pruned.safetensors"
    save_compressed(pruned, digits.spec, path, method="test")
    loaded, spec = load_compressed(path)
    assert spec == digits.spec
    assert torch.allclose(loaded(x), pruned(x), atol=1e-6)
    assert loaded.glassnet_arch["name"] == "cnn"


def test_load_compressed_rejects_other_files(tmp_path, digits_cnn, digits):
    from glassnet.models import save_model

    save_model(digits_cnn, digits.spec, tmp_path / "run")
    with pytest.raises(CheckpointError, match="not a glassnet compressed model"):
        load_compressed(tmp_path / "run" / "model.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_compressed(tmp_path / "junk.safetensors")


@pytest.mark.parametrize("amount", [0, 1, 1.5, -0.2, "half", True])
def test_bad_fraction_is_a_config_error(digits_cnn, amount):
    with pytest.raises(ConfigError, match="must be in \\(0, 1\\)"):
        magnitude_prune(digits_cnn, amount)


def test_bad_scope_and_steps_are_config_errors(digits_cnn):
    with pytest.raises(ConfigError, match="scope must be global or layer"):
        magnitude_prune(digits_cnn, 0.5, scope="channel")
    with pytest.raises(ConfigError, match="prune_steps"):
        magnitude_prune(digits_cnn, 0.5, steps=0)
