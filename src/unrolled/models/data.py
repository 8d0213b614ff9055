"""How ``fit``/``evaluate``/``predict`` cut NumPy arrays into batches, as Keras 3.15 does.

The rules (checked against Keras 3.15.1 with the TensorFlow backend):

* ``batch_size=None`` is 32, unless a step count is given: then it is
  ``ceil(n / steps)`` (``fit(steps_per_epoch=)``, ``evaluate(steps=)``, ``predict(steps=)``).
* ``steps_per_epoch`` caps an epoch at that many batches, and the next epoch *continues*
  where the last one stopped; only once every batch has been used does a new pass start
  (with a new shuffle). A pass that runs out mid-epoch ends that epoch early, with a
  warning: 4 batches and ``steps_per_epoch=3`` train 3, 1, 3, 1, ... batches per epoch.
  Asking for more steps than there are batches trains every batch each epoch, and warns.
* ``evaluate``/``predict`` with ``steps`` use the first ``steps`` batches (all of them,
  with a warning, if there are fewer); so does each validation in ``fit`` with
  ``validation_steps``: it restarts from the first batch every time.
* ``shuffle=True`` permutes all samples once per pass; ``shuffle="batch"`` shuffles
  inside each batch only.
* ``class_weight`` becomes a per-sample weight: each sample weighs its class's weight
  (1 for a class not in the dict). The class is ``y`` itself, ``argmax(y)`` for one-hot
  or probability rows, ``round(y)`` for a column of 0/1; it cannot be combined with
  ``sample_weight``.
"""
import math
import warnings

import numpy as np

from .. import utils


def check_steps(name, value):
    """None or a positive integer (Keras treats 0 as None; we refuse it as meaningless)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be None or a positive integer; received {value!r}.")
    return int(value)


def check_batch_size(batch_size, n, steps):
    if batch_size is None:
        return math.ceil(n / steps) if steps else 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer; received {batch_size!r}.")
    return int(batch_size)


class Batches:
    """The index arrays of each epoch's batches over ``n`` samples."""

    def __init__(self, n, batch_size=None, steps=None, shuffle=False, what="steps_per_epoch"):
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"`shuffle` must be True, False or 'batch'; received {shuffle!r}.")
        self.steps = check_steps(what, steps)
        self.batch_size = check_batch_size(batch_size, n, self.steps)
        self.n, self.shuffle, self.what = n, shuffle, what
        self.size = math.ceil(n / self.batch_size)        # batches in one pass over the data
        self._pass = None                                  # the current pass's batches
        self._seen = 0                                     # batches of it already used

    @property
    def num_batches(self):
        """What Keras reports as ``params["steps"]`` and the progress bar's target."""
        return self.steps or self.size

    def _new_pass(self):
        n, bs = self.n, self.batch_size
        if not self.shuffle:                # slices: views, no copies
            self._pass, self._seen = [slice(i * bs, (i + 1) * bs) for i in range(self.size)], 0
            return
        order = utils.rng().permutation(n) if self.shuffle is True else np.arange(n)
        batches = [order[i * bs:(i + 1) * bs] for i in range(self.size)]
        if self.shuffle == "batch":
            batches = [utils.rng().permutation(b) for b in batches]
        self._pass, self._seen = batches, 0

    def reset(self):
        """Start from the first batch again (Keras does before every evaluation)."""
        self._pass = None

    def epoch(self):
        """Yield one epoch's batches: slices, or index arrays when shuffling."""
        if self._pass is None or self.steps is None:
            self._new_pass()
        for _ in range(self.steps or self.size):
            if self._seen >= self.size:
                warnings.warn(
                    f"The data ran out: {self.n} samples in batches of {self.batch_size} make "
                    f"{self.size} batches, and with {self.what}={self.steps} this epoch reached "
                    "the last of them, so it stops here (as in Keras); the next epoch starts "
                    "again from the first batch.", UserWarning, stacklevel=3)
                break
            self._seen += 1
            yield self._pass[self._seen - 1]
        if self._seen >= self.size:
            self._pass = None                              # the next epoch starts a new pass


def class_weight_to_sample_weight(y, class_weight, y_pred_ndim, dtype):
    """Per-sample weights ``(N,)`` from ``class_weight`` (a dict class -> weight)."""
    if not isinstance(class_weight, dict):
        raise TypeError(
            "`class_weight` must be a dict mapping class indices to weights, e.g. "
            f"{{0: 1.0, 1: 5.0}}; received {type(class_weight).__name__}."
        )
    y = np.asarray(y)
    if y_pred_ndim > 2:
        # Keras fails here too (a shape error, or a TypeError for one-hot sequences), or
        # for sequence labels with T == N weighs samples by argmax over time steps.
        raise ValueError(
            "`class_weight` needs one class per sample, but the model's output is a "
            f"sequence (rank {y_pred_ndim}; targets of shape {y.shape}). Pass per-time-step "
            "weights through `sample_weight` of shape (N, T) instead."
        )
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
    classes = np.round(y).astype(np.int32)
    return np.array([class_weight.get(int(c), 1.0) for c in classes], dtype=dtype)


def unpack(data, name):
    """``(x, y, sample_weight)`` from a tuple of 1 to 3 items, as Keras unpacks them."""
    if not isinstance(data, (tuple, list)) or not 1 <= len(data) <= 3:
        raise ValueError(
            f"`{name}` must be a tuple (x, y) or (x, y, sample_weight); received "
            f"{type(data).__name__}{' of length ' + str(len(data)) if isinstance(data, (tuple, list)) else ''}."
        )
    x, y, sw = (tuple(data) + (None, None))[:3]
    return x, y, sw


def should_validate(epoch, validation_freq):
    """Validate after 0-based ``epoch``? An int: every that many epochs; a list: after
    those 1-based epochs."""
    if isinstance(validation_freq, list):
        return epoch + 1 in validation_freq
    return (epoch + 1) % validation_freq == 0


def check_validation_freq(validation_freq):
    if isinstance(validation_freq, list):
        return validation_freq
    if isinstance(validation_freq, bool) or not isinstance(validation_freq, (int, np.integer)):
        raise ValueError(
            "`validation_freq` must be an int (validate every that many epochs) or a list of "
            f"1-based epochs; received {validation_freq!r} of type {type(validation_freq).__name__}."
        )
    if validation_freq <= 0:
        raise ValueError(f"`validation_freq` must be at least 1; received {validation_freq}.")
    return int(validation_freq)
