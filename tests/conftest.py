import os

import numpy as np
import pytest
from hypothesis import settings

# Randomised configurations: enough cases to find bugs, few enough to keep CI short.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
