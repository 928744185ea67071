"""Measure a built model: its layer table, parameter count, FLOPs per example and memory per batch."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from glassnet.data.spec import MAX_VALUES, DataSpec
from glassnet.errors import ConfigError


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those that require gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def example_input(spec: DataSpec, batch_size: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """A batch of inputs of the kind ``spec`` describes, for measuring a model.

    Text inputs are int64 token ids with every position holding a non-padding token, so that
    models which skip padding (packed RNNs) are measured at the full ``max_length``; every other
    modality gets float zeros of ``spec.input_shape``.

    Args:
        spec: the data the model was built for.
        batch_size: number of examples in the batch.
        device: where to put the tensor (default: CPU).

    Returns:
        A tensor of shape ``(batch_size, *spec.input_shape)``.
    """
    shape = (batch_size, *spec.input_shape)
    if spec.modality != "text":
        return torch.zeros(shape, device=device)
    pad = int(spec.extra.get("pad_index", 0))
    return torch.full(shape, 1 if pad == 0 else 0, dtype=torch.long, device=device)


def summarize(model: nn.Module, spec: DataSpec) -> dict[str, Any]:
    """Run one example through ``model`` (in eval mode) and record each layer and the FLOPs.

    A layer is a module without children or one that owns parameters itself (e.g.
    ``nn.MultiheadAttention``). Its parameters and FLOPs are its own plus those of sub-modules
    that never ran as modules (attention calls ``out_proj``'s weights directly), so the rows add
    up to the totals unless FLOPs are computed in a parent's own ``forward`` code.

    FLOPs are those of ``torch.utils.flop_counter.FlopCounterMode``: matrix products,
    convolutions and attention, counting a multiply-add as 2 FLOPs; element-wise operations
    (activations, normalisation, pooling) count as 0. Formulas added here cover the fused
    kernels it does not know: recurrent layers (CPU and cuDNN) and CPU attention.

    Returns:
        ``{"layers": [{"name", "type", "output_shape", "parameters", "flops"}], "parameters",
        "trainable_parameters", "flops"}``; ``flops`` is one forward pass for one example and
        ``output_shape`` excludes the batch axis (that of the first tensor of a tuple; ``None`` for
        other outputs, e.g. packed sequences).
    """
    rows: list[dict[str, Any]] = []

    def record(name: str, module: nn.Module, output: Any) -> None:
        if type(output) is tuple and output and isinstance(output[0], torch.Tensor):
            output = output[0]  # (output, state) of an RNN, (output, weights) of attention
        shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        rows.append({"name": name, "type": type(module).__name__, "output_shape": shape})

    counter = FlopCounterMode(display=False, depth=None, custom_mapping=_fused_kernel_flop_formulas())
    # gradients on: without them attention takes an inference fast path, one kernel that no formula covers
    with _evaluating(model), torch.enable_grad(), _layer_outputs(model, record), counter:
        model(example_input(spec, device=_device(model)))
    parameters = _parameters_per_layer(model, {row["name"] for row in rows})
    flops = _flops_per_layer(model, {row["name"] for row in rows}, counter.get_flop_counts())
    for row in rows:
        row.update(parameters=parameters[row["name"]], flops=flops[row["name"]])
    return {
        "layers": rows,
        "parameters": count_parameters(model),
        "trainable_parameters": count_parameters(model, trainable_only=True),
        "flops": int(counter.get_total_flops()),
    }


def measure_memory(model: nn.Module, spec: DataSpec, batch_size: int = 64) -> dict[str, int]:
    """Bytes that a model's weights and one batch's forward pass occupy.

    The forward pass runs in eval mode with gradients enabled, on the model's device.

    Args:
        model: the model to measure (left unchanged).
        spec: the data it was built for.
        batch_size: examples in the batch.

    Returns:
        ``batch_size``; ``activation_bytes``: the sum of every layer's output tensors (what a
        forward pass writes, ignoring buffers freed or reused on the way and tensors made in a
        parent's own ``forward``); ``saved_for_backward_bytes``: the distinct tensors autograd
        keeps for the backward pass (the input batch too when a layer keeps it; parameters
        excluded; eval mode, so no dropout masks); ``parameter_bytes`` and ``buffer_bytes``.

    Raises:
        ConfigError: ``batch_size`` is not a positive integer, or its batch would hold more than
            ``MAX_VALUES`` input values (1 GiB of float32).
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    values = batch_size * math.prod(spec.input_shape)
    if values > MAX_VALUES:
        raise ConfigError(
            f"batch_size={batch_size} gives a batch of {values:,} input values, above the limit of {MAX_VALUES:,}; "
            "measure a smaller batch (memory grows in proportion)"
        )
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    outputs: list[int] = []
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        key, size = _storage(tensor)
        if key not in weights:
            saved[key] = size
        return tensor

    def record(_name: str, _module: nn.Module, output: Any) -> None:
        outputs.append(_tensor_bytes(output))

    batch = example_input(spec, batch_size, device=_device(model))
    saving = torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor)
    with _evaluating(model), torch.enable_grad(), _layer_outputs(model, record), saving:
        model(batch)
    return {
        "batch_size": batch_size,
        "activation_bytes": sum(outputs),
        "saved_for_backward_bytes": sum(saved.values()),
        "parameter_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "buffer_bytes": sum(b.numel() * b.element_size() for b in model.buffers()),
    }


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.zeros(())).device


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block (batch statistics and dropout would make a measurement random)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _is_layer(module: nn.Module) -> bool:
    return not list(module.children()) or any(True for _ in module.parameters(recurse=False))


@contextmanager
def _layer_outputs(model: nn.Module, callback: Any) -> Iterator[None]:
    """Call ``callback(name, module, output)`` after each layer's forward during the block."""
    hooks = []
    for name, module in model.named_modules():
        if name and _is_layer(module):
            hooks.append(module.register_forward_hook(lambda mod, _inputs, out, name=name: callback(name, mod, out)))
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _parameters_per_layer(model: nn.Module, layers: set[str]) -> dict[str, int]:
    """Parameters of each layer that ran, counting those of sub-modules without a row of their own."""
    owner: dict[int, str] = {}
    for name, module in model.named_modules():  # parents come first, so the deepest layer wins
        if name in layers:
            owner.update((id(p), name) for p in module.parameters())
    counts = dict.fromkeys(layers, 0)
    for p in model.parameters():
        if id(p) in owner:
            counts[owner[id(p)]] += p.numel()
    return counts


def _flops_per_layer(model: nn.Module, layers: set[str], per_module: dict[str, Any]) -> dict[str, int]:
    """FLOPs of each layer minus those of the layers nested in it (FlopCounterMode counts subtrees)."""
    root = type(model).__name__  # FlopCounterMode names modules "<root class>.<path>"
    own: dict[str, int] = {}
    for name in sorted(layers, key=lambda n: -n.count(".")):  # deepest first
        subtree = int(sum(per_module.get(f"{root}.{name}", {}).values()))
        own[name] = subtree - sum(f for inner, f in own.items() if inner.startswith(name + "."))
    return own


def _tensor_bytes(value: Any) -> int:
    """Bytes of every tensor in a (nested) output; an RNN returns ``(output, (h, c))``."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):  # PackedSequence is a tuple too
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _storage(tensor: torch.Tensor) -> tuple[int, int]:
    """``(identity, bytes)`` of the memory behind ``tensor``, so views of one buffer count once."""
    try:
        storage = tensor.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage (e.g. mkldnn)
        return id(tensor), tensor.numel() * tensor.element_size()


def _rnn_layer_flops(input_shape: Any, w_ih: Any, w_hh: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten.mkldnn_rnn_layer`` (one layer, one direction: LSTM on CPU).

    Each weight matrix multiplies one vector per time step and sequence, i.e. per input row.
    """
    return 2 * math.prod(input_shape[:-1]) * (math.prod(w_ih) + math.prod(w_hh))


def _cudnn_rnn_flops(input_shape: Any, weights: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten._cudnn_rnn`` (all layers and directions; the same rule per 2-D weight)."""
    matrices = [w for w in weights if len(w) == 2]
    return 2 * math.prod(input_shape[:-1]) * sum(math.prod(w) for w in matrices)


def _cpu_attention_flops(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten._scaled_dot_product_flash_attention_for_cpu``: ``Q K^T`` then ``(.) V``.

    Shapes are ``batch x heads x length x head_dim``.
    """
    *batch, q_len, qk_dim = query
    k_len, v_dim = key[-2], value[-1]
    return 2 * math.prod(batch) * q_len * k_len * (qk_dim + v_dim)


def _fused_kernel_flop_formulas() -> dict[Any, Any]:
    """Formulas for the fused kernels FlopCounterMode lacks, where this PyTorch build has them."""
    formulas = {}
    for op_name, formula in (
        ("mkldnn_rnn_layer", _rnn_layer_flops),
        ("_cudnn_rnn", _cudnn_rnn_flops),
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_attention_flops),
    ):
        if hasattr(torch.ops.aten, op_name):
            formulas[getattr(torch.ops.aten, op_name)] = formula
    return formulas
