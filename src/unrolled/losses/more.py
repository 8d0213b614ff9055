"""More of Keras's losses, each with its gradient: log-cosh, mean absolute percentage
error, mean squared logarithmic error, Poisson, KL divergence, hinge, squared hinge and
cosine similarity.

As in ``regression``: ``call`` gives one value per sample (the last axis reduced, by a
mean unless said otherwise), ``call_gradient`` its derivative with respect to ``y_pred``.
``eps`` is ``config.epsilon()`` (1e-7), where Keras uses ``backend.epsilon()``. Where
Keras takes ``maximum(a, eps)`` or ``clip``, the gradient flows as TensorFlow's does:
through ``maximum`` when ``a >= eps``, through ``clip`` inside the bounds (bounds included).
"""
import numpy as np

from unrolled.config import epsilon
from unrolled.losses.base import Loss


def _per_entry(y_pred):
    return y_pred.dtype.type(y_pred.shape[-1])


class LogCosh(Loss):
    """``values = mean(log(cosh(y_pred - y_true)), axis=-1)``, computed as Keras does:
    ``x + softplus(-2x) - log(2)``; its derivative is ``tanh(x)``."""

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        x = y_pred - y_true
        dt = y_pred.dtype.type
        return np.mean(x + np.logaddexp(dt(0), dt(-2) * x) - dt(np.log(2.0)), axis=-1)

    def call_gradient(self, y_true, y_pred):
        return np.tanh(y_pred - y_true) / _per_entry(y_pred)


class MeanAbsolutePercentageError(Loss):
    """``values = 100 mean(|y_true - y_pred| / max(|y_true|, eps), axis=-1)``."""

    def __init__(self, reduction="sum_over_batch_size",
                 name="mean_absolute_percentage_error"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        scale = np.maximum(np.abs(y_true), y_pred.dtype.type(epsilon()))
        return y_pred.dtype.type(100) * np.mean(np.abs((y_true - y_pred) / scale), axis=-1)

    def call_gradient(self, y_true, y_pred):
        scale = np.maximum(np.abs(y_true), y_pred.dtype.type(epsilon()))
        return y_pred.dtype.type(100) * np.sign(y_pred - y_true) / scale / _per_entry(y_pred)


class MeanSquaredLogarithmicError(Loss):
    """``values = mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2, -1)``."""

    def __init__(self, reduction="sum_over_batch_size",
                 name="mean_squared_logarithmic_error"):
        super().__init__(name, reduction)

    def _logs(self, y_true, y_pred):
        eps, one = y_pred.dtype.type(epsilon()), y_pred.dtype.type(1)
        return np.log(np.maximum(y_pred, eps) + one), np.log(np.maximum(y_true, eps) + one)

    def call(self, y_true, y_pred):
        first, second = self._logs(y_true, y_pred)
        return np.mean(np.square(first - second), axis=-1)

    def call_gradient(self, y_true, y_pred):
        eps, one = y_pred.dtype.type(epsilon()), y_pred.dtype.type(1)
        first, second = self._logs(y_true, y_pred)
        # d first / d p = 1 / (max(p, eps) + 1), through maximum only where p >= eps
        inner = np.where(y_pred >= eps, one / (np.maximum(y_pred, eps) + one), 0)
        return y_pred.dtype.type(2) * (first - second) * inner / _per_entry(y_pred)


class Poisson(Loss):
    """``values = mean(y_pred - y_true log(y_pred + eps), axis=-1)``."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        eps = y_pred.dtype.type(epsilon())
        return np.mean(y_pred - y_true * np.log(y_pred + eps), axis=-1)

    def call_gradient(self, y_true, y_pred):
        eps = y_pred.dtype.type(epsilon())
        return (y_pred.dtype.type(1) - y_true / (y_pred + eps)) / _per_entry(y_pred)


class KLDivergence(Loss):
    """``values = sum(t log(t / p), axis=-1)`` with ``t, p`` clipped to ``[eps, 1]`` (a sum
    over the last axis, not a mean)."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        eps, one = y_pred.dtype.type(epsilon()), y_pred.dtype.type(1)
        t, p = np.clip(y_true, eps, one), np.clip(y_pred, eps, one)
        return np.sum(t * np.log(t / p), axis=-1)

    def call_gradient(self, y_true, y_pred):
        eps, one = y_pred.dtype.type(epsilon()), y_pred.dtype.type(1)
        t, p = np.clip(y_true, eps, one), np.clip(y_pred, eps, one)
        inside = (y_pred >= eps) & (y_pred <= one)
        return np.where(inside, -t / p, 0).astype(y_pred.dtype)


def _hinge_labels(y_true):
    """Keras's rule: labels that are all 0 or 1 become -1 or 1; others are used as given."""
    if np.all((y_true == 0) | (y_true == 1)):
        return 2 * y_true - 1
    return y_true


class Hinge(Loss):
    """``values = mean(max(1 - t y_pred, 0), axis=-1)``, ``t`` the labels in {-1, 1}."""

    def __init__(self, reduction="sum_over_batch_size", name="hinge"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        margin = y_pred.dtype.type(1) - _hinge_labels(y_true) * y_pred
        return np.mean(np.maximum(margin, 0), axis=-1)

    def call_gradient(self, y_true, y_pred):
        t = _hinge_labels(y_true).astype(y_pred.dtype)
        margin = y_pred.dtype.type(1) - t * y_pred
        return np.where(margin >= 0, -t, 0).astype(y_pred.dtype) / _per_entry(y_pred)


class SquaredHinge(Loss):
    """``values = mean(max(1 - t y_pred, 0)**2, axis=-1)``."""

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge"):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        margin = y_pred.dtype.type(1) - _hinge_labels(y_true) * y_pred
        return np.mean(np.square(np.maximum(margin, 0)), axis=-1)

    def call_gradient(self, y_true, y_pred):
        t = _hinge_labels(y_true).astype(y_pred.dtype)
        margin = np.maximum(y_pred.dtype.type(1) - t * y_pred, 0)
        return y_pred.dtype.type(-2) * t * margin / _per_entry(y_pred)


def _unit(x):
    """Keras's ``normalize``: ``x * min(rsqrt(sum(x**2, -1)), 1/eps)``, and that factor."""
    inv = np.minimum(np.float64(1) / np.sqrt(np.sum(np.square(x), axis=-1, keepdims=True,
                                                    dtype=np.float64)),
                     1 / epsilon()).astype(x.dtype)
    return x * inv, inv


class CosineSimilarity(Loss):
    """``values = -sum(unit(y_true) * unit(y_pred), axis=-1)``: -1 for the same direction.
    ``unit(x) = x * min(1/|x|, 1/eps)``; the gradient flows through ``1/|x|`` where it is
    below ``1/eps``: ``d/dp = -(t r - (t . p) r**3 p)`` with ``t = unit(y_true)``,
    ``r = 1/|p|``. Only ``axis=-1`` (Keras's default) is implemented."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"):
        if axis != -1:
            raise NotImplementedError("CosineSimilarity(axis=...) other than -1 is not "
                                      "implemented in unrolled.")
        super().__init__(name, reduction)
        self.axis = axis

    def call(self, y_true, y_pred):
        return -np.sum(_unit(y_true)[0] * _unit(y_pred)[0], axis=-1)

    def call_gradient(self, y_true, y_pred):
        t, _ = _unit(y_true)
        _, r = _unit(y_pred)
        free = r < y_pred.dtype.type(1 / epsilon())           # where 1/|p| is the min's pick
        dot = np.sum(t * y_pred, axis=-1, keepdims=True)
        return -(t * r - np.where(free, dot * r ** 3 * y_pred, 0))
