"""The unpacked twin of text RNNs equals the packed original for every cell, direction, depth and pool."""

from __future__ import annotations

import pytest
import torch

from glassnet.compress.unpacked import UnpackedRecurrent, needs_unpacking
from glassnet.data import DataSpec
from glassnet.models import create_model

SPEC = DataSpec(modality="text", input_shape=(15,), task="classify", num_outputs=3, extra={"vocab_size": 60})


def _padded_batch() -> torch.Tensor:
    x = torch.randint(1, 60, (6, 15), generator=torch.Generator().manual_seed(0))
    for i, length in enumerate([15, 10, 3, 1, 7, 0]):  # the last row is all padding
        x[i, length:] = 0
    return x


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("pool", ["last", "mean", "max"])
def test_unpacked_twin_equals_the_packed_model(cell, bidirectional, layers, pool):
    torch.manual_seed(0)
    model = create_model(cell, SPEC, hidden=8, embedding_dim=6, bidirectional=bidirectional, layers=layers, pool=pool)
    model.eval()
    x = _padded_batch()
    assert torch.allclose(UnpackedRecurrent(model)(x), model(x), atol=1e-5)


def test_only_text_recurrent_models_need_it():
    sequence = DataSpec(modality="sequence", input_shape=(10, 2), task="classify", num_outputs=2)
    assert needs_unpacking(create_model("lstm", SPEC))
    assert not needs_unpacking(create_model("lstm", sequence))
    assert not needs_unpacking(torch.nn.Linear(2, 2))
