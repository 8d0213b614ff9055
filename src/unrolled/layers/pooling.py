"""Pooling over the steps axis of ``(batch, steps, channels)`` (channels_last), and the
layers that only move steps: UpSampling1D, ZeroPadding1D, Cropping1D. No weights; each
backward sends every output's gradient back to the input entries it was computed from.

Masks, as Keras 3: GlobalAveragePooling1D averages over the unmasked steps only and
consumes the mask (its output has none); every other layer here does not support masking,
so a mask reaching it is dropped with a warning by the model (GlobalMaxPooling1D then takes
the maximum over all steps, masked ones included, as Keras does).
"""
import numpy as np

from .base import Layer
from .convolutional import (check_data_format, check_padding, gather_windows, pad_amounts,
                            scatter_windows, standardize_tuple)


class _Pooling1D(Layer):
    input_ndim = 3
    _mode = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = standardize_tuple(pool_size, 1, "pool_size")
        self.strides = standardize_tuple(self.pool_size if strides is None else strides, 1,
                                         "strides")
        self.padding = check_padding(padding, ("valid", "same"))
        self.data_format = check_data_format(data_format, type(self).__name__)

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        if steps is not None:
            steps = pad_amounts(steps, self.pool_size[0], self.strides[0], self.padding)[2]
        return (input_shape[0], steps, input_shape[2])

    def _windows(self, x, fill):
        """``(windows (B, T', p, C), left, padded steps)``, the padding filled with ``fill``."""
        (p,), (s,) = self.pool_size, self.strides
        left, right, out = pad_amounts(x.shape[1], p, s, self.padding)
        xp = (np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=fill)
              if left or right else x)
        return gather_windows(xp, p, s, 1, out), left, xp.shape[1]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


class MaxPooling1D(_Pooling1D):
    """``y[b, t, c] = max_j xpad[b, t*s + j, c]`` (``same`` pads with -inf, TensorFlow's
    split). Backward: the whole gradient goes to the first maximum of each window (ties go
    to the earliest step, as TensorFlow's MaxPoolGrad); overlapping windows add up."""

    def forward(self, x, *, training=False, mask=None):
        windows, left, padded = self._windows(x, -np.inf)
        arg = windows.argmax(axis=2)                                  # (B, T', C), first max
        y = np.take_along_axis(windows, arg[:, :, None], axis=2)[:, :, 0]
        return y, (arg, left, padded, x.shape[1])

    def backward(self, cache, dy):
        arg, left, padded, steps = cache
        p = self.pool_size[0]
        # y = w[argmax]  =>  dw[j] = dy where j is the argmax, else 0
        dwin = np.stack([np.where(arg == j, dy, 0).astype(dy.dtype) for j in range(p)], axis=2)
        dxp = scatter_windows(dwin, padded, self.strides[0], 1)
        return [dxp[:, left:left + steps]], []


class AveragePooling1D(_Pooling1D):
    """``y[b, t, c] = mean of the window's real steps`` (``same`` padding is excluded from
    the count, as Keras/TensorFlow). Backward: ``dx += dy / count`` over each window."""

    def _counts(self, steps, left, out, dtype):
        starts = np.arange(out) * self.strides[0] - left             # first step read
        ends = np.minimum(starts + self.pool_size[0], steps)
        return (ends - np.maximum(starts, 0)).astype(dtype)[None, :, None]   # (1, T', 1)

    def forward(self, x, *, training=False, mask=None):
        windows, left, padded = self._windows(x, 0)
        counts = self._counts(x.shape[1], left, windows.shape[1], x.dtype)
        return windows.sum(axis=2) / counts, (counts, left, padded, x.shape[1])

    def backward(self, cache, dy):
        counts, left, padded, steps = cache
        share = dy / counts                           # y = sum_j w_j / n  =>  dw_j = dy / n
        dwin = np.repeat(share[:, :, None, :], self.pool_size[0], axis=2)
        dxp = scatter_windows(dwin, padded, self.strides[0], 1)
        return [dxp[:, left:left + steps]], []

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)   # no default


class _GlobalPooling1D(Layer):
    input_ndim = 3

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0], 1, input_shape[2])
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalMaxPooling1D(_GlobalPooling1D):
    """``y[b, c] = max_t x[b, t, c]``. Backward as TensorFlow's reduce_max: the gradient is
    shared equally among the steps that tie for the maximum. No mask support (Keras 3)."""

    def forward(self, x, *, training=False, mask=None):
        y = x.max(axis=1, keepdims=True)
        return (y if self.keepdims else y[:, 0]), (x, y)

    def backward(self, cache, dy):
        x, y = cache
        hit = (x == y).astype(x.dtype)                                # the maxima
        dy = dy.reshape(y.shape)                  # y = max_t x  =>  dx = dy * hit / #hits
        return [hit * (dy / hit.sum(axis=1, keepdims=True))], []


class GlobalAveragePooling1D(_GlobalPooling1D):
    """``y[b, c] = sum_t m[b, t] x[b, t, c] / sum_t m[b, t]`` (``m`` the mask, all ones
    without one; a sample with every step masked gives NaN, as Keras). Consumes the mask."""

    supports_masking = True

    def forward(self, x, *, training=False, mask=None):
        if mask is None:
            y = x.mean(axis=1, keepdims=True)
            m, count = None, np.asarray(x.shape[1], x.dtype)
        else:
            m = np.asarray(mask).astype(bool)[:, :, None]                # (B, T, 1)
            count = m.sum(axis=1, keepdims=True).astype(x.dtype)         # (B, 1, 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                y = np.where(m, x, 0).sum(axis=1, keepdims=True) / count
        return (y if self.keepdims else y[:, 0]), (m, count, x.shape)

    def backward(self, cache, dy):
        m, count, shape = cache
        dy = dy.reshape(shape[0], 1, shape[2])
        if m is None:                                  # y = mean_t x  =>  dx = dy / T
            return [np.broadcast_to(dy / count, shape).copy()], []
        with np.errstate(invalid="ignore", divide="ignore"):
            share = dy / count                         # y = sum_t m x / n  =>  dx = m dy / n
        return [np.where(m, share, 0).astype(dy.dtype)], []

    def compute_mask(self, inputs, mask=None):
        return None


class UpSampling1D(Layer):
    """Repeats every step ``size`` times: ``y[:, t*size + r] = x[:, t]``. Backward: the sum
    of the copies."""

    input_ndim = 3

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise TypeError(f"Expected an integer value for `size`, got {type(size)}.")
        if size <= 0:
            raise ValueError(f"Argument `size` should be a positive integer. Received: "
                             f"size={size}")
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] * self.size
        return (input_shape[0], steps, input_shape[2])

    def forward(self, x, *, training=False, mask=None):
        return np.repeat(x, self.size, axis=1), None

    def backward(self, cache, dy):
        b, t, c = dy.shape
        return [dy.reshape(b, t // self.size, self.size, c).sum(axis=2)], []

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class ZeroPadding1D(Layer):
    """Adds ``padding = (left, right)`` zero steps. Backward: the gradient's middle."""

    input_ndim = 3

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format, "ZeroPadding1D")
        self.padding = standardize_tuple(padding, 2, "padding", allow_zero=True)

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] + sum(self.padding)
        return (input_shape[0], steps, input_shape[2])

    def forward(self, x, *, training=False, mask=None):
        return np.pad(x, ((0, 0), self.padding, (0, 0))), x.shape[1]

    def backward(self, steps, dy):
        return [dy[:, self.padding[0]:self.padding[0] + steps].copy()], []

    def get_config(self):
        return {**super().get_config(), "padding": self.padding,
                "data_format": self.data_format}


class Cropping1D(Layer):
    """Drops ``cropping = (start, end)`` steps. Backward: the gradient zero-padded back."""

    input_ndim = 3

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = standardize_tuple(cropping, 2, "cropping", allow_zero=True)

    def _check_steps(self, steps, what):
        if steps is not None and sum(self.cropping) >= steps:
            raise ValueError("`cropping` parameter of `Cropping1D` layer must be smaller "
                             f"than the input length. Received: {what}, "
                             f"cropping={self.cropping}")

    def build(self, input_shape):
        self._check_steps(input_shape[1], f"input_shape={tuple(input_shape)}")
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check_steps(input_shape[1], f"input_shape={tuple(input_shape)}")
        steps = None if input_shape[1] is None else input_shape[1] - sum(self.cropping)
        return (input_shape[0], steps, input_shape[2])

    def forward(self, x, *, training=False, mask=None):
        self._check_steps(x.shape[1], f"inputs.shape={x.shape}")
        start, end = self.cropping
        return x[:, start:x.shape[1] - end], x.shape[1]

    def backward(self, steps, dy):
        return [np.pad(dy, ((0, 0), self.cropping, (0, 0)))], []

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


__all__ = ["MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D",
           "UpSampling1D", "ZeroPadding1D", "Cropping1D"]
_POOL = ("pool_size", "strides", "padding", "data_format")
# class name: (unrolled class, Keras snake-case name, options in the config): saving/serialize.py
# reads and writes these layers through this table.
KERAS_LAYERS = {
    "MaxPooling1D": (MaxPooling1D, "max_pooling1d", _POOL),
    "AveragePooling1D": (AveragePooling1D, "average_pooling1d", _POOL),
    "GlobalMaxPooling1D": (GlobalMaxPooling1D, "global_max_pooling1d",
                           ("data_format", "keepdims")),
    "GlobalAveragePooling1D": (GlobalAveragePooling1D, "global_average_pooling1d",
                               ("data_format", "keepdims")),
    "UpSampling1D": (UpSampling1D, "up_sampling1d", ("size",)),
    "ZeroPadding1D": (ZeroPadding1D, "zero_padding1d", ("padding", "data_format")),
    "Cropping1D": (Cropping1D, "cropping1d", ("cropping",)),
}
