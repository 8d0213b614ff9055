"""Weight regularizers with Keras's names and defaults: a penalty added to the loss.

A regularizer given to a layer (``Dense(4, kernel_regularizer=L2(0.01))``, or the
strings ``"l1"``, ``"l2"``, ``"l1_l2"``) adds ``penalty(w)`` to the training loss for each
of its trainable weights, as Keras's ``model.losses`` does, and ``gradient(w)``,
dPenalty/dw, to that weight's gradient::

    L1(l1):        penalty = l1 * sum(|w|)       gradient = l1 * sign(w)
    L2(l2):        penalty = l2 * sum(w ** 2)    gradient = 2 * l2 * w
    L1L2(l1, l2):  both

The logged ``loss`` of ``fit``/``evaluate``/``train_on_batch`` includes the penalties, as
in Keras. Keras's ``OrthogonalRegularizer`` is not implemented (refused by ``get``).
"""
import numpy as np


class Regularizer:
    """A penalty on a weight. Subclasses give ``__call__`` (the penalty, a scalar) and
    ``gradient`` (dPenalty/dw, the weight's shape)."""

    def __call__(self, w):
        raise NotImplementedError

    def gradient(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}


def _float(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid value for argument {name}: expected a float. "
                         f"Received: {name}={value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative "
                         f"finite float. Received: {name}={value}")
    return value


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _float(l1, "l1"), _float(l2, "l2")

    def __call__(self, w):
        w = np.asarray(w)
        t = w.dtype.type
        total = t(0)
        if self.l1:
            total += t(self.l1) * np.sum(np.abs(w))
        if self.l2:
            total += t(self.l2) * np.sum(np.square(w))
        return total

    def gradient(self, w):
        w = np.asarray(w)
        t = w.dtype.type
        g = np.zeros_like(w)
        if self.l1:
            g += t(self.l1) * np.sign(w)             # d|w|/dw = sign(w), 0 at 0 (as TF)
        if self.l2:
            g += t(2 * self.l2) * w
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w ** 2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
# Keras's names: the classes and their snake-case forms (Keras 2 also wrote l1_l2's class
# as "L1L2" with both factors).
NAMES = {**CLASSES, "l1": L1, "l2": L2, "l1_l2": L1L2}
NOT_IMPLEMENTED = {"OrthogonalRegularizer", "orthogonal_regularizer"}


def get(identifier):
    """A regularizer from ``None``, a name (``"l2"``), a Keras config dict
    (``{"class_name": "L2", "config": {"l2": 0.01}}``) or a ``Regularizer``."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        name, config = identifier.get("class_name"), identifier.get("config") or {}
    else:
        name, config = identifier, {}
    if isinstance(name, str) and name in NOT_IMPLEMENTED:
        raise NotImplementedError(f"The regularizer {name!r} is not implemented in unrolled; "
                                  "L1, L2 and L1L2 are.")
    if not isinstance(name, str) or name not in NAMES or not isinstance(config, dict):
        if callable(identifier):
            raise NotImplementedError(
                "A regularizer function needs its gradient in unrolled: subclass "
                "unrolled.regularizers.Regularizer with __call__ (the penalty) and gradient.")
        raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")
    try:
        return NAMES[name](**config)
    except TypeError as e:
        raise ValueError(f"Invalid config for regularizer {name!r}: {e}") from None


def serialize(regularizer):
    """Keras 3's config dict of a regularizer (None for None)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}
