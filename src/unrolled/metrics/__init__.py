"""Stateful metrics, as Keras 3 keeps them: a weighted running mean in float32.

How Keras 3.15.1 logs ``"loss"`` (what ``fit``/``evaluate`` must reproduce)
------------------------------------------------------------------------------
``Trainer`` owns ``Mean(name="loss")``. After each batch's forward pass it calls
``tracker.update_state(loss, sample_weight=batch_size)``, where ``loss`` is the scalar that
is differentiated (compiled loss, already reduced with "sum_over_batch_size", plus any
regularization losses) and ``batch_size`` is ``x.shape[0]`` of that batch. So the logged
value is ``sum_b(n_b * loss_b) / sum_b(n_b)``, accumulated in float32 (``total`` and
``count`` are float32 scalars), the last, smaller batch weighing less. The metrics are
reset when an epoch starts, so History holds one whole-epoch mean per epoch, and
``val_loss`` is the same mean over the validation batches. ``loss_tracker()`` builds it.

``compile(metrics=[...])`` are updated **without** ``sample_weight``; only
``compile(weighted_metrics=[...])`` receive it. An output mask (``mask_zero``/``Masking``
kept to the output by ``return_sequences=True``) weighs every metric's time steps 0/1,
while the loss weighs the valid steps ``total/valid`` (their mean), times sample_weight. A weighted metric whose name is already
taken by an unweighted one logs as ``"weighted_<name>"``; a repeated name gets ``_1``,
``_2``. History's order: ``loss``, then ``metrics``, then ``weighted_metrics``.

``compile(metrics=["accuracy"])`` ("acc" too) picks the variant from the first batch's
shapes (``for_compile``): ``BinaryAccuracy`` if ``y_pred`` ends in 1, else
``SparseCategoricalAccuracy`` if ``y_true`` has fewer axes than ``y_pred`` (or ends in 1),
else ``CategoricalAccuracy``. Whatever the variant, it logs under the string the user
wrote ("accuracy", "acc", "mse"), with "val_" in front for validation.
"""
import numpy as np

from unrolled import losses as _losses
from unrolled.config import floatx
from unrolled.losses import binary_or_sparse
from unrolled.losses.base import same_rank
from unrolled.metrics.auc import AUC  # noqa: F401
from unrolled.metrics.base import (  # noqa: F401
    Mean, MeanMetricWrapper, Metric, _float_pred, to_snake_case)
from unrolled.metrics.confusion import (  # noqa: F401
    Precision, Recall, SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy,
    sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)


# ---- per-sample functions, as keras.metrics.<name>(y_true, y_pred) ----

def mean_squared_error(y_true, y_pred):
    """``mean((y_true - y_pred)**2, axis=-1)``."""
    y_pred = _float_pred(y_pred)
    y_true, y_pred = same_rank(np.asarray(y_true).astype(y_pred.dtype), y_pred)
    return np.mean(np.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(|y_true - y_pred|, axis=-1)``."""
    y_pred = _float_pred(y_pred)
    y_true, y_pred = same_rank(np.asarray(y_true).astype(y_pred.dtype), y_pred)
    return np.mean(np.abs(y_true - y_pred), axis=-1)


def accuracy(y_true, y_pred):
    """1 where ``y_true == y_pred`` exactly, element by element."""
    y_pred = _float_pred(y_pred)
    y_true, y_pred = same_rank(np.asarray(y_true).astype(y_pred.dtype), y_pred)
    return (y_true == y_pred).astype(floatx())


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where ``(y_pred > threshold) == y_true``; the labels are compared as given."""
    y_true, y_pred = same_rank(np.asarray(y_true), _float_pred(y_pred))
    predicted = (y_pred > y_pred.dtype.type(threshold)).astype(y_true.dtype)
    return (y_true == predicted).astype(floatx())


def categorical_accuracy(y_true, y_pred):
    """1 where ``argmax(y_true) == argmax(y_pred)`` (first maximum on ties)."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(floatx())


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the label equals ``argmax(y_pred)``; labels may end in an axis of 1."""
    y_pred = _float_pred(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(y_pred.dtype)).astype(floatx())
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


# ---- the metric classes ----

class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name, dtype)


class Accuracy(MeanMetricWrapper):
    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name, dtype)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


def cosine_similarity(y_true, y_pred):
    """Per sample: ``sum(unit(y_true) * unit(y_pred), axis=-1)`` (the loss's negation)."""
    y_pred = _float_pred(y_pred)
    y_true, y_pred = same_rank(np.asarray(y_true).astype(y_pred.dtype), y_pred)
    return -_losses.CosineSimilarity().call(y_true, y_pred)


class CosineSimilarity(MeanMetricWrapper):
    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        if axis != -1:
            raise NotImplementedError("CosineSimilarity(axis=...) other than -1 is not "
                                      "implemented in unrolled.")
        super().__init__(cosine_similarity, name, dtype)


class _LossMetric(MeanMetricWrapper):
    """The running mean of one of ``unrolled.losses``' per-sample values (Keras's metric of
    the same name): a subclass names the loss class and the metric's default name."""

    loss_class, default_name = None, None

    def __init__(self, name=None, dtype=None):
        loss = self.loss_class()
        super().__init__(lambda t, p: loss.per_sample(np.asarray(t), _float_pred(p)),
                         name or self.default_name, dtype)


class MeanAbsolutePercentageError(_LossMetric):
    loss_class, default_name = _losses.MeanAbsolutePercentageError, "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(_LossMetric):
    loss_class, default_name = _losses.MeanSquaredLogarithmicError, "mean_squared_logarithmic_error"


class LogCoshError(_LossMetric):
    loss_class, default_name = _losses.LogCosh, "logcosh"


class Poisson(_LossMetric):
    loss_class, default_name = _losses.Poisson, "poisson"


class KLDivergence(_LossMetric):
    loss_class, default_name = _losses.KLDivergence, "kl_divergence"


class Hinge(_LossMetric):
    loss_class, default_name = _losses.Hinge, "hinge"


class SquaredHinge(_LossMetric):
    loss_class, default_name = _losses.SquaredHinge, "squared_hinge"


class RootMeanSquaredError(Mean):
    """``sqrt`` of the weighted mean of the squared errors, as Keras's (the square root of
    the running mean, not the mean of per-batch roots)."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = _float_pred(y_pred)
        error = np.square(y_pred - np.asarray(y_true).astype(y_pred.dtype))
        if mask is not None:
            mask = np.asarray(mask).astype(self.dtype)
            sample_weight = mask if sample_weight is None else (
                np.asarray(sample_weight).astype(self.dtype) * mask)
        super().update_state(error, sample_weight)

    def result(self):
        return float(np.sqrt(super().result()))


def loss_tracker():
    """Keras's ``Mean(name="loss")``; update it with ``(batch_loss, sample_weight=batch_size)``."""
    return Mean(name="loss")


# Keras's names (keras.metrics.ALL_OBJECTS_DICT, case-sensitive) for the metrics we have.
_BY_NAME = {
    "mean": Mean, "Mean": Mean,
    "mean_squared_error": MeanSquaredError, "MeanSquaredError": MeanSquaredError,
    "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "MeanAbsoluteError": MeanAbsoluteError,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "accuracy": Accuracy, "Accuracy": Accuracy,
    "binary_accuracy": BinaryAccuracy, "BinaryAccuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "CategoricalAccuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "SparseCategoricalAccuracy": SparseCategoricalAccuracy,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "MeanAbsolutePercentageError": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "MeanSquaredLogarithmicError": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "LogCoshError": LogCoshError, "poisson": Poisson, "Poisson": Poisson,
    "kl_divergence": KLDivergence, "KLDivergence": KLDivergence, "hinge": Hinge,
    "Hinge": Hinge, "squared_hinge": SquaredHinge, "SquaredHinge": SquaredHinge,
    "root_mean_squared_error": RootMeanSquaredError,
    "RootMeanSquaredError": RootMeanSquaredError,
    "auc": AUC, "AUC": AUC,
    "precision": Precision, "Precision": Precision, "recall": Recall, "Recall": Recall,
    "cosine_similarity": CosineSimilarity, "CosineSimilarity": CosineSimilarity,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "TopKCategoricalAccuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "SparseTopKCategoricalAccuracy": SparseTopKCategoricalAccuracy,
}


def get(identifier):
    """A Metric from a name (as ``keras.metrics.get``: "accuracy" is exact ``Accuracy``,
    "acc" is unknown; use ``for_compile`` for compile's meaning), a Metric, a Metric class,
    or a function ``(y_true, y_pred) -> per-sample values`` (wrapped in a running mean)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(
                f"Unknown metric {identifier!r}. Known names: {', '.join(sorted(_BY_NAME))}"
                " (and, in compile, 'acc')."
            )
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        f"Could not interpret metric identifier {identifier!r}: expected a name, a Metric "
        "or a function (y_true, y_pred) -> per-sample values."
    )


def for_compile(identifier, y_true_shape, y_pred_shape):
    """The metric ``compile(metrics=[identifier])`` builds, named as History will log it.

    "accuracy"/"acc" (any case) become Binary/Sparse/CategoricalAccuracy by the shapes
    of the first batch; a string identifier names the metric ("mse" logs "mse"); a Metric
    keeps its own name; a function is wrapped in ``MeanMetricWrapper`` and logs under its
    name in snake case, as in Keras.
    """
    if identifier is None:
        raise ValueError("Expected a metric, received None.")
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        is_binary, is_sparse = binary_or_sparse(y_true_shape, y_pred_shape)
        if is_binary:
            return BinaryAccuracy(name=identifier)
        if is_sparse:
            return SparseCategoricalAccuracy(name=identifier)
        return CategoricalAccuracy(name=identifier)
    # compile() has already built one through get() to check the identifier, which took a
    # number of the automatic-name counter (as Keras's one build does): the metric built
    # here is named at once, taking no second number.
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier](name=identifier)
    if callable(identifier) and not isinstance(identifier, (Metric, type)):
        return MeanMetricWrapper(identifier, name=to_snake_case(identifier.__name__))
    metric = get(identifier)
    if isinstance(identifier, str):
        metric.name = identifier
    return metric
