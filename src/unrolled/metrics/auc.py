"""AUC: the area under the ROC or the precision-recall curve, from confusion counts kept
at a fixed set of thresholds, as Keras 3 computes it (a Riemann sum over the thresholds)."""
import numpy as np

from unrolled.config import epsilon
from unrolled.losses.base import same_rank
from unrolled.metrics.base import Metric

_CURVES = {"roc": "ROC", "ROC": "ROC", "pr": "PR", "PR": "PR"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(Metric):
    """Weighted counts ``TP, FP, TN, FN`` at each threshold ``t`` (a prediction is positive
    where ``y_pred > t``; a label is positive where it is non-zero), summed over every batch
    in float32, then an area::

        ROC: x = FP / (FP + TN), y = TP / (TP + FN)       PR: x = recall, y = precision
        area = sum_i (x_i - x_{i+1}) * h_i,   h_i = (y_i + y_{i+1}) / 2 ("interpolation"),
               min(y_i, y_{i+1}) ("minoring") or max(y_i, y_{i+1}) ("majoring")

    (each ratio 0 where its denominator is 0). PR with "interpolation" follows Davis &
    Goadrich instead: between two thresholds TP and ``P = TP + FP`` vary linearly, and the
    bucket adds ``slope * (dTP + intercept * log(P_i / P_{i+1})) / (TP + FN)``.

    Thresholds: ``num_thresholds`` evenly spaced, ``[-eps, 1/(n-1), ..., (n-2)/(n-1),
    1 + eps]``, or the given ``thresholds`` between ``-eps`` and ``1 + eps``. With evenly
    spaced ones, predictions are clipped to [0, 1] and put in buckets by
    ``ceil(p * (n - 1)) - 1`` (Keras's fast path, so 0 counts above ``-eps``); otherwise
    each is compared with each threshold. The whole output is flattened into one binary
    problem (every entry a sample). ``from_logits`` applies a sigmoid first.
    ``curve="PRGAIN"``, ``multi_label``, ``num_labels`` and ``label_weights`` are not
    implemented and are refused.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        for key, value, default in (("multi_label", multi_label, False),
                                    ("num_labels", num_labels, None),
                                    ("label_weights", label_weights, None)):
            if value is not default and value != default:
                raise NotImplementedError(f"AUC({key}={value!r}) is not implemented in "
                                          "unrolled: only the default is accepted.")
        if curve not in _CURVES:
            if curve in ("prgain", "PRGAIN"):
                raise NotImplementedError('AUC(curve="PRGAIN") is not implemented in '
                                          'unrolled: use "ROC" or "PR".')
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are '
                             '["PR", "ROC", "PRGAIN"]')
        if summation_method not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             f"Expected values are {list(_SUMMATIONS)}")
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_distributed([0.0] + inner + [1.0])
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        eps = epsilon()         # read when built, as Keras: just outside [0, 1]
        self._thresholds = np.array([0.0 - eps] + inner + [1.0 + eps])
        self.curve, self.summation_method = _CURVES[curve], summation_method
        self.from_logits = from_logits
        super().__init__(name, dtype)             # None: "auc", "auc_1", ... as in Keras
        self.reset_state()

    @property
    def thresholds(self):
        return list(self._thresholds)

    def reset_state(self):
        zeros = np.zeros(self.num_thresholds, self.dtype)
        self.true_positives, self.false_positives = zeros.copy(), zeros.copy()
        self.true_negatives, self.false_negatives = zeros.copy(), zeros.copy()

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": False, "num_labels": None, "label_weights": None,
                  "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config

    # ---- counting ----

    def update_state(self, y_true, y_pred, sample_weight=None):
        dt = self.dtype
        y_pred, y_true = same_rank(np.asarray(y_pred).astype(dt), np.asarray(y_true).astype(dt))
        if self.from_logits:
            with np.errstate(over="ignore"):
                y_pred = (dt.type(1) / (dt.type(1) + np.exp(-y_pred))).astype(dt)
        weight = None
        if sample_weight is not None:       # Keras: a trailing axis, then y_true's rank
            w = np.asarray(sample_weight).astype(dt)[..., None]
            if w.ndim == y_true.ndim + 1:
                w = w[..., 0]
            try:
                weight = np.broadcast_to(w, y_pred.shape).reshape(-1)
            except ValueError:
                raise ValueError(f"AUC: sample_weight of shape {np.shape(sample_weight)} "
                                 f"does not broadcast to y_pred's {y_pred.shape}.") from None
        positive = (y_true != 0).reshape(-1)
        y_pred = y_pred.reshape(-1)
        ones = np.ones(y_pred.shape, dt) if weight is None else weight
        true_w = np.where(positive, ones, dt.type(0))
        false_w = np.where(positive, dt.type(0), ones)
        n = self.num_thresholds
        if self._evenly:
            # bucket b holds the predictions above thresholds 0..b only; TP(t_i) is the
            # sum of the buckets >= i (a reversed cumulative sum)
            p = np.clip(y_pred, dt.type(0), dt.type(1))
            buckets = np.maximum(np.ceil(p * (dt.type(n) - dt.type(1))) - 1, 0).astype(np.int64)
            tp = np.bincount(buckets, true_w, minlength=n).astype(dt)[::-1].cumsum(dtype=dt)[::-1]
            fp = np.bincount(buckets, false_w, minlength=n).astype(dt)[::-1].cumsum(dtype=dt)[::-1]
        else:
            above = y_pred[None, :] > self._thresholds.astype(dt)[:, None]    # (n, samples)
            tp = np.where(above, true_w, dt.type(0)).sum(axis=1, dtype=dt)
            fp = np.where(above, false_w, dt.type(0)).sum(axis=1, dtype=dt)
        self.true_positives += tp
        self.false_positives += fp
        self.true_negatives += false_w.sum(dtype=dt) - fp
        self.false_negatives += true_w.sum(dtype=dt) - tp

    # ---- the area ----

    def result(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.curve == "PR" and self.summation_method == "interpolation":
                return float(self._interpolated_pr())
            tp, fp, tn, fn = (self.true_positives, self.false_positives,
                              self.true_negatives, self.false_negatives)
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, _divide_no_nan(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / y.dtype.type(2)
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            return float(np.sum((x[:-1] - x[1:]) * heights, dtype=self.dtype))

    def _interpolated_pr(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dt = tp.dtype.type
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, dt(0)))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0),
                         _divide_no_nan(p[:-1], np.maximum(p[1:], dt(0))), dt(1))
        increment = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)),
                                   np.maximum(tp[1:] + fn[1:], dt(0)))
        return np.sum(increment, dtype=self.dtype)


def _divide_no_nan(a, b):
    """``a / b``, 0 where ``b`` is 0."""
    safe = np.where(b == 0, b.dtype.type(1), b)
    return np.where(b == 0, b.dtype.type(0), a / safe)


def _evenly_distributed(thresholds):
    """Keras's test for its fast path: at least 3 values, each within ``epsilon()`` (1e-7)
    of ``i / (n-1)``."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=epsilon()))
