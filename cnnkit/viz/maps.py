"""The numbers behind cnnkit's pictures, as NumPy arrays (no matplotlib here: the explorer serves them too).

Every function takes the model and one model input ``x`` — a ``(C, H, W)`` array or a ``(1, C, H, W)``
Tensor, already prepared and normalised as the model expects — and runs the model in eval mode
without touching its parameters' gradients; the modes and ``requires_grad`` flags are restored after.

* :func:`activation_maps` — each layer's output for ``x``;
* :func:`occlusion_map` — the class probability as a grey square slides over ``x`` (Zeiler & Fergus 2013, §4.2);
* :func:`saliency_map` — ``|∂ score / ∂ x|``, the maximum over colour channels (Simonyan et al. 2014);
* :func:`top_patches` — per channel, the input patches under the receptive field of the strongest
  activations over a set of images (Zeiler & Fergus 2013, Fig. 2);
* :func:`maximize_input` — gradient ascent on the input for a channel or a class, with jitter,
  blur and L2 decay (Erhan et al. 2009; Olah et al. 2017);
* :func:`receptive_box` — the input pixels one output position sees, from :func:`cnnkit.summary`'s
  receptive field, jump and start (the one place that arithmetic lives).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor, enable_grad, no_grad
from .common import as_input, check_int, find_layer, inspecting, layer_summary, leaf_layers, model_label

__all__ = ["activation_maps", "occlusion_map", "saliency_map", "top_patches", "TopPatches", "maximize_input",
           "receptive_box", "leaf_layers"]

BATCH = 64  # occluded copies / data-set images per forward pass


# ----------------------------------------------------------------------------- shared helpers
def _logits(model, batch: np.ndarray, owner: str) -> np.ndarray:
    out = model(Tensor(batch))
    if out.ndim != 2:
        raise ValueError(f"{owner}: {model_label(model)} outputs shape {tuple(out.shape)} per batch; class scores "
                         f"(N, K) are needed")
    return out.data


def _target(target, k: int, default: int, owner: str) -> int:
    if target is None:
        return int(default)
    target = check_int(target, "target", owner)
    if target >= k:
        raise ValueError(f"{owner}: target must be a class index in 0..{k - 1}, got target={target}")
    return target


class _Stop(Exception):
    """Raised by a hook once the layer it waits for has run: the rest of the network is not needed."""


def _layer_output(model, module, batch: Tensor) -> Tensor:
    """Run ``model`` until ``module`` has produced its output, and return that output (with its graph)."""
    seen = []

    def hook(m, args, out):
        seen.append(out if isinstance(out, Tensor) else next(o for o in out if isinstance(o, Tensor)))
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(batch)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"layer {type(module).__name__} did not run in the forward pass of {model_label(model)}")
    return seen[0]


# ----------------------------------------------------------------------------- activations
def activation_maps(model, x, layers=None) -> dict:
    """Each layer's output for one input, in the order the layers ran.

    Args:
        model: an ``nn.Module``.
        x: one model input, ``(C, H, W)`` array or ``(1, C, H, W)`` Tensor.
        layers: names as in ``model.named_modules()`` (one name or a list); default every leaf layer
            (module without children) that runs. A layer called twice keeps its first output.

    Returns:
        ``{name: array}``, each the layer's output without the batch axis (``(C, H, W)`` after a
        convolution or pooling, ``(K,)`` after a fully-connected layer), float32 copies.
    """
    owner = "activation_maps"
    x = as_input(x, owner)
    if layers is None:
        names = leaf_layers(model)
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        for n in names:
            find_layer(model, n, owner)
    modules = dict(model.named_modules())
    found, handles = {}, []

    def hook_for(name):
        def hook(m, args, out):
            if name not in found:
                t = out if isinstance(out, Tensor) else next(o for o in out if isinstance(o, Tensor))
                found[name] = np.array(t.data[0], dtype=np.float32)  # copied: an in-place ReLU may follow
        return hook

    for n in names:
        handles.append(modules[n].register_forward_hook(hook_for(n)))
    try:
        with inspecting(model), no_grad():
            model(Tensor(x[None]))
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in names if n not in found]
    if layers is not None and missing:
        raise ValueError(f"{owner}: layer{'s' * (len(missing) > 1)} {', '.join(missing)} did not run in the "
                         f"forward pass of {model_label(model)}")
    return found


# ----------------------------------------------------------------------------- occlusion and saliency
def occlusion_map(model, x, target=None, size=None, stride=None, fill=None) -> np.ndarray:
    """The probability of ``target`` with a square of ``fill`` over ``x``, for each position of the square.

    Zeiler & Fergus 2013, §4.2: where hiding the input lowers the probability, the network looked.
    The map's cell ``[i, j]`` stands for the input block ``rows i·stride … (i+1)·stride − 1``,
    ``columns j·stride …``: the square (``size × size``, clipped at the border) is centred on that
    block, so the map upsampled by ``stride`` lies over the input.

    Args:
        model: a classifier (output ``(N, K)`` class scores; softmax gives the probabilities).
        x: one model input, ``(C, H, W)`` array or ``(1, C, H, W)`` Tensor.
        target: class index; default the class predicted for ``x``.
        size: side of the square in pixels; default a quarter of the shorter side.
        stride: step between positions; default ``ceil(min(H, W) / 16)`` (16 positions a side).
        fill: the square's value, a number or one per channel; default the mean of each channel of
            ``x`` (grey for a normalised input).

    Returns:
        float64 ``(ceil(H / stride), ceil(W / stride))`` probabilities in [0, 1].
    """
    owner = "occlusion_map"
    x = as_input(x, owner)
    c, h, w = x.shape
    size = max(1, round(min(h, w) / 4)) if size is None else check_int(size, "size", owner, 1)
    stride = max(1, math.ceil(min(h, w) / 16)) if stride is None else check_int(stride, "stride", owner, 1)
    if size > max(h, w):
        raise ValueError(f"{owner}: size must be at most the input's {h}×{w}, got size={size}")
    try:
        fill = x.mean(axis=(1, 2)) if fill is None else np.broadcast_to(np.asarray(fill, np.float32), (c,))
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: fill must be a number or {c} numbers (one per channel), got fill={fill!r}") from None
    fill = np.asarray(fill, np.float32).reshape(c, 1, 1)
    rows, cols = math.ceil(h / stride), math.ceil(w / stride)
    out = np.empty(rows * cols)
    with inspecting(model), no_grad():
        scores = _logits(model, x[None], owner)
        target = _target(target, scores.shape[1], scores[0].argmax(), owner)
        cells = [(i, j) for i in range(rows) for j in range(cols)]
        for start in range(0, len(cells), BATCH):
            chunk = cells[start:start + BATCH]
            batch = np.repeat(x[None], len(chunk), axis=0)                      # (B, C, H, W)
            for b, (i, j) in enumerate(chunk):
                top = i * stride + stride // 2 - size // 2
                left = j * stride + stride // 2 - size // 2
                batch[b, :, max(top, 0):max(top + size, 0), max(left, 0):max(left + size, 0)] = fill
            probs = F.softmax(Tensor(_logits(model, batch, owner)), dim=1).data  # (B, K)
            out[start:start + len(chunk)] = probs[:, target]
    return out.reshape(rows, cols)


def saliency_map(model, x, target=None) -> np.ndarray:
    """``|∂ score_target / ∂ x|``, the maximum over colour channels (Simonyan, Vedaldi, Zisserman 2014).

    The score is the class's logit (before the softmax), as in the paper.

    Args:
        model: a classifier (output ``(N, K)``). x: one model input, ``(C, H, W)`` or ``(1, C, H, W)``.
        target: class index; default the predicted class.

    Returns:
        float32 ``(H, W)``, non-negative.
    """
    owner = "saliency_map"
    x = Tensor(as_input(x, owner)[None], requires_grad=True)
    with inspecting(model), enable_grad():
        out = model(x)
        if out.ndim != 2:
            raise ValueError(f"{owner}: {model_label(model)} outputs shape {tuple(out.shape)}; class scores (N, K) "
                             f"are needed")
        target = _target(target, out.shape[1], out.data[0].argmax(), owner)
        out[0, target].backward()
    return np.abs(x.grad.data[0]).max(axis=0).astype(np.float32)


# ----------------------------------------------------------------------------- receptive field
def _field(model, layer: str, input_size) -> tuple:
    """``(output shape, rf, jump, start)`` of ``layer`` for inputs of ``input_size``, from the summary."""
    find_layer(model, layer, "receptive_box")
    rec = next((r for r in layer_summary(model, input_size).layers if r.name == layer), None)
    if rec is None or rec.receptive_field is None:
        raise ValueError(f"receptive_box: layer {layer!r} of {model_label(model)} has no receptive field on a "
                         f"{tuple(input_size)} input (it did not run, or does not descend from the input)")
    return tuple(rec.output), tuple(rec.receptive_field), tuple(rec.jump), tuple(rec.start)


def _box(field, index, input_size) -> tuple:
    out, rf, jump, start = field
    spatial = out[1:] if len(out) > 1 else ()
    index = tuple(index)[-len(spatial):] if spatial else (0,) * len(rf)
    box = []
    for i, n, r, j, s0, size in zip(index, spatial or (1,) * len(rf), rf, jump, start, input_size[1:]):
        if not 0 <= i < n:
            raise ValueError(f"receptive_box: index {tuple(index)} is outside the layer's {'×'.join(map(str, spatial))} map")
        lo = int(math.floor(s0 + i * j - (r - 1) / 2 + 0.5))                     # centre − half the field
        box.append((lo, lo + r, max(lo, 0), min(lo + r, size)))
    return box


def receptive_box(model, layer, index, input_size) -> tuple:
    """The input pixels that position ``index`` of ``layer``'s output sees: ``(top, bottom, left, right)``.

    Half-open, clipped to the input: ``x[:, top:bottom, left:right]`` is the patch. The receptive
    field ``rf``, jump ``j`` and start ``s`` come from :func:`cnnkit.summary`; the field of output
    ``i`` is centred on input pixel ``s + i·j``. A layer whose outputs are vectors (after a flatten)
    sees its field whatever the index.

    Args:
        model: an ``nn.Module``. layer: a name from ``model.named_modules()``.
        index: ``(row, column)`` in the layer's output map (a leading channel is ignored).
        input_size: ``(C, H, W)`` of the model input.
    """
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) != 3:
        raise ValueError(f"receptive_box: input_size must be (C, H, W), got {input_size}")
    (_, _, top, bottom), (_, _, left, right) = _box(_field(model, layer, input_size), index, input_size)
    return top, bottom, left, right


# ----------------------------------------------------------------------------- top patches
@dataclass
class TopPatches:
    """Per channel of ``layer``, the ``k`` images whose strongest activation of that channel is largest.

    Attributes (``n`` = the channels shown, ``k`` = the patches per channel):
        layer: the layer's name. channels: the channel indices, ``(n,)``.
        values: the activations, ``(n, k)``, largest first.
        image_index: index of each patch's image in the images given, ``(n, k)``.
        positions: ``(row, column)`` of each activation in the layer's output map, ``(n, k, 2)``.
        boxes: ``(top, bottom, left, right)`` of each patch in its image, half-open, clipped, ``(n, k, 4)``.
        patches: the input under each receptive field, ``(n, k, C, rf_h, rf_w)`` float32; NaN where
            the field hangs over the image's border.
        receptive_field: ``(rf_h, rf_w)``.
    """
    layer: str
    channels: np.ndarray
    values: np.ndarray
    image_index: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    receptive_field: tuple


def top_patches(model, layer, images, k: int = 9, channels=None) -> TopPatches:
    """Zeiler & Fergus' strongest activations: per channel, the ``k`` largest over a set of images.

    Each image counts once per channel, at its strongest position (the largest value, the first in
    row-major order on a tie); the images are ranked by that value (ties: the earlier image first).
    Each patch is the input under that position's receptive field (:func:`receptive_box`).

    Args:
        model: an ``nn.Module``. layer: a name from ``model.named_modules()``.
        images: model inputs ``(N, C, H, W)`` (or anything with such an ``.images`` array, e.g. an
            :class:`~cnnkit.data.ArrayDataset` already normalised).
        k: patches per channel (at most ``N``; default 9).
        channels: channel indices (default all).
    """
    owner = "top_patches"
    images = getattr(images, "images", images)
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype.kind != "f" or not len(images):
        raise ValueError(f"{owner}: images must be a float array (N, C, H, W) with N >= 1, got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    k = min(check_int(k, "k", owner, 1), len(images))
    module = find_layer(model, layer, owner)
    best, where = [], []                                                    # per image: (K,), (K,)
    with inspecting(model), no_grad():
        for start in range(0, len(images), BATCH):
            a = _layer_output(model, module, Tensor(np.ascontiguousarray(images[start:start + BATCH]))).data
            a = a.reshape(a.shape[0], a.shape[1], -1)                           # (B, K, h·w)
            where.append(a.argmax(axis=2))
            best.append(np.take_along_axis(a, where[-1][..., None], 2)[..., 0])
    best, where = np.concatenate(best), np.concatenate(where)               # (N, K)
    n_channels = best.shape[1]
    channels = np.arange(n_channels) if channels is None else np.asarray(list(channels), dtype=np.int64)
    if channels.ndim != 1 or not len(channels) or channels.min() < 0 or channels.max() >= n_channels:
        raise ValueError(f"{owner}: channels must be indices in 0..{n_channels - 1} of {layer}, got "
                         f"{channels.tolist()}")
    field = _field(model, layer, images.shape[1:])
    map_w = field[0][-1] if len(field[0]) > 1 else 1
    rf = field[1]
    order = np.argsort(-best[:, channels], axis=0, kind="stable")[:k].T     # (n, k)
    values = np.take_along_axis(best[:, channels].T, order, 1)
    positions = np.stack([where[order, channels[:, None]] // map_w, where[order, channels[:, None]] % map_w], -1)
    boxes = np.zeros(order.shape + (4,), np.int64)
    patches = np.full(order.shape + (images.shape[1],) + rf, np.nan, np.float32)
    for a in range(order.shape[0]):
        for b in range(order.shape[1]):
            (lo_r, _, top, bottom), (lo_c, _, left, right) = _box(field, positions[a, b], images.shape[1:])
            boxes[a, b] = top, bottom, left, right
            patches[a, b, :, top - lo_r:bottom - lo_r, left - lo_c:right - lo_c] = \
                images[order[a, b], :, top:bottom, left:right]
    return TopPatches(layer, channels, values, order, positions, boxes, patches, rf)


# ----------------------------------------------------------------------------- activation maximisation
def _blur(g: np.ndarray, sigma: float) -> np.ndarray:
    from ..filters import filter2d, gaussian

    radius = max(1, math.ceil(3 * sigma))
    kernel = gaussian(2 * radius + 1, sigma)
    return filter2d(g.transpose(1, 2, 0), kernel, border="reflect_101").transpose(2, 0, 1).reshape(g.shape)


def maximize_input(model, layer=None, channel=None, target=None, steps: int = 256, lr: float = 0.05,
                   jitter=None, blur=None, l2: float = 0.01, seed: int = 0, input_size=None,
                   bounds=None, objective: str = "neuron") -> np.ndarray:
    """An input that makes a channel (or a class score) large: regularised gradient ascent on the input.

    Objective (Olah et al.'s names): ``"neuron"``, the unit of ``channel`` at the centre of ``layer``'s
    map (what one unit's receptive field responds to); ``"channel"``, the mean of the channel over
    its map (a pattern repeated everywhere); with ``target``, the logit of that class. From small Gaussian noise (``seed``), each of ``steps`` steps: shift the
    image by a random offset of up to ``jitter`` pixels (circularly), take the objective's gradient
    there and shift it back, smooth it with a Gaussian of ``blur`` pixels, step by ``lr`` along it
    (scaled to a mean absolute value of 1), decay the image by ``(1 − l2)`` and clip it to ``bounds``.
    Without the regularisers the image drifts into high-frequency noise (Olah et al. 2017).

    Args:
        model: an ``nn.Module``. layer: a name from ``model.named_modules()``. channel: its channel.
        target: a class index (instead of ``layer``/``channel``).
        steps, lr: iterations and step size. jitter: pixels (default ``min(H, W) // 16``: 2 for 32×32).
        blur: sigma of the gradient's smoothing in pixels (default ``min(H, W) / 32`` within 0.1–2:
            1 for 32×32; 0: none). l2: decay per step (0: none).
        seed: seed of the starting noise and the shifts.
        input_size: ``(C, H, W)``; default ``model.default_input_size`` or the zoo's for the model.
        objective: ``"neuron"`` (default) or ``"channel"``, for a layer's channel.
        bounds: ``(low, high)``, the range of real inputs in model units (e.g. ``((0 − mean) / std,
            (1 − mean) / std)``), kept at every step; ``None``: unbounded.

    Returns:
        float32 ``(C, H, W)`` in model-input units.
    """
    owner = "maximize_input"
    if (target is None) == (layer is None):
        raise ValueError(f"{owner}: give either layer (with channel) or target, got layer={layer!r}, target={target!r}")
    if input_size is None:
        from ..analysis.summary import resolve_model
        input_size = resolve_model(model)[2]
    c, h, w = (int(v) for v in input_size)
    steps = check_int(steps, "steps", owner, 1)
    jitter = min(h, w) // 16 if jitter is None else check_int(jitter, "jitter", owner)
    blur = min(max(min(h, w) / 32, 0.1), 2.0) if blur is None else blur
    for name, v in (("lr", lr), ("blur", blur), ("l2", l2)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0 or (name == "l2" and v >= 1):
            raise ValueError(f"{owner}: {name} must be a number >= 0{' and < 1' * (name == 'l2')}, got {name}={v!r}")
    if bounds is not None:
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: bounds must be (low, high), got bounds={bounds!r}") from None
        if not low < high:
            raise ValueError(f"{owner}: bounds must be (low, high) with low < high, got bounds={bounds!r}")
    if objective not in ("neuron", "channel"):
        raise ValueError(f"{owner}: objective must be 'neuron' or 'channel', got objective={objective!r}")
    module = find_layer(model, layer, owner) if layer is not None else None
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.5, (c, h, w)).astype(np.float32)
    with inspecting(model), enable_grad():
        for _ in range(steps):
            dy, dx = rng.integers(-jitter, jitter + 1, 2) if jitter else (0, 0)
            xt = Tensor(np.roll(x, (dy, dx), (1, 2))[None], requires_grad=True)
            if module is None:
                out = model(xt)
                if out.ndim != 2:
                    raise ValueError(f"{owner}: {model_label(model)} outputs shape {tuple(out.shape)}; class scores "
                                     f"(N, K) are needed for target")
                score = out[0, _target(target, out.shape[1], 0, owner)]
            else:
                a = _layer_output(model, module, xt)
                ch = check_int(channel, "channel", owner) if channel is not None else -1
                if not 0 <= ch < a.shape[1]:
                    raise ValueError(f"{owner}: channel must be in 0..{a.shape[1] - 1} for {layer}, got "
                                     f"channel={channel!r}")
                unit = a[0, ch]
                if objective == "neuron" and unit.ndim:
                    unit = unit[tuple(n // 2 for n in unit.shape)]                   # the centre position
                score = unit.mean()
            score.backward()
            g = np.roll(xt.grad.data[0], (-dy, -dx), (1, 2))
            if blur > 0:
                g = _blur(g, float(blur))
            x = (x + lr * g / (np.abs(g).mean() + 1e-12)) * (1.0 - l2)
            if bounds is not None:
                x = np.clip(x, low, high)
    return x.astype(np.float32)
