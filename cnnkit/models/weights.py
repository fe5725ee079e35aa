"""Pre-trained weights by name, torchvision-style: ``create("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1")``.

Each entry is a :class:`Weights`: the zoo model it fits (and the builder arguments that make the
keys match, e.g. ``variant="torchvision"``), where the file is published, its checksum and a
``meta`` dict (categories or number of classes, parameters, MACs, input size, normalisation).
As in torchvision, the entries are declared beside the models that use them (``resnet.py`` holds
the ResNets' files, ``vgg.py`` the VGGs', ...) and their metadata is written there as data: nothing
is built or measured at registration. ``tests/models/test_weights.py`` checks the published
parameter and MAC figures against the models and :func:`cnnkit.summary`.

Files are downloaded on request into a cache (``$CNNKIT_HOME/weights``, else
``~/.cache/cnnkit/weights``) by :func:`cnnkit.files.download_url` (a layer below: resumable,
atomic, checked before the file gets its name) and loaded by key with
:func:`cnnkit.io.load_torch_state_dict`.

The built-in entries are torchvision's ImageNet-1k files. torchvision publishes for them only the
first 8 hex digits of the SHA-256, in the file name, and that prefix is what torchvision itself
verifies; cnnkit verifies the same prefix and says so (``meta["sha256_kind"] == "prefix"``).
Entries registered with a full 64-digit hash are verified in full.

A ``.pth`` file is read only through PyTorch (``weights_only=True``); without PyTorch, a
``.safetensors`` file of the same name in the cache is used instead, and the error message gives
the ``cnnkit convert`` command that makes one.

Example::

    >>> w = cnnkit.models.get_weights("ResNet18_Weights.IMAGENET1K_V1")
    >>> w.meta["num_params"], w.meta["input_size"], w.meta["mean"]
    (11689512, (3, 224, 224), (0.485, 0.456, 0.406))
    >>> model = cnnkit.models.create("resnet18", weights=w)      # downloads once, then from the cache
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..files import download_url
from ..io.torch_weights import load_torch_state_dict, read_state_dict
from .registry import canonical_name, default_input_size

__all__ = ["Weights", "get_weights", "list_weights", "default_weights", "register_weights", "unregister_weights",
           "torchvision_weights", "default_cache_dir", "download_weights", "read_weights", "load_weights",
           "create_with_weights", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Weights:
    """One named set of pre-trained weights.

    Attributes:
        name: the registry name, e.g. ``"ResNet18_Weights.IMAGENET1K_V1"``.
        model: the zoo model it loads into (``cnnkit.models.names()``).
        urls: where the file is published (mirrors of the same bytes, tried in order).
        sha256: the full hex SHA-256 (64 digits) or a prefix of it (at least 8 digits).
        model_kwargs: builder arguments that make the state-dict keys match (``{"variant": "torchvision"}``).
        ignore_prefixes: keys in the file the default model does not have and that may be dropped
            (torchvision's GoogLeNet file carries its auxiliary heads ``aux1.``/``aux2.``).
        meta: ``categories`` (or ``None``), ``num_classes``, ``num_params``, ``macs`` (``None`` where the
            registration gave none), ``input_size`` ``(C, H, W)``, ``resize_size``, ``mean``, ``std``,
            ``source`` (the URL), ``sha256``, ``sha256_kind`` (``"full"`` or ``"prefix"``), ``file_name``,
            ``license``/``recipe``/notes.
    """

    name: str
    model: str
    urls: tuple
    sha256: str
    model_kwargs: dict = field(default_factory=dict)
    ignore_prefixes: tuple = ()
    meta: dict = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return self.meta.get("file_name") or self.urls[0].rstrip("/").rsplit("/", 1)[-1]

    @property
    def sha256_kind(self) -> str:
        return "full" if len(self.sha256) == 64 else "prefix"

    def __repr__(self) -> str:
        return f"Weights({self.name!r}, model={self.model!r}, sha256 {self.sha256_kind} {self.sha256[:12]})"


_REGISTRY: dict = {}          # lower-cased name → Weights
_DEFAULTS: dict = {}          # model name → default weights name


def _check_hash(sha256, owner: str) -> str:
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256):
        raise ValueError(f"{owner}: sha256 must be the hex SHA-256 (64 digits) or a prefix of at least 8 "
                         f"digits, got {sha256!r}")
    return sha256.lower()


def register_weights(name: str, model: str, url, sha256: str, *, meta: dict | None = None,
                     model_kwargs: dict | None = None, ignore_prefixes=(), default: bool = False,
                     replace: bool = False) -> Weights:
    """Add named weights to the registry (and return them).

    Args:
        name: registry name (``"MyNet_Weights.V1"``); looked up case-insensitively.
        model: zoo model name. url: the download URL, or a list of mirrors.
        sha256: full hex SHA-256, or a prefix of at least 8 hex digits (verified as a prefix).
        meta: ``categories``, ``num_classes``, ``num_params``, ``macs``, ``input_size``, ``mean``,
            ``std`` … as published with the file: they are stored, not measured. ``num_classes``
            defaults to the number of ``categories``, ``input_size`` to the model's
            (:func:`~cnnkit.models.default_input_size` with ``model_kwargs``); what is not given is ``None``.
        model_kwargs: builder arguments that make the keys match.
        default: make these the model's ``weights="DEFAULT"`` (otherwise the model's first entry is).
        replace: overwrite an entry of the same name (otherwise that is a ``ValueError``).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register_weights: name must be a non-empty string, got {name!r}")
    key = name.lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"register_weights: {name!r} is already registered (pass replace=True to overwrite)")
    model = canonical_name(model)
    urls = (url,) if isinstance(url, str) else tuple(url)
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise ValueError(f"register_weights({name!r}): url must be a URL or a list of URLs, got {url!r}")
    sha256 = _check_hash(sha256, f"register_weights({name!r})")
    kwargs = dict(model_kwargs or {})
    meta = dict(meta or {})
    meta.setdefault("categories", None)
    meta.setdefault("num_classes", len(meta["categories"]) if meta["categories"] else None)
    meta.setdefault("num_params", None)
    meta.setdefault("macs", None)
    meta["input_size"] = tuple(meta["input_size"]) if "input_size" in meta else default_input_size(model, **kwargs)
    meta.update(source=urls[0], sha256=sha256, sha256_kind="full" if len(sha256) == 64 else "prefix")
    w = Weights(name, model, urls, sha256, kwargs, tuple(ignore_prefixes), meta)
    _REGISTRY[key] = w
    if default or model not in _DEFAULTS:
        _DEFAULTS[model] = name
    return w


def torchvision_weights(model: str, name: str, file_name: str, num_params: int, gmacs: float, accuracy: tuple,
                        *, resize_size: int = 256, model_kwargs: dict | None = None, default: bool = False,
                        **meta) -> Weights:
    """Register one of torchvision's ImageNet-1k files (``https://download.pytorch.org/models/<file_name>``).

    Args:
        num_params, gmacs: the parameters and the MACs in G as torchvision publishes them (its "GFLOPS").
        accuracy: ``(acc@1, acc@5)`` on ImageNet-1k as torchvision publishes them.
        resize_size: the short side an image is resized to before the 224 centre crop (256; 232 for V2).
        meta: more entries (``mean``/``std`` where they differ from ImageNet's, ``note``,
            ``ignore_prefixes``).

    The SHA-256 prefix is the one in the file name, as torchvision verifies it.
    """
    url = "https://download.pytorch.org/models/" + file_name
    ignore = meta.pop("ignore_prefixes", ())
    info = {"categories": None,        # ImageNet-1k's 1,000 class names are not bundled with cnnkit
            "num_classes": 1000, "num_params": num_params, "macs": round(gmacs * 1e9), "input_size": (3, 224, 224),
            "resize_size": resize_size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            "metrics": {"ImageNet-1K": {"acc@1": accuracy[0], "acc@5": accuracy[1]}}, "file_name": file_name,
            "license": "BSD-3-Clause (torchvision); ImageNet terms of access apply",
            "recipe": "https://github.com/pytorch/vision/tree/main/references/classification", **meta}
    sha = file_name.rsplit("-", 1)[1].split(".")[0]
    return register_weights(name, model, url, sha, meta=info, model_kwargs=model_kwargs, ignore_prefixes=ignore,
                            default=default)


def unregister_weights(name: str) -> None:
    """Remove named weights from the registry (tests register their own and clean up)."""
    w = _REGISTRY.pop(str(name).lower(), None)
    if w is None:
        raise ValueError(f"unregister_weights: no weights named {name!r}")
    if _DEFAULTS.get(w.model) == w.name:
        del _DEFAULTS[w.model]
        for other in _REGISTRY.values():
            if other.model == w.model:
                _DEFAULTS[w.model] = other.name
                break


def list_weights(model: str | None = None) -> list[Weights]:
    """Every registered :class:`Weights` (of ``model`` only, if given), sorted by name."""
    model = canonical_name(model) if model is not None else None
    return sorted((w for w in _REGISTRY.values() if model is None or w.model == model), key=lambda w: w.name)


def default_weights(model: str) -> Weights | None:
    """The weights ``weights="DEFAULT"`` gives for ``model`` (``None`` if it has none registered)."""
    name = _DEFAULTS.get(canonical_name(model))
    return _REGISTRY[name.lower()] if name is not None else None


def get_weights(name, model: str | None = None) -> Weights:
    """The :class:`Weights` named ``name`` (a :class:`Weights` is returned as is).

    ``"DEFAULT"`` (with ``model``), ``"ResNet50_Weights.DEFAULT"`` or a model's name (``"resnet50"``) give
    that model's default weights.
    An unknown name raises ``ValueError`` listing the known ones (of ``model`` when given).
    """
    if isinstance(name, Weights):
        return name
    if not isinstance(name, str):
        raise TypeError(f"weights must be a name (str) or a Weights entry, got {type(name).__name__}")
    key = name.lower()
    if key.endswith("default"):
        owner = model
        if owner is None and key.endswith(".default"):
            prefix = key[:-len(".default")]
            owner = next((w.model for w in _REGISTRY.values() if w.name.lower().startswith(prefix + ".")), None)
        found = default_weights(owner) if owner is not None else None
        if found is not None:
            return found
    if key in _REGISTRY:
        return _REGISTRY[key]
    try:                                         # a model's name: its default weights
        owner = canonical_name(name)
    except ValueError:
        owner = None
    if owner is not None and (model is None or canonical_name(model) == owner):
        found = default_weights(owner)
        if found is not None:
            return found
        with_weights = sorted({w.model for w in _REGISTRY.values()}, key=_zoo_order)
        raise ValueError(f"model {owner} has no registered weights; models with weights: {', '.join(with_weights)}")
    known = [w.name for w in list_weights(model)]
    raise ValueError(f"unknown weights {name!r}" + (f" for {model}" if model else "") +
                     f"; known: {', '.join(known) or 'none'} (see `cnnkit weights list`)")


def _zoo_order(model: str) -> int:
    """Position of ``model`` in :func:`cnnkit.models.names` (the zoo's natural order)."""
    from .registry import names
    order = names()
    return order.index(model) if model in order else len(order)


def default_cache_dir() -> Path:
    """``$CNNKIT_HOME/weights`` if ``CNNKIT_HOME`` is set, else ``~/.cache/cnnkit/weights``."""
    home = os.environ.get("CNNKIT_HOME")
    return Path(home) / "weights" if home else Path.home() / ".cache" / "cnnkit" / "weights"


def download_weights(name, cache_dir=None, *, quiet: bool = False, retries: int = 2) -> Path:
    """Download the file of weights ``name`` into ``cache_dir`` (default :func:`default_cache_dir`)
    unless it is there already; verify its SHA-256 (in full, or the published prefix); return its path.

    Raises:
        cnnkit.files.ChecksumError: the bytes do not match (the download is deleted).
        cnnkit.files.DownloadError: every URL failed (a partial file is kept to resume next time).
    """
    w = get_weights(name)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = cache / w.file_name
    if dest.is_file():
        return dest
    # a full SHA-256, or (torchvision's files) the prefix in the file name: download_url checks either
    return download_url(list(w.urls), dest, w.sha256, w.meta.get("file_size"), retries=retries, quiet=quiet)


def read_weights(name, cache_dir=None, *, quiet: bool = False) -> dict:
    """The state dict ``{key: array}`` in the file of weights ``name`` (downloaded once). A ``.safetensors``
    file beside a cached ``.pth`` (made by ``cnnkit convert``) is read instead: no PyTorch needed."""
    w = get_weights(name)
    path = download_weights(w, cache_dir, quiet=quiet)
    converted = path.with_suffix(".safetensors")
    if path.suffix.lower() != ".safetensors" and converted.is_file():
        path = converted
    return dict(read_state_dict(path))


def load_weights(model, name, cache_dir=None, *, strict: bool = True, quiet: bool = False):
    """Download (once) and load the weights ``name`` into ``model`` by key; returns the
    :class:`~cnnkit.io.torch_weights.LoadReport`.

    Keys under the entry's ``ignore_prefixes`` that the model lacks (GoogLeNet's aux heads) are
    dropped. With ``strict`` any other missing, unexpected or mis-shaped key is a ``ValueError``
    listing them all (e.g. after :func:`cnnkit.transfer.replace_head`: load first, then replace).
    """
    w = get_weights(name)
    state = read_weights(w, cache_dir, quiet=quiet)
    own = model.state_dict()
    if w.ignore_prefixes:
        state = {k: v for k, v in state.items() if k in own or not k.startswith(tuple(w.ignore_prefixes))}
    return load_torch_state_dict(model, state, strict=strict)


def create_with_weights(model: str, weights, *, cache_dir=None, quiet: bool = False, **kwargs):
    """Build zoo model ``model`` and load ``weights`` into it: what ``cnnkit.models.create(model,
    weights=...)`` calls.

    The entry's ``model_kwargs`` (e.g. ``variant="torchvision"``) are applied; a ``num_classes``
    different from the weights' is refused (load, then :func:`cnnkit.transfer.replace_head`).
    """
    from .registry import create
    model = canonical_name(model)
    w = get_weights(weights, model=model)
    if w.model != model:
        raise ValueError(f"weights {w.name!r} are for {w.model}, not {model}")
    merged = dict(w.model_kwargs)
    for k, v in kwargs.items():
        if k in merged and merged[k] != v:
            raise ValueError(f"{model}(weights={w.name!r}) needs {k}={merged[k]!r}, got {k}={v!r}")
        merged[k] = v
    expected = w.meta.get("num_classes")
    if expected is not None and "num_classes" in merged and merged["num_classes"] != expected:
        raise ValueError(f"{model}(weights={w.name!r}): the weights have {expected} classes, got "
                         f"num_classes={merged['num_classes']}; load them, then call "
                         f"cnnkit.transfer.replace_head(model, {merged['num_classes']})")
    if expected is not None and "num_classes" not in merged:
        merged["num_classes"] = expected
    net = create(model, **merged)
    load_weights(net, w, cache_dir, quiet=quiet)
    return net
