"""Fine-tuning (cnnkit.train.finetune): the lecture's modes leave frozen parameters bit for bit where they
were, the head learns at its own learning rate, and a bad optimiser name is refused before training."""
import numpy as np
import pytest

import cnnkit
from cnnkit import models

from .standins import loaders


def test_finetune_head_mode_moves_only_a_new_head():
    cnnkit.manual_seed(0)
    model = models.create("lenet5", num_classes=10)
    model.c1.weight.data[...] = 0.1                      # "pre-trained" body: fixed known values
    body = {k: p.data.copy() for k, p in model.named_parameters() if not k.startswith("output.")}
    train, val = loaders()
    # 6×6 blobs padded to LeNet's 32×32 input, three classes: a new 3-way head
    pad = [(x, y) for x, y in train]

    class Padded:
        def __iter__(self):
            for x, y in pad:
                yield cnnkit.tensor(np.pad(x.data, ((0, 0), (0, 0), (13, 13), (13, 13)))), y

        def __len__(self):
            return len(pad)

    history = cnnkit.train.finetune(model, Padded(), num_classes=3, mode="head", lr=1e-2, epochs=2, seed=0,
                                    log=False, progress=False)
    assert len(history) == 2 and model.output.weight.shape == (3, 84)
    for k, p in model.named_parameters():
        if k in body:
            assert np.array_equal(p.data, body[k]) and not p.requires_grad, k
    assert model.output.weight.requires_grad


def test_finetune_refuses_an_unknown_optimizer():
    model = models.create("lenet5")
    with pytest.raises(ValueError, match="finetune: optimizer must be 'adam' or 'sgd', got 'lbfgs'"):
        cnnkit.train.finetune(model, [], optimizer="lbfgs")
