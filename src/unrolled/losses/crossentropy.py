"""Crossentropy losses, on probabilities (clipped) or on logits.

Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7`` (``config.epsilon()``);
outside that range the gradient is zero, as TensorFlow's clip passes none.
"""
import numpy as np

from unrolled.config import epsilon
from unrolled.losses.base import Loss


class BinaryCrossentropy(Loss):
    """``t = y_true (1 - s) + s/2`` (label smoothing ``s``), then, averaged over the last axis:

    probabilities: ``p = clip(y_pred, eps, 1 - eps)``; ``-(t log p + (1 - t) log(1 - p))``
    logits ``x``:  ``max(x, 0) - x t + log(1 + exp(-|x|))``
    """

    def __init__(self, from_logits=False, label_smoothing=0.0,
                 reduction="sum_over_batch_size", name="binary_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def _smooth(self, y_true):
        s = self.label_smoothing
        if not s:
            return y_true
        dt = y_true.dtype.type
        return y_true * dt(1.0 - s) + dt(0.5 * s)

    def call(self, y_true, y_pred):
        t = self._smooth(y_true)
        if self.from_logits:
            x = y_pred
            relu_x = np.where(x >= 0, x, 0).astype(x.dtype)
            return np.mean(relu_x - x * t + np.log1p(np.exp(-np.abs(x))), axis=-1)
        low, high = clip_bounds(y_pred.dtype)
        p = np.clip(y_pred, low, high)
        return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), axis=-1)

    def call_gradient(self, y_true, y_pred):
        t = self._smooth(y_true)
        n_classes = y_pred.dtype.type(y_pred.shape[-1])
        if self.from_logits:
            # d/dx [max(x,0) - x t + log(1 + exp(-|x|))] = sigmoid(x) - t
            return (sigmoid(y_pred) - t) / n_classes
        low, high = clip_bounds(y_pred.dtype)
        p = np.clip(y_pred, low, high)
        # d/dp -(t log p + (1-t) log(1-p)) = -t/p + (1-t)/(1-p)
        dp = -t / p + (1 - t) / (1 - p)
        # the clip passes the gradient only where low <= y_pred <= high
        inside = (y_pred >= low) & (y_pred <= high)
        return np.where(inside, dp, 0).astype(y_pred.dtype) / n_classes

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(Loss):
    """``t = y_true (1 - s) + s/C`` (label smoothing ``s``, ``C`` classes), then

    probabilities: ``q = y_pred / sum(y_pred)``; ``r = clip(q, eps, 1 - eps)``; ``-sum(t log r)``
    logits ``x``:  ``-sum(t log_softmax(x))``

    The logits gradient is TensorFlow's ``softmax(x) - t``: exact only when each row of
    ``t`` sums to 1 (one-hot or probability labels), and what Keras trains with.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0,
                 reduction="sum_over_batch_size", name="categorical_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def _smooth(self, y_true):
        s = self.label_smoothing
        if not s:
            return y_true
        dt = y_true.dtype.type
        return y_true * dt(1.0 - s) + dt(s) / dt(y_true.shape[-1])

    def call(self, y_true, y_pred):
        t = self._smooth(y_true)
        if self.from_logits:
            return -np.sum(t * log_softmax(y_pred), axis=-1)
        low, high = clip_bounds(y_pred.dtype)
        r = np.clip(y_pred / np.sum(y_pred, axis=-1, keepdims=True), low, high)
        return -np.sum(t * np.log(r), axis=-1)

    def call_gradient(self, y_true, y_pred):
        t = self._smooth(y_true)
        if self.from_logits:
            return softmax(y_pred) - t
        low, high = clip_bounds(y_pred.dtype)
        total = np.sum(y_pred, axis=-1, keepdims=True)
        q = y_pred / total
        r = np.clip(q, low, high)
        # backprop into r: d(-t log r)/dr = -t/r; through the clip: zero outside [low, high]
        dq = np.where((q >= low) & (q <= high), -t / r, 0).astype(y_pred.dtype)
        # backprop through q_i = p_i / S: dp_j = (dq_j - sum_i dq_i q_i) / S
        return (dq - np.sum(dq * q, axis=-1, keepdims=True)) / total

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Loss):
    """Integer labels ``y`` of shape ``y_pred.shape[:-1]`` (or with a trailing 1).

    probabilities: ``l = log(clip(y_pred, eps, 1 - eps))``; logits: ``l = y_pred``;
    ``values = logsumexp(l) - l[y]``. Probabilities are not renormalized first; the
    logsumexp does that implicitly.
    """

    def __init__(self, from_logits=False, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits = from_logits

    def align(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"{self.name}: y_true must hold one class index per row of y_pred, i.e. "
                f"have shape y_pred.shape[:-1]. Received: y_true.shape={y_true.shape}, "
                f"y_pred.shape={y_pred.shape}."
            )
        labels = y_true.astype(np.int64)
        n_classes = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(
                f"{self.name}: labels must be in [0, {n_classes}). "
                f"Received labels from {labels.min()} to {labels.max()}."
            )
        return labels, y_pred

    def _logits(self, y_pred):
        if self.from_logits:
            return y_pred
        low, high = clip_bounds(y_pred.dtype)
        return np.log(np.clip(y_pred, low, high))

    def call(self, y_true, y_pred):
        # shift by the row max first, as TensorFlow's kernel does
        shifted = self._logits(y_pred)
        shifted = shifted - np.max(shifted, axis=-1, keepdims=True)
        picked = np.take_along_axis(shifted, y_true[..., None], axis=-1)[..., 0]
        return np.log(np.sum(np.exp(shifted), axis=-1)) - picked

    def call_gradient(self, y_true, y_pred):
        logits = self._logits(y_pred)
        # d(logsumexp(l) - l[y])/dl = softmax(l) - onehot(y)
        dlogits = softmax(logits)
        index = y_true[..., None]
        np.put_along_axis(dlogits, index,
                          np.take_along_axis(dlogits, index, axis=-1) - 1, axis=-1)
        if self.from_logits:
            return dlogits
        # backprop through l = log(clip(p)): dl/dp = 1/clip(p), zero outside the clip range
        low, high = clip_bounds(y_pred.dtype)
        inside = (y_pred >= low) & (y_pred <= high)
        return np.where(inside, dlogits / np.clip(y_pred, low, high), 0).astype(y_pred.dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


def clip_bounds(dtype):
    """``(eps, 1 - eps)`` rounded to ``dtype``, as TensorFlow rounds the Python floats."""
    return dtype.type(epsilon()), dtype.type(1.0 - epsilon())


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)
