"""Transfer learning's model surgery: find and replace the head, freeze what should not move.

The lecture's recipe: start from a pre-trained CNN, replace the classification head with your own,
then train with (a) every convolutional layer frozen and only the head learning, (b) the early
layers frozen (they extract low-level features common to most tasks) or (c) nothing frozen —
depending on how much data you have and how close your task is to the original one
(:func:`apply_mode`). Loading the pre-trained weights but the head and training are
:func:`cnnkit.train.load_backbone` and :func:`cnnkit.train.finetune`, a layer above.

Example::

    model = cnnkit.models.create("resnet18")
    cnnkit.io.load_torch_state_dict(model, "resnet18.safetensors")
    head = cnnkit.transfer.replace_head(model, num_classes=5)
    cnnkit.transfer.freeze(model, until="layer3")        # conv1 … layer3 frozen; layer4 + head learn
    history = cnnkit.train.finetune(model, train_loader)  # trains what is left trainable
"""
from __future__ import annotations

import math

import numpy as np

from . import nn

__all__ = ["find_head", "replace_head", "freeze", "unfreeze", "trainable_summary", "param_groups", "MODES",
           "apply_mode"]

MODES = ("head", "later", "all")


def find_head(model: nn.Module) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` of the classification head: the last ``Linear`` (or, after
    ``fc_to_conv``, the last ``Conv2d``) in the order the model defines its layers."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and not name.startswith("aux"):
            last = (name, m)
    if last is None:
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                last = (name, m)
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to use as a classification head")
    return last


def _set_submodule(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent = model
    *path, leaf = dotted.split(".")
    for part in path:
        parent = getattr(parent, part)
    if isinstance(parent, nn.Sequential) and leaf.isdigit():
        parent._modules[leaf] = new
    else:
        setattr(parent, leaf, new)


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the classification head with a fresh layer giving ``num_classes`` outputs; returns the new head.

    Works for every zoo model whatever its head is called (``fc``, ``classifier.6``, ``output``, a 1×1
    conv after ``fc_to_conv``). The model's recorded ``config`` is updated so a checkpoint rebuilds it.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive int, got {num_classes!r}")
    name, old = find_head(model)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, stride=old.stride, padding=old.padding,
                        bias=old.bias is not None)
    new.to(old.weight.dtype)
    _set_submodule(model, name, new)
    config = getattr(model, "config", None)
    if isinstance(config, dict):
        config.setdefault("kwargs", {})["num_classes"] = num_classes
    return new


def _top_level(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return list(model.named_children())


def _resolve(model: nn.Module, names) -> list[nn.Module]:
    known = dict(model.named_modules())
    out = []
    for n in names:
        if n not in known:
            raise ValueError(f"{type(model).__name__} has no submodule {n!r}; top-level children: "
                             f"{', '.join(k for k, _ in _top_level(model))}")
        out.append(known[n])
    return out


def freeze(model: nn.Module, *names: str, until: str | None = None, head: bool = False) -> nn.Module:
    """Stop gradients to some parameters (``requires_grad = False``).

    * ``freeze(model, "features")`` — the named submodules.
    * ``freeze(model, until="layer3")`` — every top-level child up to and including ``layer3``.
    * ``freeze(model)`` — everything except the classification head (``head=True`` freezes it too).

    An optimiser built afterwards from ``filter(lambda p: p.requires_grad, model.parameters())`` (or
    any torch-style optimiser, which skips parameters without a gradient) leaves them bit-for-bit unchanged.
    """
    if names and until is not None:
        raise ValueError("freeze: give submodule names or until=, not both")
    if names:
        for m in _resolve(model, names):
            m.requires_grad_(False)
        return model
    if until is not None:
        children = _top_level(model)
        keys = [k for k, _ in children]
        if until not in keys:
            raise ValueError(f"freeze: until={until!r} is not a top-level child of {type(model).__name__}; "
                             f"choose one of {', '.join(keys)}")
        for k, m in children[:keys.index(until) + 1]:
            m.requires_grad_(False)
        return model
    model.requires_grad_(False)
    if not head:
        find_head(model)[1].requires_grad_(True)
    return model


def unfreeze(model: nn.Module, *names: str) -> nn.Module:
    """Let gradients flow again: to the named submodules, or (no names) to the whole model."""
    for m in (_resolve(model, names) if names else [model]):
        m.requires_grad_(True)
    return model


def apply_mode(model: nn.Module, mode: str) -> nn.Module:
    """The lecture's three fine-tuning modes.

    * ``"head"`` — every layer frozen except the classification head (little data, similar task);
    * ``"later"`` — the first half of the top-level blocks frozen (early layers keep their
      low-level features), the rest and the head learn;
    * ``"all"`` — nothing frozen (plenty of data, or a different task).
    """
    if mode not in MODES:
        raise ValueError(f"fine-tuning mode must be one of {', '.join(MODES)}, got {mode!r}")
    unfreeze(model)
    if mode == "head":
        freeze(model)
    elif mode == "later":
        children = [(k, m) for k, m in _top_level(model) if any(True for _ in m.parameters())]
        head_name = find_head(model)[0].split(".")[0]
        body = [k for k, _ in children if k != head_name]
        if body:
            freeze(model, *body[:max(1, math.ceil(len(body) / 2))])
    return model


def param_groups(model: nn.Module, lr: float, head_lr: float | None = None) -> list[dict]:
    """Optimiser parameter groups: the head at ``head_lr`` (default ``10·lr``), the other trainable
    parameters at ``lr``. Frozen parameters are left out, so the optimiser holds no state for them."""
    head_ids = {id(p) for p in find_head(model)[1].parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    head = [p for p in model.parameters() if p.requires_grad and id(p) in head_ids]
    groups = []
    if body:
        groups.append({"params": body, "lr": lr})
    if head:
        groups.append({"params": head, "lr": 10 * lr if head_lr is None else head_lr})
    return groups


def trainable_summary(model: nn.Module) -> dict:
    """Counts of trainable and frozen parameters (each shared tensor once)."""
    trainable = sum(int(np.prod(p.shape)) for p in model.parameters() if p.requires_grad)
    frozen = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.requires_grad)
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}
