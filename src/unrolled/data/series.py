"""Time series as supervised data: sliding windows, splits in time order, scaling.

Three steps turn a series into something a recurrent network can learn from::

    train, val, test = split_in_time(series, train=0.7, validation=0.15, context=24)
    scaler = Scaler().fit(train)                       # statistics of the past only
    x, y = timeseries_windows(scaler.transform(train), sequence_length=24, horizon=1)

``timeseries_windows`` follows ``keras.utils.timeseries_dataset_from_array`` argument by
argument, but returns all windows as two NumPy arrays instead of a batched ``tf.data``
pipeline (``Model.fit`` does the batching and shuffling).
"""
import numpy as np


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def timeseries_windows(data, targets=None, sequence_length=None, sequence_stride=1,
                       sampling_rate=1, start_index=None, end_index=None, horizon=None):
    """Sliding windows over ``data`` (time on axis 0), as ``timeseries_dataset_from_array``.

    Window ``i`` starts at ``p = start_index + i * sequence_stride`` and holds the steps
    ``data[p], data[p + r], ..., data[p + (sequence_length - 1) * r]`` with ``r =
    sampling_rate``. Only steps in ``[start_index, end_index)`` are used. Returns ``x`` of
    shape ``(windows, sequence_length) + data.shape[1:]``, and ``(x, y)`` when there are
    targets:

    * ``targets`` given: ``y[i] = targets[p]``: the target of the window *starting* at
      ``p``, exactly Keras's convention (``timeseries_windows(s[:-10], s[10:], 10)`` pairs
      each 10-step window with the value right after it).
    * ``horizon=h`` (instead of ``targets``): ``y[i]`` holds the ``h`` values of ``data``
      that follow the window's last step, shape ``(windows, h) + data.shape[1:]``; ``h=1``
      is one-step-ahead forecasting.

    Differences from Keras, on purpose: no batching or shuffling (``fit`` does both); and a
    window that does not fit in the series is an error here, where Keras silently yields
    an empty dataset.
    """
    data = np.asarray(data)
    if data.ndim == 0:
        raise ValueError(f"`data` must have a time axis (axis 0); received a scalar {data!r}.")
    if sequence_length is None:
        raise TypeError("timeseries_windows() needs `sequence_length`, the number of steps per window.")
    length = _positive_int("sequence_length", sequence_length)
    stride = _positive_int("sequence_stride", sequence_stride)
    rate = _positive_int("sampling_rate", sampling_rate)
    start = 0 if start_index is None else int(start_index)
    end = len(data) if end_index is None else int(end_index)
    if not 0 <= start < len(data):
        raise ValueError(f"`start_index` must be in [0, {len(data)}) for data of length "
                         f"{len(data)}. Received: start_index={start_index}")
    if not start < end <= len(data):
        raise ValueError(f"`end_index` must be in ({start}, {len(data)}]. Received: "
                         f"end_index={end_index}")
    if targets is not None and horizon is not None:
        raise ValueError("Pass either `targets` or `horizon`, not both: `horizon` builds the "
                         "targets from `data` itself.")
    ahead = 0 if horizon is None else _positive_int("horizon", horizon)

    span = (length - 1) * rate + 1 + ahead            # steps one window (and its targets) covers
    count = end - start - span + 1                    # start positions that fit
    if targets is not None:
        targets = np.asarray(targets)
        count = min(count, len(targets) - start)
    if count <= 0:
        need = f"{span} steps" + (f" ({span - ahead} for the window, {ahead} ahead)" if ahead else "")
        have = f"{end - start} steps" + (f" and {len(targets) - start} targets"
                                         if targets is not None else "")
        raise ValueError(
            f"No window fits: sequence_length={length} with sampling_rate={rate} needs {need}, "
            f"but the series has {have} between start_index={start} and end_index={end}. "
            "Use a shorter sequence_length or a longer series."
        )
    starts = start + np.arange(0, count, stride)
    steps = starts[:, None] + rate * np.arange(length)           # (windows, length) indices
    x = data[steps]
    if targets is not None:
        return x, targets[starts]
    if ahead:
        last = steps[:, -1]
        return x, data[last[:, None] + np.arange(1, ahead + 1)]
    return x


def _part_size(name, value, n):
    if isinstance(value, float):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"`{name}` as a fraction must be in [0, 1]; received {value}.")
        return int(round(value * n))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ValueError(f"`{name}` must be a fraction in [0, 1] or a number of steps; received {value!r}.")


def split_in_time(data, train=0.7, validation=0.15, context=0):
    """``(train, validation, test)``: consecutive parts of ``data`` along axis 0, in time order.

    ``train`` and ``validation`` are fractions of the series or numbers of steps; the test
    part is what remains. Nothing is shuffled: the model is always judged on a future it
    has not seen. ``context=k`` prepends the last ``k`` steps of the previous part to the
    validation and test parts, so that windows of ``k`` steps can predict their very first
    values (the targets still lie only in their own part).
    """
    data = np.asarray(data)
    n = len(data)
    n_train = _part_size("train", train, n)
    n_val = _part_size("validation", validation, n)
    if n_train == 0 or n_train + n_val >= n:
        raise ValueError(
            f"split_in_time({n} steps, train={train}, validation={validation}) leaves "
            f"{n_train} training and {n - n_train - n_val} test steps; every part needs at least one."
        )
    k = int(context)
    if not 0 <= k <= n_train:
        raise ValueError(f"`context` must be in [0, {n_train}] (the training part's length); "
                         f"received {context}.")
    a, b = n_train, n_train + n_val
    return data[:a], data[a - k:b], data[b - k:]


class Scaler:
    """Standard (``(x - mean) / std``) or min-max (to ``feature_range``) scaling per feature.

    Fit it on the training part only, then transform every part with the same numbers:
    statistics taken from the validation or test part would leak the future into training.
    Features are the last axis (a 1-D series is one feature). A constant feature gets
    scale 1, as scikit-learn does, so it maps to 0 (standard) or the range's low end.
    """

    def __init__(self, kind="standard", feature_range=(0.0, 1.0)):
        if kind not in ("standard", "minmax"):
            raise ValueError(f"Scaler kind must be 'standard' or 'minmax'; received {kind!r}.")
        low, high = feature_range
        if not low < high:
            raise ValueError("feature_range must be (low, high) with low < high; "
                             f"received {feature_range}.")
        self.kind, self.feature_range = kind, (float(low), float(high))
        self.offset_ = self.scale_ = None              # x_scaled = (x - offset_) / scale_ [+ low]

    def _features(self, x):
        x = np.asarray(x, dtype=float)
        return x if x.ndim else x.reshape(1)

    def fit(self, x):
        """Learn the offset and scale of each feature from ``x`` (the training part)."""
        x = self._features(x)
        if x.size == 0:
            raise ValueError("Scaler.fit received an empty array.")
        if not np.all(np.isfinite(x)):
            raise ValueError("Scaler.fit received NaN or Inf values; clean or fill them first.")
        axes = tuple(range(x.ndim - 1)) if x.ndim > 1 else 0
        if self.kind == "standard":
            offset, scale = x.mean(axis=axes), x.std(axis=axes)
        else:
            offset = x.min(axis=axes)
            scale = (x.max(axis=axes) - offset) / (self.feature_range[1] - self.feature_range[0])
        self.offset_, self.scale_ = offset, np.where(scale == 0, 1.0, scale)
        return self

    def _check_fitted(self, what):
        if self.scale_ is None:
            raise RuntimeError(
                f"This Scaler is not fitted yet: call scaler.fit(train) on the training part "
                f"before scaler.{what}(...)."
            )

    def _check_shape(self, x):
        width = np.shape(self.scale_)
        if x.shape[-1:] != width and width != ():
            raise ValueError(f"The Scaler was fitted on {width[0]} features (last axis); "
                             f"received an array of shape {x.shape}.")

    def transform(self, x):
        self._check_fitted("transform")
        x = self._features(x)
        self._check_shape(x)
        low = self.feature_range[0] if self.kind == "minmax" else 0.0
        return (x - self.offset_) / self.scale_ + low

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def inverse_transform(self, x):
        """Back to the original units: ``x * scale_ + offset_`` (after removing the range's low)."""
        self._check_fitted("inverse_transform")
        x = self._features(x)
        self._check_shape(x)
        low = self.feature_range[0] if self.kind == "minmax" else 0.0
        return (x - low) * self.scale_ + self.offset_

    def __repr__(self):
        state = "fitted" if self.scale_ is not None else "not fitted"
        return f"Scaler(kind={self.kind!r}, {state})"
