"""The ``cnnkit`` command: results to stdout, progress and logs to stderr, non-zero exit on error.

Each group of subcommands lives in its own module exposing ``register(subparsers)``, which adds
its parsers and sets ``func`` (called with the parsed arguments, returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# module name → the subcommands it registers (for the help text while a module is absent)
GROUPS = ["analysis", "filters", "train", "bench", "tune", "interop", "viz", "serve"]


class CLIError(Exception):
    """A user-facing error: printed as ``cnnkit: error: <message>`` with exit code 2."""


def parse_size(text):
    """``--input`` text (``3,224,224``, ``3x224x224`` or ``3×224×224``) → a tuple of positive ints."""
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").replace("×", ",").split(",") if p.strip()]
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise CLIError(f"--input must be C,H,W (e.g. 3,224,224), got {text!r}") from None
    if not size or any(v < 1 for v in size):
        raise CLIError(f"--input must be positive integers C,H,W, got {text!r}")
    return size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnkit", description="Convolutional neural networks from scratch on NumPy.")
    parser.add_argument("--version", action="version", version=f"cnnkit {__import__('cnnkit').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        try:
            mod = importlib.import_module(f"cnnkit.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cnnkit.cli.{group}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"cnnkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnkit models | head`: the reader left; not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
