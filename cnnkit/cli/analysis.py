"""``cnnkit models | summary | explain | compare``: the layer-by-layer report on the command line."""
from __future__ import annotations

import sys

from . import CLIError, parse_size
from .output import emit, to_json

__all__ = ["register"]


def _shapes_only():
    """Skip random initialisation while building a model whose weights the report never reads
    (``cnnkit.nn.init.skip_init`` when the library has it; otherwise a normal build)."""
    import contextlib

    from ..nn import init
    return getattr(init, "skip_init", contextlib.nullcontext)()


def _model(name):
    from .. import models
    try:
        with _shapes_only():
            return models.create(name)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def cmd_models(args) -> int:
    from .. import models
    if args.names_only:
        print("\n".join(models.names()))
        return 0
    from ..analysis import summary
    from ..analysis.views import human
    rows = []
    width = max(len(n) for n in models.names())
    if not args.json:
        print(f"{'model':<{width}}  {'input C,H,W':<12}  {'params':>12}  {'MACs':>9}", flush=True)
    for name in models.names():  # one line at a time: building the large models takes seconds
        m = _model(name)
        size = models.default_input_size(name)
        t = summary(m, size).total
        del m
        rows.append({"name": name, "input": list(size), "params": t["params"], "macs": t["macs"]})
        if not args.json:
            print(f"{name:<{width}}  {','.join(map(str, size)):<12}  {t['params']:>12,}  {human(t['macs']):>9}",
                  flush=True)
    if args.json:
        sys.stdout.write(to_json(rows))
    return 0


def cmd_summary(args) -> int:
    from ..analysis import summary
    model = _model(args.model)
    s = summary(model, parse_size(args.input), batch_size=args.batch, dtype=args.dtype,
                optimizer=args.optimizer, count=args.count, depth=args.depth, name=args.model)
    if args.format == "json":
        emit(s.to_json(), args.output)
    elif args.format == "csv":
        emit(s.to_csv(), args.output)
    elif args.format == "markdown":
        emit(s.to_markdown(wide=args.wide), args.output)
    else:
        emit(s.to_text(wide=args.wide), args.output)
    return 0


def cmd_explain(args) -> int:
    from ..analysis import explain
    from ..analysis.explain import explain_dict
    model = _model(args.model)
    size = parse_size(args.input)
    if args.json:
        emit(to_json(explain_dict(model, layer=args.layer, input_size=size)), args.output)
    else:
        from ..analysis.views import wrap
        text = explain(model, layer=args.layer, input_size=size)
        emit("\n".join(w for line in text.splitlines() for w in wrap(line)) + "\n", args.output)
    return 0


def cmd_compare(args) -> int:
    from ..analysis.compare import KINDS, compare
    what = args.what
    if len(what) == 1 and what[0] in KINDS:
        kind = what[0]
        given = {"stacked": dict(depth=args.depth, layers=args.layers, kernel_size=args.kernel, size=args.size),
                 "bottleneck": dict(input_size=parse_size(args.input), reduce=args.reduce,
                                    out_channels=args.out_channels, kernel_size=args.kernel),
                 "separable": dict(input_size=parse_size(args.input), out_channels=args.out_channels,
                                   kernel_size=args.kernel)}[kind]
        c = compare(kind, **{k: v for k, v in given.items() if v is not None})   # the rest: the library's defaults
    else:
        from .. import models
        known = set(models.names())
        unknown = [w for w in what if w not in known and w.lower().replace("-", "_") not in known]
        if unknown:
            raise CLIError(f"compare: {unknown[0]!r} is neither a comparison ({', '.join(KINDS)}) nor a known "
                           f"model; known models: {', '.join(sorted(known))}")
        c = compare([_model(w) for w in what], input_size=parse_size(args.input))
    emit(to_json(c.to_dict()) if args.json else str(c), args.output)
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo with parameter and MAC counts (default input size)",
                       description="The model zoo, one line per model: its name (for `cnnkit summary NAME`, "
                                   "`cnnkit train NAME`), default input size C,H,W, parameters and MACs per image "
                                   "(multiply-accumulates of conv and linear layers, bias excluded).")
    p.add_argument("--names-only", action="store_true", help="only the names (fast: builds no model)")
    p.add_argument("--json", action="store_true", help="a JSON list of {name, input, params, macs}")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="layer-by-layer report: volumes, params, MACs, receptive field, memory",
                       description="Layer-by-layer report of a zoo model, computed from shapes alone.")
    p.add_argument("model", help="zoo model name (see `cnnkit models`)")
    p.add_argument("--input", help="input size C,H,W (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="batch size for the memory figures (default 1)")
    p.add_argument("--dtype", default="float32", help="float32 (4 B), float64 (8 B), int8 (1 B), float16, bfloat16")
    p.add_argument("--optimizer", default="sgd", help="sgd, momentum, nesterov, rmsprop, adagrad, adam, adamw")
    p.add_argument("--count", default="default", choices=["default", "lecture", "all"],
                   help="MAC convention: default = conv+linear without bias (torchvision); lecture = with the +1 "
                        "bias; all = also BatchNorm, pooling, additions")
    p.add_argument("--depth", type=int, default=None, help="deepest nesting level to show (blocks folded)")
    p.add_argument("--wide", action="store_true",
                   help="every column: full layer names, input volume, K, trainable/frozen, FLOPs, activations, "
                        "jump, start (the default table fits 100 columns)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="format", action="store_const", const="json",
                     help="every number of every layer and the totals as JSON")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv",
                     help="one CSV line per layer call with every field")
    fmt.add_argument("--markdown", dest="format", action="store_const", const="markdown",
                     help="the table as Markdown (with --wide: every column)")
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=cmd_summary, format="text")

    p = sub.add_parser("explain", help="each layer's formulas with the numbers substituted",
                       description="The lecture's derivations for every layer of a zoo model, numbers substituted: "
                                   "output size W2 = (W1 − F + 2P)/S + 1, parameters (F·F·D1 + 1)·K, multiplies, "
                                   "receptive field; then where a paper's printed table disagrees with it.")
    p.add_argument("model", help="zoo model name (see `cnnkit models`)")
    p.add_argument("--layer", help="one layer or block (dotted name, e.g. C1 or inception3a)")
    p.add_argument("--input", help="input size C,H,W (default: the model's)")
    p.add_argument("--json", action="store_true",
                   help="JSON: per layer its numbers (the summary's fields) and the derivation lines")
    p.add_argument("-o", "--output", help="write to this file (atomically)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("compare", help="the lecture's comparisons (stacked, bottleneck, separable) or models",
                       description="`cnnkit compare stacked|bottleneck|separable [options]` or "
                                   "`cnnkit compare MODEL MODEL ...`")
    p.add_argument("what", nargs="+", help="stacked, bottleneck, separable, or zoo model names")
    p.add_argument("--depth", type=int, help="stacked: channel depth D (default 64)")
    p.add_argument("--layers", type=int, help="stacked: number of stacked convs L (default 3)")
    p.add_argument("--kernel", type=int, help="kernel size (stacked 3, bottleneck 5, separable 3)")
    p.add_argument("--size", type=int, help="stacked: spatial size for the MACs (default 56)")
    p.add_argument("--input", help="bottleneck/separable input C,H,W (192,28,28 / 2,6,6); models: input size")
    p.add_argument("--reduce", type=int, help="bottleneck: 1×1 reduction channels (default 16)")
    p.add_argument("--out-channels", type=int, help="output channels (bottleneck 32, separable 4)")
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.add_argument("-o", "--output", help="write to this file (atomically)")
    p.set_defaults(func=cmd_compare)
