from .module import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from . import activation, conv, linear, loss, module, norm, pooling

__all__ = [n for m in (module, conv, pooling, activation, linear, norm, loss) for n in m.__all__]
