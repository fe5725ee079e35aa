import pytest

import cnnkit


@pytest.fixture(scope="module")
def lenet():
    """LeNet-5 with the weights of seed 0 (untrained)."""
    cnnkit.manual_seed(0)
    return cnnkit.models.create("lenet5")
