"""Learn the Sobel filter from data (the lecture's "why not learn the filters?").

A single Conv2d(1, 1, 3, bias=False) starts from random weights and is trained by gradient descent
(Adam, cosine-annealed learning rate, mean squared error) to reproduce the Sobel-x responses of a
real photograph (scikit-image's ``camera``, or your own image). It prints the learned kernel next
to the hand-made one.

    python examples/learn_sobel.py                      # camera, 128×128 crop
    python examples/learn_sobel.py photo.png --filter sobel_y --steps 3000
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from cnnkit import filters
from cnnkit.io import read_image


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image", nargs="?", help="image file (default: scikit-image's camera)")
    ap.add_argument("--filter", default="sobel_x", choices=filters.names(), help="hand-made filter to learn")
    ap.add_argument("--size", type=int, default=128, help="side of the centre crop used for training")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    if args.image:
        img = read_image(args.image, mode="gray")[..., 0]
    else:
        try:
            import skimage.data
        except ImportError:
            ap.error("scikit-image is not installed: pass an IMAGE file")
        img = skimage.data.camera()
    h, w = img.shape
    s = min(args.size, h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].astype(np.float32) / 255
    target_kernel = filters.kernel(args.filter)
    k = target_kernel.shape[0]
    targets = filters.filter2d(crop, target_kernel)                 # the hand-made filter's responses

    res = filters.learn(crop, targets, kernel_size=k, steps=args.steps, lr=args.lr, seed=args.seed)

    np.set_printoptions(precision=4, suppress=True, floatmode="fixed")
    print(f"{args.filter} on a {s}×{s} crop, {args.steps} steps of Adam in {res.seconds:.2f} s; "
          f"MSE {res.losses[0]:.3g} → {res.losses[-1]:.3g}")
    print("learned kernel:")
    print(res.kernel)
    print(f"hand-made {args.filter}:")
    print(target_kernel)
    print(f"largest difference per weight: {np.abs(res.kernel - target_kernel).max():.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
