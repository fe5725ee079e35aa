"""conv2d forward and forward+backward next to PyTorch for the issue's layer shapes (the ``conv`` rows
of ``benchmarks/bench.py``). Extra arguments go to ``cnnkit bench`` (e.g. ``--quick``)."""
import sys

from cnnkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--cases", "conv", "--no-memory", *sys.argv[1:]]))
