"""Optimizers, as Keras 3 updates weights: SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, Nadam,
Adadelta, Lion, Ftrl.

Each ``update_step`` docstring holds its equations; ``base.py`` holds what they share
(clipping, weight decay, slots, the step counter) and the order Keras does it in.
"""
from unrolled.optimizers import schedules
from unrolled.optimizers.adadelta import Adadelta, Lion
from unrolled.optimizers.adagrad import Adagrad
from unrolled.optimizers.adam import Adam, AdamW
from unrolled.optimizers.adamax import Adamax, Nadam
from unrolled.optimizers.base import Optimizer
from unrolled.optimizers.ftrl import Ftrl
from unrolled.optimizers.rmsprop import RMSprop
from unrolled.optimizers.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Nadam",
           "Adadelta", "Lion", "Ftrl", "schedules", "get"]

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
            "adamax": Adamax, "nadam": Nadam, "adadelta": Adadelta, "lion": Lion,
            "ftrl": Ftrl}


def get(identifier):
    """An optimizer from a name (any case: "adam", "Adam", "RMSprop") or an instance.

    A name gives a fresh optimizer with Keras's defaults.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Unknown optimizer {identifier!r}. Known names (any case): "
                f"{', '.join(_BY_NAME)}."
            )
        return cls()
    raise TypeError(
        f"Could not interpret optimizer identifier {identifier!r} of type "
        f"{type(identifier).__name__}: expected a name such as 'adam' or an Optimizer."
    )
