"""An export-friendly twin of a text ``RecurrentNet``: the same weights and outputs, without packing.

Text RNNs pack their variable-length sequences (``pack_padded_sequence``), which neither ONNX
exporter of torch 2.13 can trace. Because padding sits at the end of each sequence, the forward
direction can run over the padded batch unchanged (a step never sees the pads that follow it); the
backward direction runs over each sequence reversed *within its length*, so it starts at the last
real token, exactly as the packed version does. Outputs at padded steps are zeroed, as
``pad_packed_sequence`` leaves them. The result exports to ONNX's native LSTM / GRU / RNN operators.
"""

from __future__ import annotations

import torch
from torch import nn

from glassnet.models.recurrent import RecurrentNet


def needs_unpacking(model: nn.Module) -> bool:
    """Whether ``model`` is a text ``RecurrentNet`` (the kind that packs its inputs)."""
    return isinstance(model, RecurrentNet) and model.text


class UnpackedRecurrent(nn.Module):
    """Wraps a text ``RecurrentNet`` (sharing its embedding and head) for export; eval mode only."""

    def __init__(self, net: RecurrentNet) -> None:
        super().__init__()
        self.net = net
        rnn = net.rnn
        self.directions = 2 if rnn.bidirectional else 1
        self.layers = nn.ModuleList()
        for layer in range(rnn.num_layers):
            for suffix in ("", "_reverse")[: self.directions]:
                input_size = rnn.input_size if layer == 0 else rnn.hidden_size * self.directions
                single = type(rnn)(input_size, rnn.hidden_size, num_layers=1, batch_first=True, **_cell_options(rnn))
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    source = getattr(rnn, f"{name}_l{layer}{suffix}", None)
                    if source is not None:
                        getattr(single, f"{name}_l0").data.copy_(source.data)
                self.layers.append(single)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        lengths = (x != net.pad_index).sum(dim=1).clamp_min(1)
        steps = torch.arange(x.shape[1], device=x.device)
        valid = steps[None, :] < lengths[:, None]
        # index that reverses each sequence within its length and leaves the padding in place
        reverse = torch.where(valid, lengths[:, None] - 1 - steps[None, :], steps[None, :])
        inputs = net.embedding(x)
        finals: list[torch.Tensor] = []
        for layer in range(len(self.layers) // self.directions):
            forward_out = self.layers[layer * self.directions](inputs)[0]
            outputs = [forward_out]
            if self.directions == 2:
                backward_in = _gather_steps(inputs, reverse)
                backward_out = _gather_steps(self.layers[layer * 2 + 1](backward_in)[0], reverse)
                outputs.append(backward_out)
            inputs = torch.cat(outputs, dim=2)
            finals = [_gather_steps(forward_out, (lengths - 1)[:, None]).squeeze(1)]
            if self.directions == 2:
                finals.append(outputs[1][:, 0])  # the backward pass ends at the first token
        outputs = inputs * valid.unsqueeze(-1)
        if net.per_step:
            return net.head(outputs)
        if net.pool == "last":
            return net.head(torch.cat(finals, dim=1))
        return net.head(net._summarise(outputs, None, lengths))


def _gather_steps(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, t]]`` for every batch row ``b`` and step ``t``."""
    return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[2]))


def _cell_options(rnn: nn.RNNBase) -> dict[str, object]:
    return {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
