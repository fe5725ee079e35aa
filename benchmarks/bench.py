"""cnnkit next to PyTorch: the full benchmark table (a thin wrapper over ``cnnkit.benchmark``).

    python benchmarks/bench.py            # every case (a few minutes on 2 cores)
    python benchmarks/bench.py --quick    # smoke run
    python benchmarks/bench.py --cases conv network --json

Same options as ``cnnkit bench``.
"""
import sys

from cnnkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
