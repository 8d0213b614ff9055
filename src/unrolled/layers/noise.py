"""Regularization layers: SpatialDropout1D, GaussianNoise, GaussianDropout, and
ActivityRegularization, as in ``keras.layers``.

The three noise layers are the identity outside training. In training they draw their
noise once in ``forward`` and keep it in the cache, so ``backward`` multiplies by exactly
the draws the forward used. Draws come from ``unrolled.utils.rng()``, or, with ``seed``,
from the layer's own generator (the same ``seed`` repeats the same sequence of draws), as
``Dropout`` does. Keras's random numbers cannot be reproduced; the distributions are
Keras's.

ActivityRegularization is the identity with ``activity_regularizer=L1L2(l1, l2)``: its
input adds ``(l1 * sum|x| + l2 * sum x^2) / batch_size`` to the training loss
(``model.losses``), through the activity regularizer every layer has (``base.py``).
"""
import math

import numpy as np

from .. import regularizers as regularizers_mod
from .. import utils
from .base import Layer
from .reshaping import Dropout

__all__ = ["SpatialDropout1D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"]


def _check_unit_interval(value, what):
    """Keras's check of ``rate``/``stddev``: a number in [0, 1]."""
    if not 0 <= value <= 1:
        raise ValueError(f"Invalid value received for argument `{what}`. Expected a float value "
                         f"between 0 and 1. Received: {what}={value}")


class SpatialDropout1D(Dropout):
    """Dropout of whole channels: one keep/drop decision per (sample, feature), the same at
    every time step (noise shape ``(batch, 1, features)``); kept channels are scaled by
    ``1 / (1 - rate)``. Input ``(batch, timesteps, features)``. ``y = x * m``, so
    ``dx = dy * m`` with the same ``m``.

    Keras 3 writes no ``trainable`` key in its config (its constructor takes ``rate``,
    ``seed``, ``name`` and ``dtype`` only), so unrolled leaves it out of the files it writes
    (``keras_config_omits``), nor ``noise_shape``: ``noise_shape=None`` is accepted for the
    key tf.keras 2 files hold; any other value is refused.
    """

    input_ndim = 3
    keras_config_omits = ("trainable", "noise_shape")

    def __init__(self, rate, seed=None, noise_shape=None, **kwargs):
        if "activity_regularizer" in kwargs:                # Keras's constructor has none
            raise TypeError("SpatialDropout1D got an unexpected keyword argument "
                            "'activity_regularizer' (Keras's takes rate, seed, name, dtype).")
        if noise_shape is not None:
            raise ValueError(
                f"SpatialDropout1D: noise_shape is always (batch, 1, features); received "
                f"noise_shape={noise_shape!r}. Use Dropout(rate, noise_shape=...) for another.")
        super().__init__(rate, noise_shape=None, seed=seed, **kwargs)

    def _noise_shape(self, x):
        return (x.shape[0], 1, x.shape[2])

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}


class GaussianNoise(Layer):
    """Additive zero-mean Gaussian noise in training: ``y = x + n``, ``n ~ N(0, stddev^2)``
    drawn per entry; the identity outside training. ``dx = dy`` (the noise does not depend
    on ``x``)."""

    supports_masking = True

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_unit_interval(stddev, "stddev")
        self.stddev = stddev
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x, *, training=False, mask=None):
        if not training or self.stddev == 0:
            return x, None
        gen = self._generator or utils.rng()
        noise = gen.standard_normal(x.shape, dtype=x.dtype) * x.dtype.type(self.stddev)
        return x + noise, None

    def backward(self, cache, dy):
        return [dy], []                                     # y = x + n  =>  dx = dy

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(Layer):
    """Multiplicative Gaussian noise in training: ``y = x * m``, ``m ~ N(1, rate / (1 - rate))``
    per entry (standard deviation ``sqrt(rate / (1 - rate))``); the identity outside training.
    ``dx = dy * m`` with the same ``m``. ``rate=1`` (an infinite deviation) is accepted, as
    Keras accepts it, and refused when training would use it."""

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_unit_interval(rate, "rate")
        self.rate = rate
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x, *, training=False, mask=None):
        if not training or self.rate == 0:
            return x, None
        if self.rate == 1:
            raise ValueError(f"GaussianDropout '{self.name}': rate=1 makes the noise's standard "
                             "deviation sqrt(rate / (1 - rate)) infinite; use a rate below 1.")
        gen = self._generator or utils.rng()
        std = math.sqrt(self.rate / (1.0 - self.rate))
        m = gen.standard_normal(x.shape, dtype=x.dtype) * x.dtype.type(std) + x.dtype.type(1)
        return x * m, m

    def backward(self, m, dy):
        return [dy if m is None else dy * m], []            # y = x * m  =>  dx = dy * m

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity with ``activity_regularizer=L1L2(l1, l2)``, as Keras 3 builds it: each
    call adds ``(l1 * sum|x| + l2 * sum x^2) / B`` to the loss (``B``: the batch size, 0 for
    an empty batch), in training and in ``evaluate`` alike. The penalty and its gradient
    (``dx = dy + (l1 * sign(x) + 2 * l2 * x) / B``) come from the activity regularizer's
    mechanism in ``base.py``, shared by every layer; ``layer.losses`` holds the last call's.
    Keras's config holds ``l1`` and ``l2``, not the regularizer.
    """

    supports_masking = True
    keras_config_omits = ("activity_regularizer",)   # Keras's class sets it from l1, l2

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(activity_regularizer=regularizers_mod.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = l1, l2

    def forward(self, x, *, training=False, mask=None):
        return x, None

    def backward(self, cache, dy):
        return [dy], []                                     # y = x  =>  dx = dy

    def get_config(self):
        config = {**super().get_config(), "l1": self.l1, "l2": self.l2}
        config.pop("activity_regularizer", None)
        return config


# class name: (unrolled class, Keras snake-case name, options in the config): saving/serialize.py
# reads and writes these layers through this table.
KERAS_LAYERS = {
    "SpatialDropout1D": (SpatialDropout1D, "spatial_dropout1d", ("rate", "seed", "noise_shape")),
    "GaussianNoise": (GaussianNoise, "gaussian_noise", ("stddev", "seed")),
    "GaussianDropout": (GaussianDropout, "gaussian_dropout", ("rate", "seed")),
    "ActivityRegularization": (ActivityRegularization, "activity_regularization", ("l1", "l2")),
}
