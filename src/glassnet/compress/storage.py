"""Files of compressed PyTorch models whose layers no longer match their hyper-parameters.

A structurally pruned model has narrower layers than ``create_model(name, spec, **hparams)``
builds, so ``model.json`` alone cannot rebuild it. The format here is one safetensors file: the
weights (their shapes record every layer's new size) and, in the header metadata, the registered
name, hyper-parameters and ``DataSpec``. Loading builds the registered architecture, narrows each
layer to the stored shapes (recurrent layers included) and loads the weights strictly. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import CheckpointError, GlassnetError
from glassnet.models.registry import create_model
from glassnet.models.serialization import architecture
from glassnet.runs import atomic_write, to_jsonable

FORMAT = "glassnet.compressed/1"


def save_compressed(model: nn.Module, spec: DataSpec, path: str | os.PathLike[str], method: str = "") -> None:
    """Write a (possibly pruned) registry model and its architecture to one safetensors file.

    Args:
        model: a model built by ``create_model`` (then pruned, fine-tuned, ...).
        spec: the data it was built for.
        path: the ``.safetensors`` file to write (atomically).
        method: how it was compressed, kept in the metadata for people reading the file.
    """
    from safetensors.torch import save_file

    record = {**to_jsonable(architecture(model)), "spec": spec.to_dict(), "method": method}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "model": json.dumps(record)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def load_compressed(path: str | os.PathLike[str]) -> tuple[nn.Module, DataSpec]:
    """Rebuild a model written by ``save_compressed``; returns ``(model in eval mode, spec)``.

    Raises:
        CheckpointError: the file is missing, corrupt, not in this format, or its shapes cannot be
            applied to the registered architecture.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read compressed model '{path}': {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a glassnet compressed model (expected format {FORMAT!r})")
    try:
        record = json.loads(metadata["model"])
        spec = DataSpec.from_dict(record["spec"])
        model = create_model(record["name"], spec, **record["hparams"])
    except (KeyError, ValueError, TypeError, GlassnetError) as exc:
        raise CheckpointError(f"'{path}' describes a model that cannot be built: {exc}") from exc
    resize_to(model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in '{path}' do not fit the architecture: {str(exc).splitlines()[0]}") from exc
    model.glassnet_arch = {"name": record["name"], "hparams": record["hparams"]}
    return model.eval(), spec


def resize_to(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give every parameter and buffer of ``model`` the shape it has in ``state``, and update the
    size attributes of the layers that changed (channels, features), so the forward pass agrees."""
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        changed = False
        for table in (module._parameters, module._buffers):
            for name, tensor in list(table.items()):
                stored = state.get(prefix + name)
                if tensor is None or stored is None or stored.shape == tensor.shape:
                    continue
                fresh = torch.empty(stored.shape, dtype=stored.dtype)
                table[name] = (
                    nn.Parameter(fresh, requires_grad=tensor.requires_grad) if table is module._parameters else fresh
                )
                changed = True
        if changed:
            _update_sizes(module)


def _update_sizes(module: nn.Module) -> None:
    if isinstance(module, nn.modules.conv._ConvNd):
        weight: Any = module.weight
        module.out_channels = weight.shape[1] * module.groups if module.transposed else weight.shape[0]
        module.in_channels = weight.shape[0] if module.transposed else weight.shape[1] * module.groups
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.modules.batchnorm._NormBase):
        module.num_features = (module.running_mean if module.running_mean is not None else module.weight).shape[0]
    elif isinstance(module, nn.LayerNorm):
        module.normalized_shape = tuple(module.weight.shape)
    elif isinstance(module, nn.Embedding):
        module.num_embeddings, module.embedding_dim = module.weight.shape
    elif isinstance(module, nn.RNNBase):
        # every layer and direction shares one hidden size; the first layer's input width is the input size
        module.hidden_size = module.weight_hh_l0.shape[1]
        module.input_size = module.weight_ih_l0.shape[1]
        module._init_flat_weights()  # the cuDNN / CPU kernels read the replaced tensors from this list
