"""``cnnkit convert`` (PyTorch .pth ↔ safetensors), ``cnnkit export`` (ONNX) and ``cnnkit weights list|download``."""
from __future__ import annotations

import sys

from . import parse_size
from .output import to_json


def models_order(name: str) -> int:
    from ..models import names
    order = names()
    return order.index(name) if name in order else len(order)


def _convert(args) -> int:
    from ..io.torch_weights import convert, read_state_dict
    out = convert(args.src, args.dst)
    n = len(read_state_dict(out))
    print(f"wrote {out} ({n} tensors)")
    return 0


def _export(args) -> int:
    from pathlib import Path

    from ..io.onnx_export import OUTPUT, export_onnx
    from ..train import load_model
    from ..train.runs import load_run
    extra = {}
    if Path(args.model).is_dir():              # a run: its classes and normalisation go into the file
        run = load_run(args.model)
        model, size = run.model, tuple(run.input_size)
        meta = {"classes": run.classes, "mean": run.mean, "std": run.std}
        extra = {"model": run.config.get("model", {}).get("name", ""), "trained": True}
        if run.config.get("prepare"):
            extra["prepare"] = run.config["prepare"]
    else:
        model, size, _ = load_model(args.model)
        meta = {}
        extra = {"model": model.config["name"], "trained": False}
        print(f"note: {args.model} has freshly initialised weights (pass a run directory to export trained ones)",
              file=sys.stderr)
    if args.input:
        size = parse_size(args.input)
    export_onnx(model, size, args.onnx, metadata=extra, **meta)
    held = ["input size"] + ([f"{len(meta['classes'])} classes", "mean/std"] if meta else [])
    print(f"wrote {args.onnx}: input 'input' N×{'×'.join(str(v) for v in size)}, output '{OUTPUT}'; "
          f"metadata: {', '.join(held)}")
    return 0


def _weights_list(args) -> int:
    from ..models.weights import default_weights, list_weights
    rows = sorted(list_weights(args.model), key=lambda w: (models_order(w.model), w.name))
    if args.json:
        print(to_json([{"name": w.name, "model": w.model, "model_kwargs": w.model_kwargs,
                        "default": default_weights(w.model) == w, **w.meta} for w in rows]), end="")
        return 0
    if not rows:
        print(f"no weights registered{' for ' + args.model if args.model else ''}")
        return 0
    width = max(len("name"), *(len(w.name) for w in rows))
    mw = max(len("model"), *(len(w.model) for w in rows))
    print(f"{'name':{width}}  {'model':{mw}}  {'top-1':>6}  {'top-5':>6}  {'params':>11}  {'GMACs':>6}  "
          f"{'input':>9}  default")
    for w in rows:
        m = w.meta
        acc = next(iter((m.get("metrics") or {}).values()), {})
        top1, top5 = (f"{acc[k]:.3f}" if k in acc else "—" for k in ("acc@1", "acc@5"))  # torchvision: 3 decimals
        params = "—" if m["num_params"] is None else f"{m['num_params']:,}"
        gmacs = "—" if m["macs"] is None else f"{m['macs'] / 1e9:.3f}"
        size = "×".join(str(v) for v in m["input_size"])
        star = "yes" if default_weights(w.model) == w else ""
        print(f"{w.name:{width}}  {w.model:{mw}}  {top1:>6}  {top5:>6}  {params:>11}  {gmacs:>6}  {size:>9}  {star}".rstrip())
    from ..analysis.views import wrap
    datasets = sorted({k for w in rows for k in (w.meta.get("metrics") or {})})
    prefix = sum(w.sha256_kind == "prefix" for w in rows)
    notes = [f"top-1, top-5: accuracy (%) on {', '.join(datasets) or 'the data set'} as published with the weights; "
             "default: the entry `cnnkit weights download MODEL` and weights=\"DEFAULT\" take."]
    if prefix:
        notes.append(f"{prefix} of {len(rows)} files are checked against the first 8 hex digits of their SHA-256, "
                     "in the file name (what torchvision publishes and checks); --json shows every field.")
    print("\n" + "\n".join(w for n in notes for w in wrap(n)))
    return 0


def _weights_download(args) -> int:
    from ..models.weights import download_weights, get_weights
    w = get_weights(args.name)                     # a weights name, or a model's name: its default weights
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
                                   "fresh weights) to an ONNX file with a dynamic batch dimension: input 'input' "
                                   "(N×C×H×W float32, normalised), output 'logits'; a run's classes, mean/std and "
                                   "input size are stored in the model's metadata_props.")
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
    wl = wsub.add_parser("list", help="list the registered weights",
                         description="The registered pre-trained weights: name, model, published top-1/top-5 "
                                     "accuracy, parameters, GMACs, input size, and which are each model's default.")
    wl.add_argument("--model", help="only the weights of this zoo model")
    wl.add_argument("--json", action="store_true", help="JSON: every entry with its full meta")
    wl.set_defaults(func=_weights_list)
    wd = wsub.add_parser("download", help="download (and verify) weights into the cache",
                         description="Download named weights (or a model's default ones) into the cache, verify "
                                     "their SHA-256 and print the file's path; an interrupted download resumes.")
    wd.add_argument("name", help="weights name (ResNet18_Weights.IMAGENET1K_V1) or a model name (resnet18: its "
                                 "default weights)")
    wd.add_argument("--cache", metavar="DIR", help="cache folder (default $CNNKIT_HOME/weights or "
                                                  "~/.cache/cnnkit/weights)")
    wd.add_argument("--quiet", action="store_true", help="no progress messages")
    wd.set_defaults(func=_weights_download)
