"""Zoo networks train through the trainer on data read by cnnkit.data's CIFAR-10 binary loader
from generated files in the official record format (1 label byte + 3,072 pixel bytes, channel planes)."""
import numpy as np
import pytest

import cnnkit
from cnnkit import data, models, optim
from cnnkit.train import fit

pytestmark = pytest.mark.slow


def write_cifar(root, per_file=8, seed=0):
    """Six batch files whose class shows as a colour and a bright square at a class-dependent place."""
    r = np.random.default_rng(seed)
    d = root / "cifar10" / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        labels = r.integers(0, 4, per_file).astype(np.uint8)
        images = r.integers(0, 60, (per_file, 3, 32, 32)).astype(np.uint8)  # (N, 3, 32, 32)
        for i, y in enumerate(labels):
            images[i, y % 3] += 120
            images[i, :, 8 * y:8 * y + 8, 8 * y:8 * y + 8] = 250
        records = np.concatenate([labels[:, None], images.reshape(per_file, -1)], axis=1)  # (N, 3073)
        (d / name).write_bytes(records.astype(np.uint8).tobytes())
    return root


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = write_cifar(tmp_path_factory.mktemp("cifar"))
    splits = data.load("cifar10", root=root, val_fraction=0.0)
    assert splits.train.images.shape == (40, 3, 32, 32) and splits.test.images.shape == (8, 3, 32, 32)
    return splits


def losses_of(model, splits, lr, epochs=4):
    loader = data.DataLoader(splits.train, batch_size=20, shuffle=True, seed=0, transform=splits.normalize())
    h = fit(model, loader, epochs=epochs, optimizer=optim.Adam(model.parameters(), lr=lr), log=False)
    return h["train_loss"]


def test_resnet20_loss_falls_on_cifar_format_data(cifar):
    cnnkit.manual_seed(0)
    model = models.create("resnet20", num_classes=10)
    losses = losses_of(model, cifar, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0], losses


def test_vgg_style_pattern_net_loss_falls_on_cifar_format_data(cifar):
    cnnkit.manual_seed(0)
    model = models.from_pattern("INPUT -> [[CONV -> RELU]*2 -> POOL]*2 -> FC -> RELU -> FC",
                                channels=8, fc_hidden=32, num_classes=10)
    losses = losses_of(model, cifar, lr=5e-3, epochs=5)
    assert losses[-1] < 0.7 * losses[0], losses
