"""Core layers: Dense, Activation, Flatten — each forward with its backward beside it."""
import math

import numpy as np

from .. import activations, initializers
from .base import Layer
from .recurrent.gates import matmul_last


class Dense(Layer):
    """``y = activation(x @ kernel + bias)`` on the last axis of an input of rank >= 2.

    Weights: ``kernel (F, units)``, ``bias (units,)``. On ``(N, T, F)`` input every time
    step goes through the same kernel, as in Keras.
    """

    weight_rules = ("kernel", "bias")                  # kernel_regularizer, ... (base.py)

    min_ndim = 2
    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                f"Received an invalid value for `units`, expected a positive integer. "
                f"Received: units={units!r}"
            )
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        self._feature_size = input_shape[-1]
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer) if self.use_bias else None
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, *, training=False, mask=None):
        z = matmul_last(x, self.kernel.value)
        if self.use_bias:
            z += self.bias.value
        y = self.activation(z)
        return y, (x, z, y)

    def backward(self, cache, dy):
        x, z, y = cache
        dz = self.activation.backward(z, y, dy)            # through the activation
        x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, self.units)
        dkernel = x2.T @ dz2                                 # z = x W + b  =>  dW = x^T dz
        dx = matmul_last(dz, self.kernel.value.T)            #               dx = dz W^T
        grads = [dkernel]
        if self.use_bias:
            grads.append(dz2.sum(axis=0))                    #               db = sum dz
        return [dx], grads

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias}


class Activation(Layer):
    """Applies an activation elementwise: ``y = activation(x)``."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, *, training=False, mask=None):
        y = self.activation(x)
        return y, (x, y)

    def backward(self, cache, dy):
        x, y = cache
        return [self.activation.backward(x, y, dy)], []

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Flatten(Layer):
    """Reshapes ``(N, d1, d2, ...)`` to ``(N, d1*d2*...)``."""

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def forward(self, x, *, training=False, mask=None):
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))), x.shape

    def backward(self, shape, dy):
        return [dy.reshape(shape)], []
