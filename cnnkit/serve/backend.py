"""What the explorer shows, computed: one model, its report, and the inputs it has seen.

Every import of the rest of cnnkit that the explorer makes is in this module (open a run, build a zoo
model, the report, the data sets, image decoding and the pictures of :mod:`cnnkit.viz`), so that a
reorganisation of those packages touches one file here.

:class:`Explorer` holds the model and the cache of inputs: each input is run through the model once,
:func:`cnnkit.viz.maps.activation_maps` copying every leaf layer's output while forward pre-hooks copy
the inputs of the layers whose values the page derives (an in-place ReLU would otherwise overwrite a
convolution's output); later requests read those arrays by the input's id.
"""
from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Explorer", "Recorded", "InputError", "NotFound", "open_explorer", "MAX_PIXELS"]

#: The largest image the explorer decodes (width × height): a 10 MB PNG can hold billions of pixels.
MAX_PIXELS = 40_000_000
#: Data sets whose images are digits drawn light on dark: uploads and drawings go through prepare_digit.
DIGIT_SETS = {"digits", "mnist", "mnist-5k"}
#: Layers whose inputs are kept: the ones whose values the page derives (w·x + b, a pooling window).
DERIVED = {"Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "BatchNorm1d"}


class InputError(ValueError):
    """A request the explorer cannot serve as asked (the message says why): answered with 400."""


class NotFound(LookupError):
    """An input id, layer, channel or sample that does not exist: answered with 404."""


@dataclass
class Recorded:
    """One input and everything the model computed from it (all per image, batch axis dropped)."""
    id: str
    x: np.ndarray                                   # (C, H, W) the model's input, normalised
    shown: np.ndarray                               # (C, H, W) in [0, 1]: the input as a picture
    outputs: "OrderedDict[str, np.ndarray]"         # layer → its output, in execution order
    inputs: dict                                    # layer → its input (DERIVED layers only)
    probabilities: np.ndarray                       # (K,) float64
    logits: np.ndarray                              # (K,)
    source: str = ""
    nbytes: int = 0
    seconds: float = 0.0                            # the forward pass that recorded it
    hits: int = 0                                   # times it was asked for again (the same picture)


@dataclass
class Explorer:
    """A model ready to be explored: built from a run directory or the zoo.

    Attributes:
        model: the module, in eval mode.
        name: its zoo name (or the run's model name); ``title``: what the page calls it.
        classes, input_size, mean, std: as the run's ``config.json`` records them (zoo: 0..K-1, [0, 1]).
        trained: False for a zoo model with its random initial weights.
        data: the data set's name (or folder) the run was trained on, or ``None``.
    """
    model: object
    name: str
    title: str
    classes: list
    input_size: tuple
    mean: tuple
    std: tuple
    trained: bool
    data: str | None = None
    source: str = ""
    prepare: dict | None = None
    split: tuple = (0, 0.1)                         # the run's split seed and validation fraction
    cache_bytes: int = 1 << 30
    _cache: "OrderedDict[str, Recorded]" = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)          # the cache (held briefly)
    _model_lock: threading.Lock = field(default_factory=threading.Lock)    # a pass through the model
    _summary: object = None
    _samples: object = None
    _modules: dict = field(default_factory=dict)
    _patches: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ the report
    @property
    def summary(self):
        if self._summary is None:
            from ..analysis import summary
            self._summary = summary(self.model, self.input_size, name=self.name)
        return self._summary

    def layers(self) -> list:
        """The leaf layers in the order they run, as the architecture strip shows them."""
        return [r for r in self.summary.layers if r.leaf and not r.repeat and r.called]

    def module(self, layer: str):
        if not self._modules:
            self._modules = dict(self.model.named_modules())
        if layer not in self._modules or layer == "":
            raise NotFound(f"{self.title} has no layer named {layer!r}")
        return self._modules[layer]

    def record(self, layer: str):
        for r in self.layers():
            if r.name == layer:
                return r
        raise NotFound(f"{self.title} has no layer named {layer!r}")

    def explain(self, layer: str) -> str:
        from ..analysis import explain
        self.record(layer)
        return explain(self.model, layer=layer, input_size=self.input_size)

    # ------------------------------------------------------------------ inputs
    @property
    def digit_model(self) -> bool:
        """Uploads and drawings get MNIST's preparation: the run records it (``prepare``), or it was
        trained on digits drawn light on dark."""
        kind = (self.prepare or {}).get("kind")
        return self.input_size[0] == 1 and (kind == "digit" or (kind is None and str(self.data).lower() in DIGIT_SETS))

    def _digit(self, im) -> np.ndarray:
        """:func:`cnnkit.data.prepare_digit` at the run's size (28 padded to 32 for LeNet-5), resized if the
        model's input is another size."""
        from ..data import prepare_digit, resize_images
        _, h, w = self.input_size
        size = int((self.prepare or {}).get("size") or (h if h == w and h >= 28 else 28))
        try:
            x = prepare_digit(im, size=size)[None]                      # (1, S, S) white ink on black
        except ValueError as exc:
            raise InputError(f"cannot read a digit in this picture: {exc}") from None
        if x.shape[1:] != (h, w):
            x = np.clip(resize_images(x[None], (h, w))[0], 0.0, 1.0)
        return x.astype(np.float32)

    def decode(self, data: bytes) -> np.ndarray:
        """Image file bytes → the model's input picture ``(C, H, W)`` in [0, 1] (not yet normalised).

        Digit models get MNIST's preprocessing (invert if dark on light, crop to the ink, 20-pixel box,
        centre of mass); other models a conversion to their channels and a bilinear resize.
        """
        from PIL import Image, UnidentifiedImageError

        try:
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise InputError(f"image is {w}×{h} pixels; the explorer reads at most {MAX_PIXELS:,} pixels")
            im.load()
        except UnidentifiedImageError:
            raise InputError("not an image: the upload could not be decoded as PNG, JPEG, GIF, BMP, TIFF or WebP "
                             f"({len(data):,} bytes)") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"not a readable image: {exc}") from None
        if self.digit_model:
            return self._digit(im)
        # the conversion training images went through (cnnkit.data.load_image: 16-bit greys, palettes,
        # grey ↔ RGB, bilinear resize), which reads a file: the decoded bytes, written for it and removed
        import tempfile

        from ..data import load_image
        with tempfile.NamedTemporaryFile(prefix="cnnkit-serve-", suffix=f".{(im.format or 'img').lower()}") as f:
            f.write(data)
            f.flush()
            try:
                return load_image(f.name, self.input_size)
            except ValueError as exc:
                raise InputError(f"not a readable image: {str(exc).replace(f.name, 'the upload')}") from None

    def samples(self):
        """The test split of the run's data set (images in [0, 1] at the model's size), or ``None``."""
        if self._samples is None:
            self._samples = False
            if self.data is not None and self.trained:
                from ..data import load
                kw = {"size": tuple(self.input_size[1:])}
                if Path(self.data).is_dir():                                     # an image folder
                    kw["mode"] = "L" if self.input_size[0] == 1 else "RGB"
                try:
                    splits = load(self.data, seed=self.split[0], val_fraction=self.split[1], **kw)
                except Exception:  # noqa: BLE001  (a set not downloaded, a folder moved: no samples, say why)
                    return None
                if tuple(splits.input_size) == tuple(self.input_size):
                    self._samples = splits.test
        return self._samples or None

    def sample(self, index: int) -> tuple:
        ds = self.samples()
        if ds is None:
            raise NotFound(f"{self.title} has no data set to pick images from"
                           + ("" if self.trained else " (an untrained zoo model)"))
        if not 0 <= index < len(ds):
            raise NotFound(f"sample {index} does not exist: the test set has {len(ds)} images (0..{len(ds) - 1})")
        return ds.images[index], int(ds.labels[index])

    def run(self, picture: np.ndarray, source: str = "") -> Recorded:
        """Run one picture ``(C, H, W)`` in [0, 1] through the model, recording every leaf layer."""
        picture = np.ascontiguousarray(picture, dtype=np.float32)
        key = hashlib.sha256(picture.tobytes() + self.name.encode()).hexdigest()[:16]
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self._cache[key].hits += 1
                return self._cache[key]
        m = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        s = np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        x = ((picture - m) / s).astype(np.float32)
        from ..viz.maps import activation_maps

        inputs, final, handles = {}, [], []
        leaves = [r.name for r in self.layers()]

        def keep_input(name):
            def hook(mod, args):          # before the layer runs: its input as it saw it (a copy)
                if name not in inputs and args:
                    inputs[name] = np.array(args[0].data[0], dtype=np.float32)
            return hook

        with self._model_lock:                # one pass at a time: the model and its hooks are shared
            for name in leaves:
                if type(self.module(name)).__name__ in DERIVED:
                    handles.append(self.module(name).register_forward_pre_hook(keep_input(name)))
            handles.append(self.model.register_forward_hook(lambda mod, args, out: final.append(out)))
            t0 = time.perf_counter()
            try:
                maps = activation_maps(self.model, x, layers=leaves)
            finally:
                for h in handles:
                    h.remove()
        outputs = OrderedDict((n, a) for n, a in maps.items())
        logits = final[0].data[0].astype(np.float64)
        z = np.exp(logits - logits.max())
        probs = z / z.sum()
        rec = Recorded(key, x, picture, outputs, inputs, probs, logits, source, seconds=time.perf_counter() - t0)
        rec.nbytes = x.nbytes * 2 + sum(a.nbytes for a in outputs.values()) + sum(a.nbytes for a in inputs.values())
        with self._lock:
            self._cache[key] = rec
            total = sum(r.nbytes for r in self._cache.values())
            while len(self._cache) > 1 and total > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                total -= old.nbytes
        return rec

    def warm_up(self) -> None:
        """One pass on a blank input (not kept): the first real input then finds the compiled loops loaded."""
        rec = self.run(np.zeros(self.input_size, np.float32), "warm-up")
        with self._lock:
            self._cache.pop(rec.id, None)

    def get(self, input_id: str) -> Recorded:
        with self._lock:
            rec = self._cache.get(input_id)
            if rec is not None:
                self._cache.move_to_end(input_id)
        if rec is None:
            raise NotFound(f"input {input_id!r} is not (or no longer) held by the server: send the image again")
        return rec

    # ------------------------------------------------------------------ pictures of cnnkit.viz
    @property
    def large(self) -> bool:
        """Over a billion MACs an image (VGG, ResNet-50 at 224²): coarser occlusion grids by default."""
        return self.summary.total["macs"] > 1e9

    def occlusion(self, rec: Recorded, target: int, size=None, stride=None) -> np.ndarray:
        from ..viz.maps import occlusion_map
        if stride is None and self.large:
            stride = -(-min(self.input_size[1:]) // 8)
        with self._model_lock:
            return np.asarray(occlusion_map(self.model, rec.x, target=target, size=size, stride=stride), np.float32)

    def saliency(self, rec: Recorded, target: int) -> np.ndarray:
        from ..viz.maps import saliency_map
        with self._model_lock:
            return np.asarray(saliency_map(self.model, rec.x, target=target), np.float32)

    def receptive_box(self, layer: str, y: int, x: int) -> list:
        """``[top, bottom, left, right]`` (half-open) of the input pixels output ``(y, x)`` of ``layer`` sees."""
        from ..viz.maps import receptive_box
        return list(receptive_box(self.model, layer, (y, x), self.input_size))

    def top_patches(self, layer: str, channel: int, k: int = 9, limit: int = 1000) -> dict:
        """Zeiler & Fergus' strongest patches of one channel over (up to ``limit`` of) the run's test images."""
        from ..viz.maps import top_patches
        rec = self.record(layer)
        if not rec.output or len(rec.output) != 3:
            raise InputError(f"layer {layer!r} outputs {rec.output_volume}: top patches need a layer with maps "
                             "(W×H×D)")
        if not 0 <= channel < rec.output[0]:
            raise InputError(f"channel={channel} is out of range for layer {layer!r}: 0..{rec.output[0] - 1}")
        ds = self.samples()
        if ds is None:
            raise NotFound(f"{self.title} has no data set to search"
                           + ("" if self.trained else " (an untrained zoo model)"))
        key = (layer, k)
        if key not in self._patches:
            m = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
            s = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
            images = ((ds.images[:limit] - m) / s).astype(np.float32)
            with self._model_lock:
                self._patches[key] = top_patches(self.model, layer, images, k=k)
        t = self._patches[key]
        i = int(np.flatnonzero(t.channels == channel)[0])
        m = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        s = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        pictures = t.patches[i] * s + m                                   # back to [0, 1]; NaN off the image
        return {"values": t.values[i].astype(np.float64).tolist(), "image_index": t.image_index[i].tolist(),
                "labels": [self.classes[int(ds.labels[j])] for j in t.image_index[i]],
                "positions": t.positions[i].tolist(), "boxes": t.boxes[i].tolist(),
                "receptive_field": list(t.receptive_field), "searched": int(min(limit, len(ds))), "patches": pictures}


# ---------------------------------------------------------------------- building one
def open_explorer(target: str | None, input_size=None, cache_bytes: int = 1 << 30) -> Explorer:
    """An :class:`Explorer` for a run directory or a zoo model name (``None``: ``runs/lenet5-mnist-5k`` or
    ``runs/lenet5-digits`` if one exists, else an untrained ``lenet5``). Raises ``ValueError``/``FileNotFoundError`` naming it."""
    from .. import models

    if target is None:
        target = next((f"runs/{r}" for r in ("lenet5-mnist-5k", "lenet5-digits") if Path(f"runs/{r}/config.json").is_file()),
                      "lenet5")
    path = Path(target)
    if path.is_dir():
        from ..train.runs import load_run
        run = load_run(path)
        if input_size is not None and tuple(input_size) != tuple(run.input_size):
            raise ValueError(f"--input {','.join(map(str, input_size))} differs from the run's input size "
                             f"{','.join(map(str, run.input_size))}: a run is served at the size it was trained at")
        data = run.config.get("data", {})
        name = run.config["model"]["name"]
        return Explorer(run.model, name, f"{name} ({path.name})", list(run.classes), tuple(run.input_size),
                        tuple(run.mean), tuple(run.std), True, data.get("source") or data.get("name"),
                        str(path), run.config.get("prepare"),
                        (int(data.get("split_seed", 0)), float(data.get("val_fraction", 0.1))), cache_bytes)
    if target not in models.names() and target.lower().replace("-", "").replace("_", "") not in {
            n.replace("_", "") for n in models.names()}:
        if "/" in target or "\\" in target or path.suffix:
            raise FileNotFoundError(f"RUN_OR_MODEL {target!r}: no such run directory")
        raise FileNotFoundError(f"RUN_OR_MODEL {target!r} is neither a run directory nor a zoo model "
                                "(`cnnkit models` lists the zoo)")
    model = models.create(target)
    model.eval()
    size = tuple(input_size) if input_size is not None else tuple(models.default_input_size(target))
    classes = _num_classes(model, size)
    c = size[0]
    return Explorer(model, target, f"{target} (untrained)", [str(i) for i in range(classes)], size,
                    (0.0,) * c, (1.0,) * c, False, None, "zoo", None, (0, 0.1), cache_bytes)


def _num_classes(model, size) -> int:
    """The length of the model's output for one input (a zero-image batch: shapes only, no arithmetic)."""
    from ..tensor import Tensor, no_grad
    with no_grad():
        out = model(Tensor(np.zeros((0,) + tuple(size), np.float32)))
    return int(np.prod(out.shape[1:]))
