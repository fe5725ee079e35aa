"""``cnnkit viz KIND RUN_OR_MODEL [IMAGE] [--layer NAME] -o OUT.png``: the pictures of :mod:`cnnkit.viz`.

RUN_OR_MODEL is a run directory written by ``cnnkit train`` (its weights; images are prepared as its
training images were, MNIST-like digits by ``prepare_digit``) or a zoo name (random weights: the
picture says so). Everything is checked before anything is computed, and the PNG is written atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import CLIError, parse_size

KINDS = {
    "filters": "a layer's kernels as a grid (--layer; default the first convolution)",
    "activations": "every layer's activation maps for IMAGE, and the class probabilities",
    "responses": "the classic filter bank's responses to IMAGE (give only IMAGE)",
    "receptive-field": "the input pixels one unit of --layer sees (--index ROW,COL), drawn on IMAGE",
    "top-patches": "per channel of --layer, the 9 input patches that activate it most over a data set",
    "occlusion": "the class probability as a grey square slides over IMAGE (Zeiler & Fergus)",
    "saliency": "|d score / d pixel| for IMAGE (Simonyan et al. 2014)",
    "maximize": "the input each channel of --layer (default: each class) responds to most",
}
NEEDS_IMAGE = {"activations", "occlusion", "saliency"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "viz", help="pictures of what a network computes: filters, activations, occlusion, saliency, ...",
        description="Write a picture of a trained run or a zoo model as a PNG. Kinds: "
                    + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".")
    p.add_argument("kind", choices=list(KINDS), metavar="KIND", help=", ".join(KINDS))
    p.add_argument("source", metavar="RUN_OR_MODEL", help="run directory (cnnkit train) or zoo model name; for "
                                                          "responses, the IMAGE")
    p.add_argument("image", nargs="?", metavar="IMAGE", help="image file (PNG, JPEG, ...)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="PNG file to write")
    p.add_argument("--layer", metavar="NAME", help="layer name as in `cnnkit summary` (activations: a comma list)")
    p.add_argument("--sample", type=int, metavar="N", help="use image N of the run's test split instead of IMAGE")
    p.add_argument("--target", metavar="CLASS", help="class name or index (default: the predicted class)")
    p.add_argument("--index", metavar="ROW,COL", help="receptive-field: the unit (default: the map's centre)")
    p.add_argument("--channels", metavar="LIST", help="top-patches, maximize: channel (or class) indices, e.g. 0,1,2")
    p.add_argument("-k", type=int, default=9, metavar="K", help="top-patches: patches per channel (default 9)")
    p.add_argument("--data", metavar="NAME|PATH", help="top-patches: data set (default: the run's)")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="top-patches: images searched (default 1000)")
    p.add_argument("--size", type=int, metavar="PX", help="occlusion: side of the grey square (default H/4)")
    p.add_argument("--stride", type=int, metavar="PX", help="occlusion: step of the square (default H/16)")
    p.add_argument("--steps", type=int, default=256, metavar="N", help="maximize: gradient steps (default 256)")
    p.add_argument("--filters", metavar="LIST", help="responses: bank names, e.g. sobel_x,sobel_y (default all)")
    p.add_argument("--input", metavar="C,H,W", help="a zoo model's input size (default its own)")
    p.set_defaults(func=cmd_viz)


# ----------------------------------------------------------------------------- checks
def _check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise CLIError(f"-o must name a .png file, got {path!r}")
    if out.is_dir():
        raise CLIError(f"-o {path!r} is a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"-o {path!r}: the directory {str(parent)!r} does not exist")
    return out


def _ints(text: str, option: str, count: int | None = None) -> list:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise CLIError(f"{option} must be integers separated by commas, got {text!r}") from None
    if not values or (count is not None and len(values) != count) or min(values) < 0:
        want = f"{count} non-negative integers" if count else "non-negative integers"
        raise CLIError(f"{option} must be {want}, got {text!r}")
    return values


class _Source:
    """A run directory or a zoo model: the model, its input size, classes and how to prepare images."""

    def __init__(self, text: str, input_size=None):
        from cnnkit import models
        self.run = None
        if Path(text).is_dir():
            from cnnkit.train.run import load_run
            self.run = load_run(text)
            self.model, self.input_size, self.classes = self.run.model, tuple(self.run.input_size), self.run.classes
            self.mean, self.std = self.run.mean, self.run.std
            self.label = f"{self.run.config['model']['name']} ({Path(text).name})"
        else:
            try:
                default = models.default_input_size(text)
            except (KeyError, ValueError):
                raise CLIError(f"{text!r} is neither a run directory nor a zoo model (see `cnnkit models`)") from None
            self.model = models.create(text)
            self.input_size = tuple(input_size) if input_size else tuple(default)
            self.classes, self.mean, self.std = None, (0.0,) * self.input_size[0], (1.0,) * self.input_size[0]
            self.label = f"{text} (untrained: random weights)"
        self.model.eval()

    def prepare(self, path: str) -> np.ndarray:
        if not Path(path).is_file():
            raise CLIError(f"image {path!r} does not exist" if not Path(path).exists() else f"{path!r} is not a file")
        if self.run is not None:
            from cnnkit.train.run import prepare_image
            return prepare_image(path, self.input_size, self.mean, self.std, prepare=self.run.config.get("prepare"))
        from cnnkit.data import load_image
        return load_image(Path(path), self.input_size).astype(np.float32)

    def data(self, source, limit: int, split: str = "test"):
        """Up to ``limit`` images of a data set's split, prepared as model inputs ``(N, C, H, W)``."""
        from cnnkit import data
        if source is None:
            if self.run is None:
                raise CLIError("a zoo model has no data set of its own: pass --data NAME|PATH")
            cfg = self.run.config.get("data", {})
            source = cfg.get("source") or cfg.get("name")
        root = self.run.config.get("training", {}).get("root") if self.run is not None else None
        splits = data.load(source, root=root, size=tuple(self.input_size[1:]))
        images = getattr(splits, split).images[:limit]
        if images.shape[1] != self.input_size[0]:
            raise CLIError(f"data {source!r} has {images.shape[1]}-channel images, the model takes "
                           f"{self.input_size[0]}")
        m = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        s = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return ((images - m) / s).astype(np.float32)

    def target(self, text):
        if text is None:
            return None
        if self.classes is not None and text in self.classes:
            return self.classes.index(text)
        try:
            return int(text)
        except ValueError:
            names = f"; classes: {', '.join(self.classes)}" if self.classes else ""
            raise CLIError(f"--target must be a class name or index, got {text!r}{names}") from None

    def bounds(self) -> tuple:
        lo = min((0 - m) / s for m, s in zip(self.mean, self.std))
        hi = max((1 - m) / s for m, s in zip(self.mean, self.std))
        return float(lo), float(hi)


# ----------------------------------------------------------------------------- the command
def cmd_viz(args) -> int:
    from cnnkit import viz
    from cnnkit.viz.common import find_layer
    from cnnkit.viz.draw import sign

    out = _check_output(args.output)
    if args.kind == "responses":
        return _responses(args, out)
    source = _Source(args.source, parse_size(args.input) if args.input else None)
    layers = [n for n in (args.layer or "").split(",") if n]
    for name in layers:
        find_layer(source.model, name, "--layer")
    if args.kind in ("receptive-field", "top-patches") and not layers:
        raise CLIError(f"{args.kind} needs --layer NAME (one of {', '.join(viz.leaf_layers(source.model))})")
    if len(layers) > 1 and args.kind != "activations":
        raise CLIError(f"{args.kind} takes one --layer, got {args.layer!r}")
    layer = layers[0] if layers else None
    x = _input(args, source)
    if x is None and args.kind in NEEDS_IMAGE:
        raise CLIError(f"{args.kind} needs an IMAGE (or --sample N for a run's test image)")
    target = source.target(args.target)
    classes = source.classes
    if args.kind == "filters":
        fig = viz.plot_filters(source.model, layer)
    elif args.kind == "activations":
        fig = viz.plot_activations(source.model, x, layers or None, classes=classes)
    elif args.kind == "receptive-field":
        index = tuple(_ints(args.index, "--index", 2)) if args.index else None
        fig = viz.plot_receptive_field(source.model, layer, index, x, source.input_size)
    elif args.kind == "top-patches":
        if args.k < 1 or args.limit < 1:
            raise CLIError(f"-k and --limit must be at least 1, got -k {args.k} --limit {args.limit}")
        channels = _ints(args.channels, "--channels") if args.channels else None
        fig = viz.plot_top_patches(source.model, layer, source.data(args.data, args.limit), args.k, channels)
    elif args.kind == "occlusion":
        fig = viz.plot_occlusion(source.model, x, target, args.size, args.stride, classes=classes)
    elif args.kind == "saliency":
        fig = viz.plot_saliency(source.model, x, target, classes=classes)
    else:
        channels = _ints(args.channels, "--channels") if args.channels else None
        if channels is None and target is not None and layer is None:
            channels = [target]
        if args.steps < 1:
            raise CLIError(f"--steps must be at least 1, got {args.steps}")
        fig = viz.plot_maximize(source.model, layer, channels, classes, input_size=source.input_size,
                                steps=args.steps, bounds=source.bounds())
    sign(fig, source.label, alert=source.run is None)
    viz.save(fig, out)
    print(f"wrote {out} ({fig._px[0]}×{fig._px[1]} px)")
    return 0


def _input(args, source):
    if args.sample is not None:
        if args.image:
            raise CLIError("give IMAGE or --sample, not both")
        if args.sample < 0:
            raise CLIError(f"--sample must be at least 0, got {args.sample}")
        images = source.data(args.data, args.sample + 1)
        if args.sample >= len(images):
            raise CLIError(f"--sample {args.sample}: the test split has only {len(images)} images")
        return images[args.sample]
    return source.prepare(args.image) if args.image else None


def _responses(args, out: Path) -> int:
    from cnnkit import filters, viz
    path = args.image or args.source
    if args.image:
        raise CLIError("responses shows the classic filter bank: give only IMAGE (cnnkit viz responses IMAGE -o OUT.png)")
    if not Path(path).is_file():
        raise CLIError(f"image {path!r} does not exist" if not Path(path).exists() else f"{path!r} is not a file")
    names = [n for n in (args.filters or "").split(",") if n] or None
    for n in names or []:
        filters.kernel(n)  # an unknown name fails here, naming the bank
    fig = viz.plot_responses(path, names)
    viz.save(fig, out)
    print(f"wrote {out} ({fig._px[0]}×{fig._px[1]} px)")
    return 0

