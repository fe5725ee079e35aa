"""Optimisers and learning-rate schedulers with torch.optim's update rules.

``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and ``Adagrad`` share :class:`Optimizer` (parameter groups,
``zero_grad``, ``step``, ``state_dict``/``load_state_dict``); schedulers live in
``cnnkit.optim.lr_scheduler`` (``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``,
``LinearLR``).
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "required", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
