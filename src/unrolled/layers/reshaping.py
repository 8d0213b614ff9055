"""Layers that move or drop values without weights: Dropout, RepeatVector, Reshape.

Each backward is the forward's bookkeeping undone: Dropout multiplies by the same mask,
RepeatVector sums the copies, Reshape reshapes back.
"""
import math

import numpy as np

from .. import utils
from .base import Layer


class Dropout(Layer):
    """Inverted dropout, as ``keras.layers.Dropout``.

    In training every entry is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)``, so the expected output equals the input; outside training the
    layer is the identity. ``noise_shape`` draws one keep/drop decision per entry of that
    shape and broadcasts it (``None`` entries take the input's size), e.g. ``(None, 1, F)``
    drops the same features at every time step. ``rate=1`` gives zeros.

    Draws come from ``unrolled.utils.rng()``, or, with ``seed``, from the layer's own
    generator, so that a seeded layer repeats its sequence of masks.
    """

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(
                f"Invalid value received for argument `rate`. Expected a float value between "
                f"0 and 1. Received: rate={rate!r}"
            )
        if noise_shape is not None:
            noise_shape = tuple(noise_shape)
            for i, d in enumerate(noise_shape):
                if d is not None and (not isinstance(d, (int, np.integer)) or d <= 0):
                    raise ValueError(
                        f"Invalid value received for argument `noise_shape`: every entry must "
                        f"be a positive integer or None. Received {d!r} at index {i} of "
                        f"noise_shape={noise_shape}."
                    )
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else None

    def _noise_shape(self, x):
        if self.noise_shape is None:
            return x.shape
        if len(self.noise_shape) != x.ndim:
            raise ValueError(
                f"Layer '{self.name}': noise_shape={self.noise_shape} must have one entry per "
                f"input axis; the input has shape {x.shape}."
            )
        return tuple(x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))

    def forward(self, x, *, training=False, mask=None):
        if not training or self.rate == 0:
            return x, None                                   # identity: backward passes dy
        if self.rate == 1:
            scale = np.zeros((1,) * x.ndim, x.dtype)         # everything dropped
        else:
            gen = self._generator or utils.rng()
            keep = gen.random(self._noise_shape(x)) >= self.rate
            scale = (keep / (1.0 - self.rate)).astype(x.dtype)   # 0 or 1/(1-rate)
        return x * scale, scale

    def backward(self, scale, dy):
        return [dy if scale is None else dy * scale], []    # y = x * scale  =>  dx = dy * scale

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class RepeatVector(Layer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``."""

    input_ndim = 2

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"Expected an integer value for `n`, got {type(n).__name__}.")
        if n <= 0:
            raise ValueError(f"Argument `n` should be a positive integer. Received: n={n}")
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x, *, training=False, mask=None):
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, cache, dy):
        return [dy.sum(axis=1)], []                          # every copy sends its gradient back

    def get_config(self):
        return {**super().get_config(), "n": self.n}


def _resolve_target_shape(input_shape, target_shape):
    """``target_shape`` with its ``-1`` (if any) worked out from ``input_shape`` (batch excluded).

    With an unknown input size the ``-1`` becomes ``None``. Sizes that cannot match raise
    a ValueError naming both shapes.
    """
    if None in input_shape:
        return tuple(None if d == -1 else d for d in target_shape)
    size = math.prod(input_shape)
    if -1 not in target_shape:
        if math.prod(target_shape) != size:
            raise ValueError(
                f"The total size of the tensor must be unchanged. Received: "
                f"input_shape={tuple(input_shape)} ({size} values per sample), "
                f"target_shape={target_shape} ({math.prod(target_shape)} values)."
            )
        return target_shape
    known = math.prod(d for d in target_shape if d != -1)
    if known == 0 or size % known != 0:
        raise ValueError(
            f"The total size of the tensor must be unchanged, but the input size cannot be "
            f"divided by the specified dimensions in target_shape. Received: "
            f"input_shape={tuple(input_shape)} ({size} values per sample), "
            f"target_shape={target_shape}: the known entries multiply to {known}."
        )
    return tuple(size // known if d == -1 else d for d in target_shape)


class Reshape(Layer):
    """Reshapes every sample to ``target_shape`` (the batch axis stays); one entry may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape)
        for d in target_shape:
            if not isinstance(d, (int, np.integer)) or d < -1:
                raise ValueError(
                    f"Each dimension in `target_shape` must be a non-negative integer, or -1 "
                    f"for a single unknown dimension. Received: target_shape={target_shape}."
                )
        if target_shape.count(-1) > 1:
            raise ValueError(
                f"There must be at most one unknown dimension (-1) in `target_shape`. "
                f"Received: target_shape={target_shape}."
            )
        self.target_shape = tuple(int(d) for d in target_shape)

    def build(self, input_shape):
        _resolve_target_shape(tuple(input_shape[1:]), self.target_shape)   # fail early
        self.built = True

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + _resolve_target_shape(tuple(input_shape[1:]), self.target_shape)

    def forward(self, x, *, training=False, mask=None):
        shape = _resolve_target_shape(x.shape[1:], self.target_shape)
        return x.reshape((x.shape[0],) + shape), x.shape

    def backward(self, x_shape, dy):
        return [dy.reshape(x_shape)], []

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Reorders the non-batch axes: ``dims`` is a permutation of ``1..rank`` (1-based, the
    batch axis excluded), ``y = transpose(x, (0,) + dims)``. Backward: the inverse
    permutation, ``dx = transpose(dy, argsort((0,) + dims))``. No masking, as Keras's."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in "
                f"`dims` must be consecutive and start from 1. Received dims={dims}")
        self.dims = tuple(int(d) for d in dims)
        self.input_ndim = len(dims) + 1

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def forward(self, x, *, training=False, mask=None):
        return np.transpose(x, (0,) + self.dims), None

    def backward(self, cache, dy):
        inverse = tuple(int(i) for i in np.argsort((0,) + self.dims))
        return [np.transpose(dy, inverse)], []              # y = P x  =>  dx = P^T dy

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}
