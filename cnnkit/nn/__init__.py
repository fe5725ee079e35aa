"""Neural-network modules (state) on top of ``cnnkit.nn.functional`` (math)."""
from . import functional, init
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from . import fusion  # noqa: E402  (after the modules it folds)

__all__ = ["functional", "init", "fusion"] + list(_modules_all)
