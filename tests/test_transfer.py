"""Transfer learning: replace the head, freeze exactly, the three fine-tuning modes."""
import numpy as np
import pytest

import cnnkit
from cnnkit import models, nn, optim, transfer
from cnnkit.nn import functional as F


@pytest.mark.parametrize("name,size", [("lenet5", (1, 32, 32)), ("resnet20", (3, 32, 32)),
                                       ("resnet18", (3, 64, 64)), ("mobilenet_v1", (3, 64, 64)),
                                       ("googlenet", (3, 64, 64)), ("alexnet", (3, 227, 227))])
def test_replace_head_works_whatever_the_head_is_called(name, size):
    model = models.create(name)
    old_name, old = transfer.find_head(model)
    head = transfer.replace_head(model, 7)
    assert transfer.find_head(model) == (old_name, head)
    assert head.out_features == 7 and head.in_features == old.in_features
    model.eval()
    with cnnkit.no_grad():
        assert model(cnnkit.zeros((1,) + size)).shape == (1, 7)
    assert model.config["kwargs"]["num_classes"] == 7
    rebuilt = models.rebuild(model.config)
    assert set(rebuilt.state_dict()) == set(model.state_dict())


def test_freezing_is_exact_and_the_optimiser_holds_no_state_for_frozen_parameters():
    cnnkit.manual_seed(0)
    model = models.create("resnet20")
    transfer.replace_head(model, 3)
    transfer.freeze(model)                                     # everything but the head
    frozen = {k: p.data.copy() for k, p in model.named_parameters() if not p.requires_grad}
    assert set(frozen) == {k for k in model.state_dict() if k.endswith(("weight", "bias"))} - {"fc.weight", "fc.bias"}
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x = cnnkit.randn(4, 3, 16, 16)
    y = cnnkit.tensor(np.array([0, 1, 2, 0]))
    head_before = model.fc.weight.data.copy()
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for k, p in model.named_parameters():
        if k in frozen:
            assert np.array_equal(p.data, frozen[k]), k
            assert p.grad is None
    assert not np.array_equal(model.fc.weight.data, head_before)
    state_ids = set(opt.state_dict()["state"])
    assert len(state_ids) == 2                                  # fc.weight and fc.bias only


def test_freeze_until_and_by_name_and_unfreeze():
    model = models.create("resnet18", num_classes=4)
    transfer.freeze(model, until="layer3")
    status = {name: all(not p.requires_grad for p in m.parameters()) for name, m in model.named_children()
              if any(True for _ in m.parameters())}
    assert status == {"conv1": True, "bn1": True, "layer1": True, "layer2": True, "layer3": True,
                      "layer4": False, "fc": False}
    transfer.unfreeze(model)
    transfer.freeze(model, "layer1", "fc")
    assert not model.fc.weight.requires_grad and not model.layer1[0].conv1.weight.requires_grad
    assert model.layer2[0].conv1.weight.requires_grad
    with pytest.raises(ValueError, match=r"until='layer9' is not a top-level child of ResNet; choose one of"):
        transfer.freeze(model, until="layer9")
    with pytest.raises(ValueError, match=r"has no submodule 'nope'"):
        transfer.freeze(model, "nope")


@pytest.mark.parametrize("mode", transfer.MODES)
def test_modes_and_parameter_groups(mode):
    model = models.create("resnet18", num_classes=4)
    transfer.apply_mode(model, mode)
    counts = transfer.trainable_summary(model)
    head = sum(p.numel() for p in model.fc.parameters())
    if mode == "head":
        assert counts["trainable"] == head
    elif mode == "later":
        assert head < counts["trainable"] < counts["total"]
        assert not model.conv1.weight.requires_grad and model.layer4[0].conv1.weight.requires_grad
    else:
        assert counts["frozen"] == 0
    groups = transfer.param_groups(model, lr=1e-3)
    assert groups[-1]["lr"] == 1e-2 and sum(p.numel() for g in groups for p in g["params"]) == counts["trainable"]
    with pytest.raises(ValueError, match="fine-tuning mode must be one of head, later, all, got 'some'"):
        transfer.apply_mode(model, "some")


def test_replace_head_rejects_bad_class_counts():
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        transfer.replace_head(models.create("lenet5"), 0)
