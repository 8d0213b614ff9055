"""Weight constraints with Keras's names and defaults: a projection after each update.

A constraint given to a layer (``Dense(4, kernel_constraint=MaxNorm(2))``) is applied to
that weight after every optimizer step that updated it, ``w = constraint(w)``, as Keras's
optimizers do. The norms are taken along ``axis`` (0: per output unit of a ``(in, out)``
kernel), with Keras's ``epsilon`` of 1e-7::

    MaxNorm(max_value=2):  w * clip(norm, 0, max_value) / (eps + norm)
    NonNeg():              max(w, 0)
    UnitNorm():            w / (eps + norm)
    MinMaxNorm(min_value=0, max_value=1, rate=1):
                           w * (rate * clip(norm, min_value, max_value)
                                + (1 - rate) * norm) / (eps + norm)
"""
import numpy as np

from .config import epsilon          # keras.config.epsilon(), 1e-7 unless set, read per call


class Constraint:
    """A projection of a weight, ``__call__(w) -> w'`` of the same shape."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        w = np.asarray(w)
        t = w.dtype.type
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, t(self.max_value))
        return w * (desired / (t(epsilon()) + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    def __call__(self, w):
        return np.maximum(np.asarray(w), 0)


class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = np.asarray(w)
        return w / (w.dtype.type(epsilon()) + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        w = np.asarray(w)
        t = w.dtype.type
        norms = _norms(w, self.axis)
        desired = (t(self.rate) * np.clip(norms, t(self.min_value), t(self.max_value))
                   + (t(1) - t(self.rate)) * norms)
        return w * (desired / (t(epsilon()) + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm,
           "MinMaxNorm": MinMaxNorm}
# Keras's names, and Keras 2's older aliases (maxnorm, nonneg, unitnorm).
NAMES = {**CLASSES, "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
         "min_max_norm": MinMaxNorm, "maxnorm": MaxNorm, "nonneg": NonNeg,
         "unitnorm": UnitNorm}


def get(identifier):
    """A constraint from ``None``, a name (``"max_norm"``), a Keras config dict or a
    ``Constraint``."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if callable(identifier):                  # a function of the weight, as Keras takes
        return identifier
    if isinstance(identifier, dict):
        name, config = identifier.get("class_name"), identifier.get("config") or {}
    else:
        name, config = identifier, {}
    if not isinstance(name, str) or name not in NAMES or not isinstance(config, dict):
        raise ValueError(f"Could not interpret constraint identifier: {identifier!r}")
    try:
        return NAMES[name](**config)
    except TypeError as e:
        raise ValueError(f"Invalid config for constraint {name!r}: {e}") from None


def serialize(constraint):
    """Keras 3's config dict of a constraint (None for None)."""
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise ValueError(f"The constraint {constraint!r} is a function: it cannot be written "
                         "to a Keras file. Use one of Keras's built-in constraints.")
    return {"module": "keras.constraints", "class_name": type(constraint).__name__,
            "config": constraint.get_config(), "registered_name": None}
