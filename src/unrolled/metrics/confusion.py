"""Metrics that count classes rather than average a per-sample value's error: top-k
accuracy (TensorFlow's ``in_top_k``) and the confusion-count metrics Precision and Recall."""
import numpy as np

from unrolled.config import floatx
from unrolled.losses.base import same_rank
from unrolled.metrics.base import Metric, MeanMetricWrapper, _float_pred


def _in_top_k(targets, y_pred, k):
    """TensorFlow's in_top_k: the target's score has fewer than ``k`` scores above it (ties
    at the boundary count as in)."""
    scores = y_pred.reshape(-1, y_pred.shape[-1])
    targets = targets.reshape(-1).astype(np.int64)
    own = scores[np.arange(len(targets)), targets][:, None]
    return (np.sum(scores > own, axis=-1) < k).astype(floatx())


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per sample: 1 where the one-hot ``y_true``'s class is among the ``k`` highest scores."""
    y_pred = _float_pred(y_pred)
    targets = np.argmax(np.asarray(y_true), axis=-1)
    return _in_top_k(targets, y_pred, k).reshape(targets.shape)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """As ``top_k_categorical_accuracy`` with integer labels (a trailing axis of 1 allowed)."""
    y_pred = _float_pred(y_pred)
    targets = np.asarray(y_true)
    if targets.ndim == y_pred.ndim and targets.shape[-1] == 1:
        targets = targets[..., 0]
    return _in_top_k(targets, y_pred, k).reshape(targets.shape)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name, dtype, k=k)
        self.k = k

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids=False):
        if from_sorted_ids:
            raise NotImplementedError("SparseTopKCategoricalAccuracy(from_sorted_ids=True) is "
                                      "not implemented in unrolled.")
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=k)
        self.k = k

    def get_config(self):
        return {**super().get_config(), "k": self.k, "from_sorted_ids": False}


class _ConfusionMetric(Metric):
    """Keras's confusion-matrix metrics at one threshold: ``y_pred > threshold`` is a
    predicted positive, ``y_true != 0`` a true one; the weighted counts of true positives,
    false positives and false negatives are summed in float32 over every batch (each
    weight broadcast to ``y_pred``'s shape, every entry of a multi-label output counted).
    As in Keras 3, an output mask does not reach them (only ``MeanMetricWrapper`` metrics
    read ``y_pred``'s mask): masked steps count. ``thresholds`` may be one value (0.5 when
    None); a list of several, ``top_k`` and ``class_id`` are not implemented."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None or class_id is not None:
            raise NotImplementedError(f"{type(self).__name__}(top_k=..., class_id=...) is not "
                                      "implemented in unrolled; it would be ignored.")
        self.init_thresholds = thresholds         # as given: what the config holds, as Keras's
        if isinstance(thresholds, (list, tuple)):
            if len(thresholds) != 1:
                raise NotImplementedError(f"{type(self).__name__} with several thresholds is "
                                          "not implemented in unrolled: give one.")
            thresholds = thresholds[0]
        self.thresholds = 0.5 if thresholds is None else float(thresholds)
        super().__init__(name, dtype)             # None: numbered, as Keras names it
        self.reset_state()

    def reset_state(self):
        zero = self.dtype.type(0)
        self.true_positives = self.false_positives = self.false_negatives = zero

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": None,
                "class_id": None}

    def update_state(self, y_true, y_pred, sample_weight=None):
        dt = self.dtype
        y_pred, y_true = same_rank(np.asarray(y_pred).astype(dt), np.asarray(y_true).astype(dt))
        weight = np.ones(y_pred.shape, dt)
        if sample_weight is not None:         # Keras: a trailing axis, then y_true's rank
            w = np.asarray(sample_weight).astype(dt)[..., None]
            if w.ndim == y_true.ndim + 1:
                w = w[..., 0]
            try:
                weight = np.broadcast_to(w, y_pred.shape)
            except ValueError:
                raise ValueError(f"{type(self).__name__}: sample_weight of shape "
                                 f"{np.shape(sample_weight)} does not broadcast to y_pred's "
                                 f"{y_pred.shape} (Keras refuses it too); give one weight per "
                                 "entry of y_pred.") from None
        predicted, true = y_pred > dt.type(self.thresholds), y_true != 0
        self.true_positives = dt.type(self.true_positives + weight[predicted & true].sum(dtype=dt))
        self.false_positives = dt.type(self.false_positives
                                       + weight[predicted & ~true].sum(dtype=dt))
        self.false_negatives = dt.type(self.false_negatives
                                       + weight[~predicted & true].sum(dtype=dt))

    def _ratio(self, wrong):
        total = self.true_positives + wrong
        return float(self.true_positives / total) if total != 0 else 0.0    # divide_no_nan


class Precision(_ConfusionMetric):
    """``true positives / (true positives + false positives)``."""

    def result(self):
        return self._ratio(self.false_positives)


class Recall(_ConfusionMetric):
    """``true positives / (true positives + false negatives)``."""

    def result(self):
        return self._ratio(self.false_negatives)
