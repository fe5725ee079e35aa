"""``cnnkit convert`` (PyTorch .pth ↔ safetensors), ``cnnkit export`` (ONNX) and ``cnnkit weights list|download``."""
from __future__ import annotations

import sys
from . import parse_size


def _convert(args) -> int:
    from ..io.torch_weights import convert, read_state_dict
    out = convert(args.src, args.dst)
    n = len(read_state_dict(out))
    print(f"wrote {out} ({n} tensors)")
    return 0


def _export(args) -> int:
    from ..io.onnx_export import export_onnx
    from ..train import load_model
    model, size, trained = load_model(args.model)
    if not trained:
        print(f"note: {args.model} has freshly initialised weights (pass a run directory to export trained ones)",
              file=sys.stderr)
    if args.input:
        size = parse_size(args.input)
    export_onnx(model, size, args.onnx)
    print(f"wrote {args.onnx} (input N×{'×'.join(str(v) for v in size)})")
    return 0


def _weights_list(args) -> int:
    from ..models.weights import default_weights, list_weights
    rows = list_weights(args.model)
    if args.json:
        import json
        print(json.dumps([{"name": w.name, "model": w.model, "model_kwargs": w.model_kwargs,
                           "default": default_weights(w.model) == w, **w.meta} for w in rows], indent=2))
        return 0
    print(f"{'name':34} {'model':10} {'params':>12} {'GMACs':>7} {'input':>11}  sha256")
    for w in rows:
        m = w.meta
        size = "×".join(str(v) for v in m["input_size"])
        params = "—" if m["num_params"] is None else f"{m['num_params']:,}"
        gmacs = "—" if m["macs"] is None else f"{m['macs'] / 1e9:.3f}"
        star = " (default)" if default_weights(w.model) == w else ""
        print(f"{w.name:34} {w.model:10} {params:>12} {gmacs:>7} {size:>11}  {w.sha256[:8]} ({w.sha256_kind}){star}")
    return 0


def _weights_download(args) -> int:
    from ..models.weights import download_weights, get_weights
    w = get_weights(args.name)
    path = download_weights(w, args.cache, quiet=args.quiet)
    print(path)
    return 0


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert weights between PyTorch .pth and .safetensors",
                       description="Convert a state dict between PyTorch's .pth/.pt (read with weights_only=True; "
                                   "needs PyTorch) and .safetensors, in either direction.")
    p.add_argument("src", help="input weights (.pth, .pt or .safetensors)")
    p.add_argument("dst", help="output weights (.safetensors, or .pth with PyTorch installed)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("export", help="export a trained run (or a zoo model) to ONNX",
                       description="Export a run directory written by `cnnkit train` (or a zoo model name, with "
                                   "fresh weights) to an ONNX file with a dynamic batch dimension.")
    p.add_argument("model", help="run directory or model name")
    p.add_argument("--onnx", required=True, metavar="OUT", help="output .onnx file")
    p.add_argument("--input", metavar="C,H,W", help="input size (default: the run's or the model's)")
    p.set_defaults(func=_export)

    p = sub.add_parser("weights", help="list or download named pre-trained weights",
                       description="Named pre-trained weights (torchvision's ImageNet files and any registered "
                                   "with cnnkit.models.weights.register_weights), downloaded into a cache with "
                                   "SHA-256 verification.")
    p.set_defaults(func=lambda args, _p=p: (_p.print_help(sys.stderr), 2)[1])
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wl = wsub.add_parser("list", help="list the registered weights")
    wl.add_argument("--model", help="only the weights of this zoo model")
    wl.add_argument("--json", action="store_true", help="print JSON with the full meta")
    wl.set_defaults(func=_weights_list)
    wd = wsub.add_parser("download", help="download (and verify) weights into the cache")
    wd.add_argument("name", help="weights name, e.g. ResNet18_Weights.IMAGENET1K_V1")
    wd.add_argument("--cache", metavar="DIR", help="cache folder (default $CNNKIT_HOME/weights or "
                                                  "~/.cache/cnnkit/weights)")
    wd.add_argument("--quiet", action="store_true", help="no progress messages")
    wd.set_defaults(func=_weights_download)
