"""Small real pieces for the trainer tests: a tiny network with the parts whose state a checkpoint
must carry (convolution, BatchNorm running statistics, Dropout drawing from cnnkit's generator),
separable image blobs, and loaders over them. Small enough to train in a fraction of a second."""
from __future__ import annotations

import numpy as np

from cnnkit import nn
from cnnkit.data import ArrayDataset, DataLoader


class TinyNet(nn.Module):
    def __init__(self, num_classes=3, width=4):
        super().__init__()
        self.config = {"name": "tiny_net", "kwargs": {"num_classes": num_classes, "width": width}}
        self.conv = nn.Conv2d(1, width, 3)             # (N, 1, 6, 6) → (N, w, 4, 4)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(width * 16, num_classes)

    def forward(self, x):
        return self.fc(self.drop(self.flatten(self.relu(self.bn(self.conv(x))))))


def blobs(n=120, classes=3, seed=0):
    """Separable 6×6 images: (x float32 (n, 1, 6, 6), y int64 (n,))."""
    r = np.random.default_rng(seed)
    centres = r.standard_normal((classes, 1, 6, 6)) * 1.5
    y = r.integers(0, classes, n)
    x = (centres[y] + r.standard_normal((n, 1, 6, 6))).astype(np.float32)
    return x, y.astype(np.int64)


def loaders(seed=0, batch_size=16):
    x, y = blobs(seed=1)
    classes = ["a", "b", "c"]
    train = DataLoader(ArrayDataset(x[:90], y[:90], classes), batch_size=batch_size, shuffle=True, seed=seed)
    val = DataLoader(ArrayDataset(x[90:], y[90:], classes), batch_size=64)
    return train, val
