"""``cnnkit filters`` (the kernel bank) and ``cnnkit filter`` (apply one, a custom one, or all)."""
from __future__ import annotations

import argparse
import sys

from . import CLIError
from .output import to_json


def register(subparsers) -> None:
    from ..filters import BORDERS, MODES

    p = subparsers.add_parser("filters", help="list the kernel bank with its matrices",
                              description="List the kernel bank: name, what it does, matrix.")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these kernels (default: all)")
    p.add_argument("--json", action="store_true",
                   help="JSON: per kernel its name, description, matrix and divisor (kernel = matrix / divisor)")
    p.set_defaults(func=cmd_filters)

    p = subparsers.add_parser(
        "filter", help="filter an image with a bank kernel, a custom kernel, or all of them",
        description="Filter IMAGE with the bank kernel NAME (see `cnnkit filters`), a custom --kernel, or every\n"
                    "kernel (--all: a labelled contact sheet, each panel scaled to stay readable). Responses are\n"
                    "written as 8-bit images (clipped to 0-255, or min-max normalised) and optionally as raw\n"
                    "float32 .npy.",
        epilog='examples:\n  cnnkit filter sobel_x photo.png -o edges.png --normalize\n'
               '  cnnkit filter --kernel "1,0,-1;2,0,-2;1,0,-1" photo.png -o edges.png --raw edges.npy\n'
               '  cnnkit filter --all photo.png -o sheet.png',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", metavar="NAME", help="bank kernel name (see `cnnkit filters`); omit it with "
                                                          "--kernel or --all")
    p.add_argument("image", metavar="IMAGE", help="the image file to filter")
    p.add_argument("-o", "--output", metavar="OUT", help="output image (.png, .jpg, .bmp, .tif)")
    p.add_argument("--raw", metavar="OUT.npy", help="also save the float32 response (H, W, C) as .npy")
    p.add_argument("--kernel", metavar="ROWS", help='custom kernel, rows split by ";" and values by ",": '
                                                    '"1,0,-1;2,0,-2;1,0,-1" (fractions like 1/9 allowed)')
    p.add_argument("--all", action="store_true", help="apply every bank kernel; write a labelled contact sheet")
    p.add_argument("--border", default="reflect_101", choices=list(BORDERS),
                   help="pixels outside the image (default: reflect_101, OpenCV's)")
    p.add_argument("--mode", default="same", choices=list(MODES), help="'same' size or 'valid' (shrinks)")
    p.add_argument("--convolve", action="store_true", help="true convolution (flip the kernel) instead of correlation")
    p.add_argument("--gray", action="store_true", help="convert the image to greyscale first")
    p.add_argument("--alpha", default="error", choices=["error", "drop", "white", "black"],
                   help="transparent images: refuse (default), ignore alpha, or composite over white/black")
    scaling = p.add_mutually_exclusive_group()
    scaling.add_argument("--normalize", dest="scaling", action="store_const", const="minmax",
                         help="stretch the response's [min, max] to 0-255 (with --all: each panel's)")
    scaling.add_argument("--clip", dest="scaling", action="store_const", const="clip",
                         help="clip the response to 0-255 (default for one filter; --all's default scales "
                              "each panel to stay readable, as its caption says)")
    p.set_defaults(func=cmd_filter, scaling=None)


def cmd_filters(args) -> int:
    from ..filters import describe, kernel, names
    from ..filters.bank import kernel_fraction

    chosen = args.names or names()
    for name in chosen:
        describe(name)  # unknown names fail before anything is printed
    if args.json:
        rows = []
        for name in chosen:
            matrix, divisor = kernel_fraction(name)
            rows.append({"name": name, "description": describe(name)[0], "matrix": matrix, "divisor": divisor,
                         "kernel": kernel(name).tolist()})
        sys.stdout.write(to_json(rows))
        return 0
    from ..analysis.views import wrap
    blocks = []
    for name in chosen:
        summary, matrix = describe(name)
        blocks.append(f"{name}\n" + "\n".join(wrap("  " + summary)) + "\n"
                      + "\n".join("  " + line for line in matrix.splitlines()))
    print("\n\n".join(blocks))
    return 0


def cmd_filter(args) -> int:
    from ..filters import contact_sheet_file, filter_file, kernel, names, parse_kernel

    positional = [a for a in (args.name, args.image) if a is not None]
    custom = args.kernel is not None
    if args.all and custom:
        raise CLIError("--all and --kernel cannot be used together")
    if args.all or custom:
        if len(positional) != 1:
            what = "--all" if args.all else "--kernel"
            raise CLIError(f"with {what} give only the IMAGE, got {len(positional)} arguments: {' '.join(positional)}")
        name, image_path = None, positional[0]
    else:
        if len(positional) != 2:
            raise CLIError("expected NAME IMAGE (or --kernel ROWS IMAGE, or --all IMAGE); "
                           f"got {len(positional)} argument(s): {' '.join(positional)}")
        name, image_path = positional
    if args.all and args.raw:
        raise CLIError("--raw is for one filter; --all writes only the contact sheet")
    if args.all and args.mode != "same":
        raise CLIError("--all needs --mode same (every tile has the image's size)")
    if not args.output and not args.raw:
        raise CLIError("nothing to write: give -o OUT.png and/or --raw OUT.npy")
    if args.all:
        image, sheet = contact_sheet_file(image_path, args.output, border=args.border,
                                          scaling=args.scaling or "auto", gray=args.gray, alpha=args.alpha)
        h, w, c = image.shape
        print(f"{args.output}: contact sheet of the original and {len(names())} filters "
              f"({sheet.shape[1]}×{sheet.shape[0]}) from {image_path} ({w}×{h}×{c})")
        return 0
    k = parse_kernel(args.kernel) if custom else kernel(name)
    scaling = args.scaling or "clip"
    done = filter_file(image_path, k, args.output, args.raw, border=args.border, mode=args.mode,
                       correlate=not args.convolve, gray=args.gray, alpha=args.alpha, scaling=scaling)
    (h, w, c), response = done.image.shape, done.response
    ho, wo = response.shape[:2]
    label = name or f"kernel {k.shape[0]}×{k.shape[1]}"
    edges = "mode valid: no border" if args.mode == "valid" else f"mode same, border {args.border}"
    print(f"wrote {' and '.join(map(str, done.written))}: {label} on {image_path} ({w}×{h}×{c}) → {wo}×{ho}×{c} "
          f"({edges})")
    lo, hi = float(response.min()), float(response.max())
    if not args.output:
        how = ""
    elif scaling == "minmax":
        how = ", stretched to 0–255 (--normalize)"
    else:
        outside = float(((response < 0) | (response > 255)).mean())
        how = f", clipped to 0–255 (--clip: {100 * outside:.1f} % of the values outside)"
    print(f"  response [{lo:.4g}, {hi:.4g}]{how}")
    return 0
