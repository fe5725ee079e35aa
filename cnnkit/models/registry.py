"""The model registry: ``create(name, **kwargs)``, ``names()``, ``default_input_size(name)``.

Every builder is registered with :func:`register_model`, which also makes the builder record how
it was called. After ``model = cnnkit.models.resnet18(num_classes=10)`` (or
``cnnkit.models.create("resnet18", num_classes=10)``)::

    model.config == {"name": "resnet18", "kwargs": {"num_classes": 10}}

Only the arguments the caller gave are recorded (positional ones under their names), so a
checkpoint that stores ``model.config`` next to the state dict can rebuild the same network with
``create(config["name"], **config["kwargs"])`` and load the weights by key. The kwargs are plain
JSON values (numbers, strings, booleans, lists); tuples come back from JSON as lists, which every
builder accepts.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import re

__all__ = ["register_model", "create", "names", "canonical_name", "default_input_size", "rebuild"]

_BUILDERS: dict = {}
_INPUT_SIZES: dict = {}


def register_model(name: str | None = None, input_size: tuple = (3, 224, 224)):
    """Decorator: register a builder under ``name`` with its default ``(C, H, W)`` input size.

    The wrapped builder sets ``model.config = {"name": name, "kwargs": {...}}`` on the model it returns.
    """
    def wrap(fn):
        key = name or fn.__name__
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def builder(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"cnnkit.models.{key}: {e}") from None
            model = fn(*args, **kwargs)
            model.config = {"name": key, "kwargs": dict(bound.arguments)}
            return model

        _BUILDERS[key] = builder
        _INPUT_SIZES[key] = tuple(input_size)
        return builder
    return wrap


def names() -> list[str]:
    """Names of every registered model (the names :func:`create` accepts), in natural order:
    ``resnet18 < resnet20 < resnet34 < … < resnet101 < resnet110 < resnet152``."""
    return sorted(_BUILDERS, key=lambda n: [(int(t), "") if t.isdigit() else (-1, t) for t in re.split(r"(\d+)", n)])


def canonical_name(name) -> str:
    """The registered name that ``name`` means: ``"ResNet-18"`` → ``"resnet18"`` (case, ``-`` and ``_``
    are ignored). An unknown name raises ``ValueError`` listing the known ones and suggesting close matches."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    if name in _BUILDERS:
        return name
    lowered = name.lower().replace("-", "_")
    squeezed = {k.replace("_", ""): k for k in _BUILDERS}
    if lowered.replace("_", "") in squeezed:
        return squeezed[lowered.replace("_", "")]
    close = difflib.get_close_matches(lowered, list(_BUILDERS), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown model {name!r}.{hint} Known models: {', '.join(names())}")


def create(name: str, weights=None, **kwargs):
    """Build the registered model ``name`` with ``kwargs`` (``"ResNet-18"`` finds ``resnet18``: case,
    ``-`` and ``_`` are ignored).

    ``weights`` names pre-trained weights, torchvision-style (``"DEFAULT"`` or a name from
    ``cnnkit weights list``): they are downloaded once into the cache, checksum-verified and loaded
    by key. ``None`` (default) gives freshly initialised weights.

    Raises ``ValueError`` for an unknown name, listing the known ones and suggesting close matches.

    Example::

        >>> model = cnnkit.models.create("resnet20")
        >>> model.config
        {'name': 'resnet20', 'kwargs': {}}
    """
    if weights is not None:  # named pre-trained weights (cnnkit weights list): downloaded once, verified
        from .weights import create_with_weights
        return create_with_weights(canonical_name(name), weights, **kwargs)
    return _BUILDERS[canonical_name(name)](**kwargs)


def rebuild(config: dict):
    """Build a model again from its recorded ``model.config`` (e.g. one read from a checkpoint)."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"model config must be a dict with a 'name' key, got {config!r}")
    if config["name"] == "from_pattern":
        from .pattern import from_pattern
        model = from_pattern(**config.get("kwargs", {}))
    else:
        model = create(config["name"], **config.get("kwargs", {}))
    if config.get("fc_to_conv"):
        from .convert import fc_to_conv
        model = fc_to_conv(model, input_size=tuple(config["fc_to_conv"]["input_size"]), inplace=True)
    return model


def default_input_size(name_or_model, **kwargs) -> tuple[int, int, int]:
    """Default ``(C, H, W)`` input of a model, given its name (and the builder arguments ``kwargs``) or a
    model built by this package.

    ``default_input_size("lenet5") == (1, 32, 32)``, ``("alexnet") == (3, 227, 227)`` (the original;
    ``("alexnet", variant="torchvision")`` takes 224), ``("xception") == (3, 299, 299)``,
    ``("resnet18", in_channels=1) == (1, 224, 224)``.
    """
    if isinstance(name_or_model, str):
        config = {"name": canonical_name(name_or_model), "kwargs": kwargs}
    else:
        config = getattr(name_or_model, "config", None)
        if not isinstance(config, dict) or "name" not in config:
            raise ValueError(f"{type(name_or_model).__name__} was not built by cnnkit.models "
                             "(no model.config): pass the input size explicitly")
    kwargs = config.get("kwargs", {})
    if config["name"] == "from_pattern":
        return tuple(kwargs.get("input_size", (3, 32, 32)))
    if config["name"] == "alexnet" and kwargs.get("variant", "original") == "torchvision":
        return (3, 224, 224)
    c, h, w = _INPUT_SIZES[canonical_name(config["name"])]
    return (int(kwargs.get("in_channels", c)), h, w)
