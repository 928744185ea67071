"""Structured pruning of glassnet's recurrent models (``rnn``, ``lstm``, ``gru``): remove hidden units
and embedding dimensions, so the recurrent layers really shrink.

Torch-Pruning cannot trace packed sequences, and its LSTM pruner fails on the unpacked twin, so
recurrent models get this pruner of their own. A hidden unit of layer ``l``, direction ``d`` owns
its rows in every gate of ``weight_ih``, ``weight_hh`` and both biases (4 gates for LSTM, 3 for GRU,
1 for RNN), its column of ``weight_hh`` (its own recurrent output) and one input column of whatever
reads the layer: the next layer's ``weight_ih`` in both directions, or the head. An embedding
dimension owns one column of the embedding table and of the first layer's ``weight_ih`` in both
directions. Removing a unit removes all of them.

Importance is Torch-Pruning's group magnitude: for each weight a unit owns, the squared L2 norm of
that slice, divided by the mean over the layer's units (so a large table does not drown a small
matrix), averaged over the slices. ``nn.LSTM`` has one ``hidden_size`` for every layer and
direction, so each keeps the same number of units, chosen independently. The result is an ordinary
``RecurrentNet`` with a smaller ``hidden`` (and ``embedding_dim``): its hyper-parameters are updated
to match, so ``create_model`` rebuilds it and ``save_compressed`` / ``save_model`` store it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from glassnet.compress.checks import check_amount, check_steps
from glassnet.errors import ConfigError
from glassnet.models.recurrent import RecurrentNet

GATES: dict[type[nn.RNNBase], int] = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}

FineTune = Callable[[nn.Module], None]


def is_recurrent(model: nn.Module) -> bool:
    """Whether ``model`` is one of glassnet's recurrent networks (which this pruner handles)."""
    return isinstance(model, RecurrentNet)


def recurrent_prune(
    model: nn.Module,
    amount: float,
    steps: int = 1,
    fine_tune: FineTune | None = None,
    embedding: bool = True,
) -> nn.Module:
    """Remove the least important hidden units (and embedding dimensions) of a copy of ``model``.

    Args:
        model: a trained ``rnn`` / ``lstm`` / ``gru`` (``RecurrentNet``), left untouched.
        amount: fraction of the hidden units of every layer and direction to remove in the end
            (0 < amount < 1), and of the embedding dimensions when ``embedding`` is set.
        steps: remove them in this many rounds of equal size, calling ``fine_tune`` after each.
        fine_tune: ``fine_tune(model)`` trains the shrunk model in place; None for none.
        embedding: also remove the same fraction of the token embedding's dimensions (text models).

    Returns:
        The pruned copy, in eval mode, with ``glassnet_arch`` hyper-parameters (``hidden``,
        ``embedding_dim``) giving its new sizes.

    Raises:
        ConfigError: the model is not a glassnet recurrent network, uses LSTM projections, the
            fraction or steps are invalid, or too few units are left to remove any.
    """
    amount = check_amount(amount)
    check_steps(steps)
    if not is_recurrent(model):
        raise ConfigError(
            f"recurrent unit pruning is for glassnet's rnn / lstm / gru models. Received: {type(model).__name__}"
        )
    if getattr(model.rnn, "proj_size", 0):
        raise ConfigError("recurrent unit pruning does not handle LSTMs with projections (proj_size > 0)")
    hidden = model.rnn.hidden_size
    width = model.embedding.embedding_dim if model.text and embedding else None
    removed = round(hidden * amount)
    if not 0 < removed < hidden:
        raise ConfigError(
            f"pruning {amount:.0%} of {hidden} hidden units removes {removed} and leaves {hidden - removed}: "
            "choose a fraction that removes at least one unit and keeps at least one"
        )
    pruned = copy.deepcopy(model).eval()
    for step in range(1, steps + 1):
        share = amount * step / steps
        keep_hidden = hidden - round(hidden * share)
        keep_width = None if width is None else max(1, width - round(width * share))
        shrink(pruned, keep_hidden, keep_width)
        if fine_tune is not None:
            fine_tune(pruned)
            pruned.eval()
    return pruned.eval()


def shrink(net: RecurrentNet, hidden: int, embedding_dim: int | None = None) -> None:
    """Narrow ``net`` in place to ``hidden`` units per layer and direction (and ``embedding_dim``
    embedding dimensions), keeping those with the largest group magnitude."""
    rnn = net.rnn
    if hidden > rnn.hidden_size:
        raise ConfigError(f"cannot grow {rnn.hidden_size} hidden units to {hidden}")
    head = _head_linear(net)
    old_hidden, directions, gates = rnn.hidden_size, 2 if rnn.bidirectional else 1, GATES[type(rnn)]
    keep_units = _rank_units(net, head, gates, hidden)
    keep_inputs = torch.arange(rnn.input_size)
    if embedding_dim is not None and net.text and embedding_dim < net.embedding.embedding_dim:
        keep_inputs = _rank_embedding(net, embedding_dim)
        old = net.embedding
        net.embedding = _embedding(old, old.weight.detach()[:, keep_inputs])
    new = type(rnn)(
        len(keep_inputs),
        hidden,
        num_layers=rnn.num_layers,
        bias=rnn.bias,
        batch_first=rnn.batch_first,
        dropout=rnn.dropout,
        bidirectional=rnn.bidirectional,
        **({"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}),
    ).to(rnn.weight_ih_l0.device, rnn.weight_ih_l0.dtype)
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            columns = keep_inputs if layer == 0 else _outputs(keep_units[layer - 1], old_hidden)
            for direction, suffix in enumerate(_suffixes(directions)):
                units = keep_units[layer][direction]
                rows = torch.cat([gate * old_hidden + units for gate in range(gates)])
                name = f"l{layer}{suffix}"
                getattr(new, f"weight_ih_{name}").copy_(getattr(rnn, f"weight_ih_{name}")[rows][:, columns])
                getattr(new, f"weight_hh_{name}").copy_(getattr(rnn, f"weight_hh_{name}")[rows][:, units])
                if rnn.bias:
                    for kind in ("bias_ih", "bias_hh"):
                        getattr(new, f"{kind}_{name}").copy_(getattr(rnn, f"{kind}_{name}")[rows])
    new.train(rnn.training)
    net.rnn = new
    columns = _outputs(keep_units[-1], old_hidden)
    narrow = nn.Linear(len(columns), head.out_features, bias=head.bias is not None).to(
        head.weight.device, head.weight.dtype
    )
    with torch.no_grad():
        narrow.weight.copy_(head.weight[:, columns])
        if head.bias is not None:
            narrow.bias.copy_(head.bias)
    _replace(net.head, head, narrow)
    arch = getattr(net, "glassnet_arch", None)
    if arch is not None:
        hparams = {**arch["hparams"], "hidden": hidden}
        if net.text:
            hparams["embedding_dim"] = net.embedding.embedding_dim
        net.glassnet_arch = {**arch, "hparams": hparams}


def _suffixes(directions: int) -> tuple[str, ...]:
    return ("", "_reverse")[:directions]


def _outputs(units: list[torch.Tensor], hidden: int) -> torch.Tensor:
    """Columns of a layer's output (directions concatenated) that the kept units occupy."""
    return torch.cat([direction * hidden + kept for direction, kept in enumerate(units)])


def _head_linear(net: RecurrentNet) -> nn.Linear:
    linears = [m for m in net.head.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise ConfigError(f"expected one Linear layer in the recurrent model's head, found {len(linears)}")
    return linears[0]


def _replace(parent: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for name, child in parent.named_children():
        if child is old:
            setattr(parent, name, new)
            return
    raise ConfigError("the head's Linear layer is not a direct child of the head")


def _embedding(old: nn.Embedding, weight: torch.Tensor) -> nn.Embedding:
    table = nn.Embedding(weight.shape[0], weight.shape[1], padding_idx=old.padding_idx).to(weight.device, weight.dtype)
    with torch.no_grad():
        table.weight.copy_(weight)
    return table


def _normalised(scores: torch.Tensor) -> torch.Tensor:
    """Squared norms divided by their mean (Torch-Pruning's ``normalizer="mean"``)."""
    mean = scores.mean()
    return scores / mean if mean > 0 else scores


def _rank_units(net: RecurrentNet, head: nn.Linear, gates: int, keep: int) -> list[list[torch.Tensor]]:
    """For every layer and direction, the sorted indices of the ``keep`` most important units."""
    rnn = net.rnn
    hidden, directions = rnn.hidden_size, 2 if rnn.bidirectional else 1
    kept: list[list[torch.Tensor]] = []
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            if layer + 1 < rnn.num_layers:
                readers = [getattr(rnn, f"weight_ih_l{layer + 1}{s}") for s in _suffixes(directions)]
            else:
                readers = [head.weight]
            per_direction = []
            for direction, suffix in enumerate(_suffixes(directions)):
                name = f"l{layer}{suffix}"
                parts = []
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    tensor = getattr(rnn, f"{kind}_{name}", None)
                    if tensor is None:
                        continue
                    squared = tensor.detach().float().pow(2).reshape(gates, hidden, -1).sum(dim=(0, 2))
                    parts.append(_normalised(squared))
                parts.append(_normalised(getattr(rnn, f"weight_hh_{name}").detach().float().pow(2).sum(dim=0)))
                columns = slice(direction * hidden, (direction + 1) * hidden)
                for reader in readers:
                    parts.append(_normalised(reader.detach().float()[:, columns].pow(2).sum(dim=0)))
                score = torch.stack(parts).mean(dim=0)
                per_direction.append(torch.sort(torch.topk(score, keep).indices).values)
            kept.append(per_direction)
    return kept


def _rank_embedding(net: RecurrentNet, keep: int) -> torch.Tensor:
    """Sorted indices of the ``keep`` most important embedding dimensions."""
    rnn = net.rnn
    directions = 2 if rnn.bidirectional else 1
    with torch.no_grad():
        parts = [_normalised(net.embedding.weight.detach().float().pow(2).sum(dim=0))]
        for suffix in _suffixes(directions):
            parts.append(_normalised(getattr(rnn, f"weight_ih_l0{suffix}").detach().float().pow(2).sum(dim=0)))
        score = torch.stack(parts).mean(dim=0)
    return torch.sort(torch.topk(score, keep).indices).values
