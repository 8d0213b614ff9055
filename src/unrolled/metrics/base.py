"""The metric base classes: ``Metric``, the weighted running ``Mean`` Keras 3 keeps, and
``MeanMetricWrapper`` (a per-sample function's running mean). The package docstring says
how Keras logs them."""
import re

import numpy as np

from unrolled.config import floatx
from unrolled.losses.base import same_rank


def to_snake_case(name):
    """Keras's ``to_snake_case``: drop non-word characters, then ``CamelCase`` ->
    ``camel_case`` (``"AUC"`` -> ``"auc"``, ``"<lambda>"`` -> ``"lambda"``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def auto_name(class_name):
    """Keras's automatic object name: the class name in snake case, numbered per process
    (``precision``, ``precision_1``, ...) with the counter layers use, which
    ``unrolled.backend.clear_session()`` resets, as Keras 3 does."""
    from unrolled.layers.base import unique_name
    return unique_name(to_snake_case(class_name))


class Metric:
    """Base class: ``update_state``, ``result`` (a Python float), ``reset_state``, ``name``.

    ``name=None`` names the metric as Keras 3 does: its class name in snake case, numbered
    per process (a second ``Precision()`` is ``"precision_1"``, and History logs it so).
    Metrics with a fixed default name (``"accuracy"``, ``"mean_squared_error"``...) are
    not numbered, as in Keras."""

    def __init__(self, name=None, dtype=None):
        self.name = name or auto_name(type(self).__name__)
        self.dtype = np.dtype(dtype or floatx())

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def get_config(self):
        """Keras's config of the metric (what ``compile_config`` saves)."""
        return {"name": self.name, "dtype": self.dtype.name}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """The weighted mean of every value seen: ``total / count``.

    ``update_state(values, sample_weight)``: a weight of lower rank than the values first
    averages the values' extra axes; then ``total += sum(values * weight)`` and
    ``count += sum(weight)`` (each row's weight averaged over its other axes), or
    ``count += len(values)`` (1 for a scalar) without weights.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self):
        self.total = self.dtype.type(0)
        self.count = self.dtype.type(0)

    def update_state(self, values, sample_weight=None):
        dt = self.dtype
        values = np.asarray(values).astype(dt)
        if sample_weight is not None:
            weight = np.asarray(sample_weight).astype(dt)
            values, weight = same_rank(values, weight)
            if values.ndim > weight.ndim:
                # average the axes the weight does not cover, e.g. time steps
                values = values.mean(axis=tuple(range(weight.ndim, values.ndim)), dtype=dt)
            weight = np.broadcast_to(weight, values.shape)
            values = values * weight
            if weight.ndim > 1:
                weight = weight.mean(axis=tuple(range(1, weight.ndim)), dtype=dt)
            count = weight.sum(dtype=dt)
        else:
            count = dt.type(values.shape[0] if values.ndim else 1)
        if values.ndim > 1:
            values = values.mean(axis=tuple(range(1, values.ndim)), dtype=dt)
        self.total = dt.type(self.total + values.sum(dtype=dt))
        self.count = dt.type(self.count + count)

    def result(self):
        # divide_no_nan: an empty mean is 0
        return float(self.total / self.count) if self.count != 0 else 0.0


class MeanMetricWrapper(Mean):
    """The running mean of ``fn(y_true, y_pred)``, a per-sample array.

    ``mask`` (Keras's ``y_pred._keras_mask``) multiplies the weights: masked entries count
    for nothing, in the total or in the count. Without ``name`` it is named as Keras names
    it, ``"mean_metric_wrapper"`` (numbered); ``compile`` then renames it after the function.
    """

    def __init__(self, fn, name=None, dtype=None, **fn_kwargs):
        super().__init__(name, dtype)
        self.fn, self.fn_kwargs = fn, fn_kwargs

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        values = self.fn(np.asarray(y_true), np.asarray(y_pred), **self.fn_kwargs)
        if mask is not None:
            mask = np.asarray(mask).astype(self.dtype)
            if sample_weight is None:
                sample_weight = mask
            else:
                mask, weight = same_rank(mask, np.asarray(sample_weight).astype(self.dtype))
                sample_weight = weight * mask
        super().update_state(values, sample_weight)


def _float_pred(y_pred):
    y_pred = np.asarray(y_pred)
    return y_pred if y_pred.dtype.kind == "f" else y_pred.astype(floatx())
