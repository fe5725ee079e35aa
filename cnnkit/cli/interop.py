"""``cnnkit convert`` (PyTorch .pth ↔ safetensors) and ``cnnkit export`` (ONNX)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import CLIError


def _parse_size(text: str) -> tuple:
    try:
        size = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise CLIError(f"--input must look like C,H,W (e.g. 3,224,224), got {text!r}") from None
    if not size or any(v < 1 for v in size):
        raise CLIError(f"--input sizes must be positive, got {text!r}")
    return size


def _convert(args) -> int:
    from ..io.torch_weights import convert, read_state_dict
    out = convert(args.src, args.dst)
    n = len(read_state_dict(out))
    print(f"wrote {out} ({n} tensors)")
    return 0


def _export(args) -> int:
    from ..io.onnx_export import export_onnx
    from ..models import create, default_input_size, names
    src = Path(args.model)
    if src.is_dir():
        from ..train.run import load_run
        run = load_run(src)
        model, size = run.model, tuple(run.input_size)
    elif args.model in names() or args.model.lower().replace("-", "_") in names():
        model = create(args.model)
        size = default_input_size(args.model)
        print(f"note: {args.model} has freshly initialised weights (pass a run directory to export trained ones)",
              file=sys.stderr)
    else:
        raise CLIError(f"{args.model!r} is neither a run directory nor a model name (see `cnnkit models`)")
    if args.input:
        size = _parse_size(args.input)
    export_onnx(model, size, args.onnx)
    print(f"wrote {args.onnx} (input N×{'×'.join(str(v) for v in size)})")
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
