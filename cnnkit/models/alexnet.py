"""AlexNet: the original (Krizhevsky et al. 2012, as the lecture describes it) and torchvision's.

Both keep torchvision's layout — ``features.N`` (convolutions), ``classifier.N`` (dropout and FC) —
so ``alexnet(variant="torchvision")`` loads torchvision's state dict by key.

* ``variant="original"`` (default): 227×227×3 input (the paper's 224 gives a non-integer
  ``(224 − 11)/4 + 1``), conv1 96 11×11/4 → 55×55×96, ReLU, LRN, overlapping 3×3/2 max pool →
  27×27×96; conv2 256 5×5 (groups = 2, the two GPUs), conv3 384 3×3, conv4 384 3×3 (groups = 2),
  conv5 256 3×3 (groups = 2); pool → 6×6×256; FC 4096 – 4096 – 1000 with dropout 0.5.
  60,965,224 parameters ("60M"). Fixed 227×227 input (no adaptive pooling, as in the paper).
* ``variant="torchvision"``: "One weird trick" single tower, 64-192-384-256-256 filters, no LRN,
  no groups, 224 input with padding 2, ``avgpool = AdaptiveAvgPool2d(6)`` (any input ≥ 63×63):
  61,100,840 parameters.
"""
from __future__ import annotations

from .. import nn
from .registry import register_model
from .weights import torchvision_weights

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """AlexNet; see the module docstring for the two variants.

    Args:
        num_classes (int): outputs (default 1000).
        variant (str): ``'original'`` (default) or ``'torchvision'``.
        dropout (float): dropout probability before FC6 and FC7 (default 0.5).

    Shape:
        Original: ``(N, 3, 227, 227)`` → ``(N, num_classes)``; torchvision: ``(N, 3, H, W)`` with
        ``H, W >= 63`` → ``(N, num_classes)``.

    Example::

        >>> model = cnnkit.models.alexnet()            # 227×227, conv1 → 55×55×96, pool1 → 27×27×96
    """

    def __init__(self, num_classes: int = 1000, variant: str = "original", dropout: float = 0.5):
        super().__init__()
        if variant not in ("original", "torchvision"):
            raise ValueError(f"alexnet: variant must be 'original' or 'torchvision', got variant={variant!r}")
        self.variant = variant
        if variant == "original":
            # LRN: the paper's b = a / (k + α·Σa²)^β with k=2, n=5, α=1e-4, β=0.75. cnnkit's (PyTorch's)
            # LocalResponseNorm divides alpha by size, so the paper's α is alpha = 5·1e-4 here.
            lrn = lambda: nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)  # noqa: E731
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, 11, stride=4),                   # 0: 227 → 55×55×96
                nn.ReLU(inplace=True), lrn(),                     # 1, 2
                nn.MaxPool2d(3, stride=2),                        # 3: → 27×27×96
                nn.Conv2d(96, 256, 5, padding=2, groups=2),       # 4: → 27×27×256
                nn.ReLU(inplace=True), lrn(),                     # 5, 6
                nn.MaxPool2d(3, stride=2),                        # 7: → 13×13×256
                nn.Conv2d(256, 384, 3, padding=1),                # 8: → 13×13×384 (reads both towers)
                nn.ReLU(inplace=True),                            # 9
                nn.Conv2d(384, 384, 3, padding=1, groups=2),      # 10: → 13×13×384
                nn.ReLU(inplace=True),                            # 11
                nn.Conv2d(384, 256, 3, padding=1, groups=2),      # 12: → 13×13×256
                nn.ReLU(inplace=True),                            # 13
                nn.MaxPool2d(3, stride=2),                        # 14: → 6×6×256
            )
        else:
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),  # 0, 1: 224 → 55×55×64
                nn.MaxPool2d(3, stride=2),                                         # 2: → 27×27×64
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),           # 3, 4
                nn.MaxPool2d(3, stride=2),                                         # 5: → 13×13×192
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),          # 6, 7
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),          # 8, 9
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),          # 10, 11
                nn.MaxPool2d(3, stride=2),                                         # 12: → 6×6×256
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()                                     # → 9216
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


@register_model(input_size=(3, 227, 227))
def alexnet(num_classes: int = 1000, variant: str = "original", dropout: float = 0.5) -> AlexNet:
    """AlexNet, original (227×227, LRN, groups = 2; 60,965,224 parameters) or ``variant="torchvision"``
    (61,100,840 parameters, torchvision's keys); see :class:`AlexNet`."""
    return AlexNet(num_classes, variant, dropout)

# torchvision's ImageNet-1k weights (cnnkit.models.weights): file, parameters, MACs in G ("GFLOPS") and
# (acc@1, acc@5) as torchvision publishes them; tests/models/test_weights.py checks them against this model.
torchvision_weights("alexnet", "AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", 61_100_840, 0.714,
                    (56.522, 79.066), model_kwargs={"variant": "torchvision"})
