"""Starting from pre-trained weights: read them from anywhere, load all but the head, fine-tune.

:func:`read_pretrained` takes a run directory of ``cnnkit train``, a cnnkit weights or checkpoint
file, a plain ``.safetensors``/``.pth`` state dict or the name of registered weights
(:mod:`cnnkit.models.weights`); :func:`load_backbone` loads it into a model built for the new task,
keeping the model's fresh head; :func:`finetune` trains what the model leaves trainable, or sets one of
the lecture's three modes first (:func:`cnnkit.transfer.apply_mode`). ``cnnkit train --from SOURCE --freeze MODE`` is built on the
first two.
"""
from __future__ import annotations

from pathlib import Path

from .. import nn, optim
from ..io.torch_weights import load_torch_state_dict, read_state_dict
from ..models.weights import get_weights, read_weights
from ..transfer import apply_mode, find_head, param_groups, replace_head
from .checkpoint import load_checkpoint, load_weights
from .trainer import fit

__all__ = ["read_pretrained", "load_backbone", "finetune"]


def read_pretrained(source, cache_dir=None) -> dict:
    """The state dict ``{key: array}`` in ``source``: a run directory of ``cnnkit train`` (its
    ``model.safetensors``, else ``checkpoint.safetensors``), a cnnkit weights or checkpoint file, a
    plain ``.safetensors`` or PyTorch ``.pth`` state dict, or the name of registered weights
    (:mod:`cnnkit.models.weights`, downloaded into ``cache_dir`` on first use)."""
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
                return dict(load_weights(path))
            if kind == "cnnkit-checkpoint":
                return dict(load_checkpoint(path).weights)
        return dict(read_state_dict(path))
    try:
        w = get_weights(str(source))
    except ValueError:
        raise FileNotFoundError(f"{str(source)!r} is neither a weights file, a run directory nor the name of "
                                "registered weights (see `cnnkit weights list`)") from None
    state = read_weights(w, cache_dir)
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
        >>> cnnkit.train.load_backbone(model, "ResNet18_Weights.IMAGENET1K_V1")
        >>> cnnkit.transfer.apply_mode(model, "head")
    """
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


def finetune(model: nn.Module, train_loader, val_loader=None, *, num_classes: int | None = None,
             mode: str | None = None, lr: float = 1e-3, head_lr: float | None = None, epochs: int = 10,
             optimizer: str = "adam", weight_decay: float = 0.0, seed: int | None = None, **fit_kwargs):
    """Fine-tune a pre-trained ``model`` on new data.

    What trains is decided by the model's own ``requires_grad`` flags: freeze first
    (:func:`cnnkit.transfer.freeze`, :func:`~cnnkit.transfer.apply_mode`) and ``finetune`` trains exactly the
    parameters left trainable. ``mode`` is the shortcut for the lecture's three modes: it sets the flags
    itself (``apply_mode``), replacing any earlier freeze.

    Args:
        num_classes: when given, the head is replaced first (:func:`cnnkit.transfer.replace_head`; the new
            head trains).
        mode: ``None`` (default: keep the model's frozen and trainable parameters as they are), ``"head"``
            (train only the head), ``"later"`` (freeze the early half of the network) or ``"all"`` (train
            everything); see :func:`cnnkit.transfer.apply_mode`.
        lr, head_lr: learning rates of the body and of the head (default ``10·lr`` for the head).
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9); frozen parameters are never given to it.
        fit_kwargs: passed to :func:`~cnnkit.train.fit` (``out_dir``, ``early_stopping``, ``progress``…).

    Returns:
        the training :class:`cnnkit.train.History`.

    Example::

        >>> cnnkit.transfer.freeze(model, until="layer3")       # conv1 … layer3 frozen
        >>> cnnkit.train.finetune(model, train_loader, lr=1e-3)  # layer4 and the head learn
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"finetune: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if num_classes is not None:
        replace_head(model, num_classes)
    if mode is not None:
        apply_mode(model, mode)
    groups = param_groups(model, lr, head_lr)
    if not groups:
        raise ValueError("finetune: every parameter of the model is frozen; unfreeze some "
                         "(cnnkit.transfer.unfreeze) or pass mode='head'|'later'|'all'")
    if optimizer == "adam":
        opt = optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    else:
        opt = optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    return fit(model, train_loader, val_loader, epochs=epochs, optimizer=opt, seed=seed, **fit_kwargs)
