"""The Loss contract: per-sample values, then Keras's weighting and reduction.

``__call__`` = ``reduce(weigh(call(y_true, y_pred)))``; ``gradient`` walks the same
steps backwards, so a subclass only writes ``call`` and ``call_gradient``.
"""
import numpy as np

from unrolled.config import floatx

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


class Loss:
    """Base class: subclasses write ``call`` (per-sample values) and ``call_gradient``.

    ``call(y_true, y_pred)`` reduces the last axis: ``y_pred (N, C)`` gives ``(N,)`` and
    ``(N, T, C)`` gives ``(N, T)``. ``call_gradient(y_true, y_pred)`` is
    ``d values / d y_pred`` element by element: each value depends only on its own row
    ``y_pred[..., :]``, so an array of ``y_pred``'s shape holds the whole Jacobian.
    """

    def __init__(self, name, reduction="sum_over_batch_size"):
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Invalid value for argument `reduction`: {reduction!r}. "
                f"Expected one of {_REDUCTIONS}."
            )
        self.name = name
        self.reduction = reduction

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def call_gradient(self, y_true, y_pred):
        raise NotImplementedError(
            f"Loss {self.name!r} has no hand-written gradient. Subclass "
            "unrolled.losses.Loss and implement `call` and `call_gradient`."
        )

    def align(self, y_true, y_pred):
        """Keras's squeeze/expand of a trailing 1, then the shapes must agree."""
        y_true, y_pred = same_rank(y_true.astype(y_pred.dtype, copy=False), y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{self.name}: y_true and y_pred must have the same shape (a trailing axis "
                "of size 1 on either side is squeezed, as Keras does). Received: "
                f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
            )
        return y_true, y_pred

    def per_sample(self, y_true, y_pred):
        """The unreduced, unweighted values, ``(N,)`` or ``(N, T)``."""
        return self.call(*self._prepare(y_true, y_pred))

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        """The scalar Keras returns (a Python float), or the weighted values if
        ``reduction`` is None/"none". ``mask`` (bool, shape of the values) is Keras's
        ``y_pred._keras_mask``: masked entries get weight 0, the rest ``total/valid``."""
        values = self.per_sample(y_true, y_pred)
        weighted, weight = weigh(values, sample_weight, mask, self.reduction)
        if self.reduction in ("none", None):
            return weighted
        total = weighted.sum(dtype=weighted.dtype)
        if self.reduction == "sum":
            return float(total)
        divisor = _divisor(weighted, weight, self.reduction)
        return float(total / divisor) if divisor != 0 else 0.0

    def gradient(self, y_true, y_pred, sample_weight=None, mask=None):
        """``d loss / d y_pred`` for the scalar reductions: same shape and dtype as y_pred."""
        if self.reduction in ("none", None):
            raise ValueError(
                f"Loss {self.name!r} has reduction={self.reduction!r}: its value is an "
                "array, so it has no single gradient. Use reduction='sum_over_batch_size'."
            )
        shape = np.shape(y_pred)
        y_true, y_pred = self._prepare(y_true, y_pred)
        dtype = y_pred.dtype
        values = self.call(y_true, y_pred)
        weighted, weight = weigh(values, sample_weight, mask, self.reduction)
        # loss = sum(weighted) / n  ->  dloss/dweighted = 1/n (1 for "sum").
        divisor = 1 if self.reduction == "sum" else _divisor(weighted, weight, self.reduction)
        inv = dtype.type(0) if divisor == 0 else dtype.type(1) / dtype.type(divisor)
        dweighted = np.full(weighted.shape, inv, dtype=dtype)
        # weighted = values * weight  ->  dvalues = dweighted * weight, summed back over
        # any axis the broadcast added.
        if weight is not None:
            dweighted = dweighted * weight
        dvalues = unbroadcast(dweighted, values.shape)
        # values[...] = f(y_pred[..., :])  ->  dy_pred = dvalues[..., None] * dvalues/dy_pred
        dy_pred = dvalues[..., None] * self.call_gradient(y_true, y_pred)
        return dy_pred.astype(dtype, copy=False).reshape(shape)

    def _prepare(self, y_true, y_pred):
        """Arrays in y_pred's float dtype (floatx if y_pred is not float), aligned."""
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(floatx())
        return self.align(np.asarray(y_true), y_pred)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class LossFunctionWrapper(Loss):
    """A user function ``fn(y_true, y_pred) -> per-sample values``, reduced like Keras.

    It has no gradient unless ``gradient_fn(y_true, y_pred)`` (``dvalues/dy_pred``) is given.
    """

    def __init__(self, fn, gradient_fn=None, reduction="sum_over_batch_size", name=None):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn, self.gradient_fn = fn, gradient_fn

    def align(self, y_true, y_pred):
        return same_rank(y_true.astype(y_pred.dtype, copy=False), y_pred)

    def call(self, y_true, y_pred):
        return np.asarray(self.fn(y_true, y_pred))

    def call_gradient(self, y_true, y_pred):
        if self.gradient_fn is None:
            return super().call_gradient(y_true, y_pred)
        return np.asarray(self.gradient_fn(y_true, y_pred))


def same_rank(a, b):
    """Keras's squeeze_or_expand_to_same_rank: fix a rank difference of one trailing 1.

    The higher-rank array loses its trailing 1, unless the other is 1-D: then that one
    gains a trailing axis instead.
    """
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def weigh(values, sample_weight, mask, reduction):
    """``(values * weight, weight)`` with the mask folded into the weight, as Keras does."""
    dtype = values.dtype
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=dtype)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if reduction in ("mean", "sum_over_batch_size"):
            # valid entries weigh total/valid, so the mean runs over the valid ones only
            valid = mask.sum()
            scale = dtype.type(mask.size) / dtype.type(valid) if valid else dtype.type(0)
            float_mask = np.where(mask, scale, dtype.type(0)).astype(dtype)
        else:
            float_mask = mask.astype(dtype)
        if weight is None:
            weight = float_mask
        else:
            float_mask, weight = same_rank(float_mask, weight)
            weight = _product(weight, float_mask)
    if weight is None:
        return values, None
    values, weight = same_rank(values, weight)
    return _product(values, weight), weight


def _product(values, weight):
    try:
        return values * weight
    except ValueError:
        raise ValueError(
            f"sample_weight of shape {weight.shape} does not fit losses of shape "
            f"{values.shape}. For sequence outputs y_pred (N, T, C) the losses are (N, T): "
            "pass sample_weight of shape (N, 1) or (N, T) (Keras 3.15.1 rejects (N,) too)."
        ) from None


def _divisor(weighted, weight, reduction):
    """"sum_over_batch_size"/"mean": the number of weighted values (zeros included)."""
    if reduction == "mean_with_sample_weight" and weight is not None:
        return weight.sum(dtype=weighted.dtype)
    return weighted.dtype.type(weighted.size)


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes a broadcast to its shape added (broadcasting's backward)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad.reshape(shape)
