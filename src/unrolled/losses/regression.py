"""Regression losses: mean squared error, mean absolute error, Huber.

Each value is a mean over the last axis of ``C`` entries, so each gradient carries ``1/C``.
"""
import numpy as np

from unrolled.losses.base import Loss


class MeanSquaredError(Loss):
    """``values = mean((y_true - y_pred)**2, axis=-1)``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        return np.mean(np.square(y_true - y_pred), axis=-1)

    def call_gradient(self, y_true, y_pred):
        # d/dp mean_c (t - p)^2 = 2 (p - t) / C
        return 2 * (y_pred - y_true) / y_pred.dtype.type(y_pred.shape[-1])


class MeanAbsoluteError(Loss):
    """``values = mean(|y_true - y_pred|, axis=-1)``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        return np.mean(np.abs(y_true - y_pred), axis=-1)

    def call_gradient(self, y_true, y_pred):
        # d/dp |t - p| = sign(p - t)  (0 where p == t, as TensorFlow's abs)
        return np.sign(y_pred - y_true) / y_pred.dtype.type(y_pred.shape[-1])


class Huber(Loss):
    """With ``e = y_pred - y_true``:
    ``values = mean(0.5 e**2 if |e| <= delta else delta |e| - 0.5 delta**2, axis=-1)``.
    """

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss"):
        super().__init__(name, reduction)
        self.delta = delta

    def call(self, y_true, y_pred):
        dt = y_pred.dtype.type
        delta, half = dt(self.delta), dt(0.5)
        error = y_pred - y_true
        abs_error = np.abs(error)
        quadratic = half * np.square(error)
        linear = delta * abs_error - half * np.square(delta)
        return np.mean(np.where(abs_error <= delta, quadratic, linear), axis=-1)

    def call_gradient(self, y_true, y_pred):
        delta = y_pred.dtype.type(self.delta)
        error = y_pred - y_true
        # quadratic branch: d(0.5 e^2)/de = e; linear branch: d(delta |e|)/de = delta sign(e)
        de = np.where(np.abs(error) <= delta, error, delta * np.sign(error))
        return de / y_pred.dtype.type(y_pred.shape[-1])

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}
