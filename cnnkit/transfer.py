"""Transfer learning in one line: replace the head, freeze what should not move, fine-tune.

The lecture's recipe: start from a pre-trained CNN, replace the classification head with your own,
then train with (a) every convolutional layer frozen and only the head learning, (b) the early
layers frozen (they extract low-level features common to most tasks) or (c) nothing frozen —
depending on how much data you have and how close your task is to the original one.

Example::

    model = cnnkit.models.create("resnet18")
    cnnkit.io.load_torch_state_dict(model, "resnet18.safetensors")
    head = cnnkit.transfer.replace_head(model, num_classes=5)
    cnnkit.transfer.freeze(model, until="layer3")        # conv1 … layer3 frozen; layer4 + head learn
"""
from __future__ import annotations

import math

import numpy as np

from . import nn

__all__ = ["find_head", "replace_head", "freeze", "unfreeze", "trainable_summary", "param_groups", "MODES",
           "apply_mode", "finetune", "read_pretrained", "load_backbone"]

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


def finetune(model: nn.Module, train_loader, val_loader=None, *, num_classes: int | None = None,
             mode: str = "head", lr: float = 1e-3, head_lr: float | None = None, epochs: int = 10,
             optimizer: str = "adam", weight_decay: float = 0.0, seed: int | None = None, **fit_kwargs):
    """Fine-tune a pre-trained ``model`` on new data in one of the lecture's three modes.

    Args:
        num_classes: when given, the head is replaced first (:func:`replace_head`).
        mode: ``"head"`` (train only the new head), ``"later"`` (freeze the early half of the network)
            or ``"all"`` (train everything); see :func:`apply_mode`.
        lr, head_lr: learning rates of the body and of the head (default ``10·lr`` for the head).
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9); frozen parameters are never given to it.
        fit_kwargs: passed to :func:`cnnkit.train.fit` (``out_dir``, ``early_stopping``, ``progress``…).

    Returns:
        the training :class:`cnnkit.train.History`.
    """
    from . import optim
    from .train import fit

    if num_classes is not None:
        replace_head(model, num_classes)
    apply_mode(model, mode)
    groups = param_groups(model, lr, head_lr)
    if optimizer == "adam":
        opt = optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"finetune: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    return fit(model, train_loader, val_loader, epochs=epochs, optimizer=opt, seed=seed, **fit_kwargs)


def read_pretrained(source, cache_dir=None) -> dict:
    """The state dict ``{key: array}`` in ``source``: a run directory of ``cnnkit train`` (its
    ``model.safetensors``, else ``checkpoint.safetensors``), a cnnkit weights or checkpoint file, a
    plain ``.safetensors`` or PyTorch ``.pth`` state dict, or the name of registered weights
    (:mod:`cnnkit.io.weights`, downloaded into ``cache_dir`` on first use)."""
    from pathlib import Path

    from .io.torch_weights import read_state_dict
    path = Path(source)
    if path.is_dir():
        found = [path / n for n in ("model.safetensors", "checkpoint.safetensors") if (path / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{str(path)!r} holds neither model.safetensors nor checkpoint.safetensors "
                                    "(is it a run directory of `cnnkit train`?)")
        path = found[0]
    if path.is_file():
        if path.suffix.lower() == ".safetensors":
            from safetensors import safe_open
            try:
                with safe_open(str(path), framework="np") as fh:
                    kind = (fh.metadata() or {}).get("format")
            except Exception:  # damaged: read_state_dict below names the problem
                kind = None
            if kind == "cnnkit-weights":
                from .train import load_weights
                return dict(load_weights(path))
            if kind == "cnnkit-checkpoint":
                from .train import load_checkpoint
                return dict(load_checkpoint(path).weights)
        return dict(read_state_dict(path))
    from .io import weights as registry
    try:
        w = registry.get_weights(str(source))
    except ValueError:
        raise FileNotFoundError(f"{str(source)!r} is neither a weights file, a run directory nor the name of "
                                "registered weights (see `cnnkit weights list`)") from None
    state = read_state_dict(registry.download_weights(w, cache_dir))
    return {k: v for k, v in state.items() if not k.startswith(tuple(w.ignore_prefixes))}


def load_backbone(model: nn.Module, source, cache_dir=None):
    """Load pre-trained weights into ``model`` except a classification head of another size.

    ``model`` is built for the new task (e.g. ``num_classes=5``); the file's head (e.g. 1,000 ImageNet
    classes) is skipped and the model's fresh head kept. Every other key must match: a missing,
    unexpected or mis-shaped key is a ``ValueError`` listing them (e.g. a 3-channel network's weights
    for 1-channel data). ``source``: see :func:`read_pretrained`. Returns the
    :class:`~cnnkit.io.torch_weights.LoadReport` (the skipped head keys under ``missing``).

    Example::

        >>> model = cnnkit.models.create("resnet18", num_classes=5)
        >>> cnnkit.transfer.load_backbone(model, "ResNet18_Weights.IMAGENET1K_V1")
        >>> cnnkit.transfer.apply_mode(model, "head")
    """
    from .io.torch_weights import load_torch_state_dict
    state = read_pretrained(source, cache_dir)
    head_name = find_head(model)[0]
    own = model.state_dict()
    head_keys = {k for k in own if k.startswith(head_name + ".")}
    state = {k: v for k, v in state.items()
             if not (k in head_keys and tuple(getattr(v, "shape", ())) != tuple(own[k].shape))}
    report = load_torch_state_dict(model, state, strict=False)
    problems = [k for k in report.missing if k not in head_keys] + report.unexpected + report.mismatched
    if problems:
        raise ValueError(f"the weights in {str(source)!r} do not fit {type(model).__name__} beyond its head "
                         f"{head_name!r}:\n{report}")
    return report
