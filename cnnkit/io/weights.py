"""Pre-trained weights by name, torchvision-style: ``create("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1")``.

Each entry is a :class:`Weights`: the zoo model it fits (and the builder arguments that make the
keys match, e.g. ``variant="torchvision"``), where the file is published, its checksum and a
``meta`` dict (categories or number of classes, parameters, MACs, input size, normalisation). Files
are downloaded on request into a cache (``$CNNKIT_HOME/weights``, else ``~/.cache/cnnkit/weights``)
through :func:`cnnkit.files.download_url` — resumable, atomic, checked before the file gets its name.

The built-in entries are torchvision's ImageNet-1k files. torchvision publishes for them only the
first 8 hex digits of the SHA-256, in the file name, and that prefix is what torchvision itself
verifies; cnnkit verifies the same prefix and says so (``meta["sha256_kind"] == "prefix"``).
Entries registered with a full 64-digit hash are verified in full.

A ``.pth`` file is read only through PyTorch (``weights_only=True``); without PyTorch, a
``.safetensors`` file of the same name in the cache is used instead, and the error message gives
the ``cnnkit convert`` command that makes one.

Example::

    >>> w = cnnkit.io.weights.get_weights("ResNet18_Weights.IMAGENET1K_V1")
    >>> w.meta["num_params"], w.meta["input_size"], w.meta["mean"]
    (11689512, (3, 224, 224), (0.485, 0.456, 0.406))
    >>> model = cnnkit.models.create("resnet18")
    >>> report = cnnkit.io.weights.load_weights(model, w)        # downloads once, then from the cache
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Weights", "get_weights", "list_weights", "register_weights", "unregister_weights",
           "default_cache_dir", "download_weights", "load_weights", "create_with_weights", "IMAGENET_MEAN",
           "IMAGENET_STD"]

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
        meta: ``categories`` (or ``None``), ``num_classes``, ``num_params``, ``macs``, ``input_size``
            ``(C, H, W)``, ``resize_size``, ``mean``, ``std``, ``source`` (the URL), ``sha256``,
            ``sha256_kind`` (``"full"`` or ``"prefix"``), ``file_name``, ``license``/``recipe``/notes.
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


_REGISTRY: dict = {}
_DEFAULTS: dict = {}          # model name → default weights name


def _lookup_model(model: str) -> str:
    from ..models.registry import _lookup
    return _lookup(model)


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
        meta: ``categories``, ``num_classes``, ``input_size``, ``mean``, ``std`` … Missing
            ``num_params``/``macs`` are measured with :func:`cnnkit.summary` on the model built here.
        model_kwargs: builder arguments that make the keys match.
        default: make these the model's ``weights="DEFAULT"``.
        replace: overwrite an entry of the same name (otherwise that is a ``ValueError``).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register_weights: name must be a non-empty string, got {name!r}")
    key = name.lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"register_weights: {name!r} is already registered (pass replace=True to overwrite)")
    model = _lookup_model(model)
    urls = (url,) if isinstance(url, str) else tuple(url)
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise ValueError(f"register_weights({name!r}): url must be a URL or a list of URLs, got {url!r}")
    sha256 = _check_hash(sha256, f"register_weights({name!r})")
    kwargs = dict(model_kwargs or {})
    meta = dict(meta or {})
    categories = meta.get("categories")
    if categories:
        meta.setdefault("num_classes", len(categories))
    if not {"num_params", "macs", "input_size", "num_classes"} <= set(meta):
        from ..analysis import summary
        from ..models import create, default_input_size
        from ..transfer import find_head
        built = create(model, **kwargs)
        meta.setdefault("input_size", tuple(default_input_size(built)))
        total = summary(built, tuple(meta["input_size"])).total
        meta.setdefault("num_params", int(total["params"]))
        meta.setdefault("macs", int(total["macs"]))
        head = find_head(built)[1]
        meta.setdefault("num_classes", getattr(head, "out_features", None) or head.out_channels)
    meta.setdefault("categories", None)
    meta.update(source=urls[0], sha256=sha256, sha256_kind="full" if len(sha256) == 64 else "prefix")
    meta["input_size"] = tuple(meta["input_size"])
    w = Weights(name, model, urls, sha256, kwargs, tuple(ignore_prefixes), meta)
    _REGISTRY[key] = w
    if default or model not in _DEFAULTS:
        _DEFAULTS[model] = name
    return w


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
    model = _lookup_model(model) if model is not None else None
    return sorted((w for w in _REGISTRY.values() if model is None or w.model == model), key=lambda w: w.name)


def get_weights(name, model: str | None = None) -> Weights:
    """The :class:`Weights` named ``name`` (a :class:`Weights` is returned as is).

    ``"DEFAULT"`` (with ``model``) or ``"ResNet50_Weights.DEFAULT"`` give a model's default weights.
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
        if owner is not None and _lookup_model(owner) in _DEFAULTS:
            return _REGISTRY[_DEFAULTS[_lookup_model(owner)].lower()]
    if key in _REGISTRY:
        return _REGISTRY[key]
    known = [w.name for w in list_weights(model)] if model is not None else [w.name for w in list_weights()]
    raise ValueError(f"unknown weights {name!r}" + (f" for {model}" if model else "") +
                     f"; known: {', '.join(known) or 'none'} (see `cnnkit weights list`)")


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
    from ..files import download_url
    w = get_weights(name)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = cache / w.file_name
    if dest.is_file():
        return dest
    # a full SHA-256, or (torchvision's files) the prefix in the file name: download_url checks either
    return download_url(list(w.urls), dest, w.sha256, w.meta.get("file_size"), retries=retries, quiet=quiet)


def _read(path: Path):
    from .torch_weights import read_state_dict
    converted = path.with_suffix(".safetensors")
    if path.suffix.lower() != ".safetensors" and converted.is_file():
        return read_state_dict(converted)           # made by `cnnkit convert`: no PyTorch needed
    return read_state_dict(path)


def load_weights(model, name, cache_dir=None, *, strict: bool = True, quiet: bool = False):
    """Download (once) and load the weights ``name`` into ``model`` by key; returns the
    :class:`~cnnkit.io.torch_weights.LoadReport`.

    Keys under the entry's ``ignore_prefixes`` that the model lacks (GoogLeNet's aux heads) are
    dropped. With ``strict`` any other missing, unexpected or mis-shaped key is a ``ValueError``
    listing them all (e.g. after :func:`cnnkit.transfer.replace_head`: load first, then replace).
    """
    from .torch_weights import load_torch_state_dict
    w = get_weights(name)
    path = download_weights(w, cache_dir, quiet=quiet)
    state = _read(path)
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
    from ..models.registry import _BUILDERS
    model = _lookup_model(model)
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
    net = _BUILDERS[model](**merged)
    load_weights(net, w, cache_dir, quiet=quiet)
    return net


# ----------------------------------------------------------------------------- torchvision's files
# (zoo model, registry name, file name, num_params, MACs in G as torchvision reports them ("GFLOPS"),
#  ImageNet-1k top-1/top-5 as torchvision reports them, builder arguments)
_TV = "https://download.pytorch.org/models/"
_TORCHVISION = (
    ("alexnet", "AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", 61_100_840, 0.714, (56.522, 79.066),
     {"variant": "torchvision"}),
    ("vgg11", "VGG11_Weights.IMAGENET1K_V1", "vgg11-8a719046.pth", 132_863_336, 7.609, (69.02, 88.628), {}),
    ("vgg13", "VGG13_Weights.IMAGENET1K_V1", "vgg13-19584684.pth", 133_047_848, 11.308, (69.928, 89.246), {}),
    ("vgg16", "VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth", 138_357_544, 15.47, (71.592, 90.382), {}),
    ("vgg19", "VGG19_Weights.IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", 143_667_240, 19.632, (72.376, 90.876), {}),
    ("vgg11_bn", "VGG11_BN_Weights.IMAGENET1K_V1", "vgg11_bn-6002323d.pth", 132_868_840, 7.609, (70.37, 89.81), {}),
    ("vgg13_bn", "VGG13_BN_Weights.IMAGENET1K_V1", "vgg13_bn-abd245e5.pth", 133_053_736, 11.308, (71.586, 90.374),
     {}),
    ("vgg16_bn", "VGG16_BN_Weights.IMAGENET1K_V1", "vgg16_bn-6c64b313.pth", 138_365_992, 15.47, (73.36, 91.516), {}),
    ("vgg19_bn", "VGG19_BN_Weights.IMAGENET1K_V1", "vgg19_bn-c79401a0.pth", 143_678_248, 19.632, (74.218, 91.842),
     {}),
    ("resnet18", "ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth", 11_689_512, 1.814, (69.758, 89.078), {}),
    ("resnet34", "ResNet34_Weights.IMAGENET1K_V1", "resnet34-b627a593.pth", 21_797_672, 3.664, (73.314, 91.42), {}),
    ("resnet50", "ResNet50_Weights.IMAGENET1K_V1", "resnet50-0676ba61.pth", 25_557_032, 4.089, (76.13, 92.862), {}),
    ("resnet50", "ResNet50_Weights.IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 25_557_032, 4.089, (80.858, 95.434), {}),
    ("resnet101", "ResNet101_Weights.IMAGENET1K_V1", "resnet101-63fe2227.pth", 44_549_160, 7.801, (77.374, 93.546),
     {}),
    ("resnet101", "ResNet101_Weights.IMAGENET1K_V2", "resnet101-cd907fc2.pth", 44_549_160, 7.801, (81.886, 95.78),
     {}),
    ("resnet152", "ResNet152_Weights.IMAGENET1K_V1", "resnet152-394f9c45.pth", 60_192_808, 11.514, (78.312, 94.046),
     {}),
    ("resnet152", "ResNet152_Weights.IMAGENET1K_V2", "resnet152-f82ba261.pth", 60_192_808, 11.514, (82.284, 96.002),
     {}),
    ("googlenet", "GoogLeNet_Weights.IMAGENET1K_V1", "googlenet-1378be20.pth", 6_624_904, 1.498, (69.778, 89.53),
     {"variant": "torchvision"}),
)
# torchvision's default is the best entry of each model (V2 where there is one).
_TV_DEFAULTS = {"ResNet50_Weights.IMAGENET1K_V2", "ResNet101_Weights.IMAGENET1K_V2", "ResNet152_Weights.IMAGENET1K_V2"}


def _register_torchvision() -> None:
    for model, name, file_name, params, gmacs, (top1, top5), kwargs in _TORCHVISION:
        v2 = name.endswith("_V2")
        meta = {
            "categories": None,        # ImageNet-1k's 1,000 class names are not bundled with cnnkit
            "num_classes": 1000, "num_params": params, "macs": round(gmacs * 1e9), "input_size": (3, 224, 224),
            "resize_size": 232 if v2 else 256, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            "metrics": {"ImageNet-1K": {"acc@1": top1, "acc@5": top5}}, "file_name": file_name,
            "license": "BSD-3-Clause (torchvision); ImageNet terms of access apply",
            "recipe": "https://github.com/pytorch/vision/tree/main/references/classification",
        }
        ignore = ()
        if model == "googlenet":
            # torchvision builds the pre-trained GoogLeNet with transform_input=True, which turns an
            # ImageNet-normalised input into (x − 0.5)/0.5: the weights expect mean = std = 0.5.
            meta["mean"], meta["std"] = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
            meta["note"] = ("torchvision's transform_input: normalise with mean = std = 0.5; the file's "
                            "aux1/aux2 heads are dropped unless the model has aux_logits=True")
            ignore = ("aux1.", "aux2.")
        sha = file_name.rsplit("-", 1)[1].split(".")[0]
        w = Weights(name, model, (_TV + file_name,), sha, dict(kwargs), ignore,
                    {**meta, "source": _TV + file_name, "sha256": sha, "sha256_kind": "prefix"})
        _REGISTRY[name.lower()] = w
        if model not in _DEFAULTS or name in _TV_DEFAULTS:
            _DEFAULTS[model] = name


_register_torchvision()
