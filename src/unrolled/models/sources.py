"""Where ``fit``/``evaluate``/``predict`` take their batches from: NumPy arrays cut into
batches (``data.Batches``), or data that comes in batches already, as Keras 3 takes it:

* a Python generator or iterator of ``(x, y)`` or ``(x, y, sample_weight)`` tuples (for
  ``predict``, of ``x`` alone or such tuples, whose ``x`` is used). ``steps_per_epoch``
  draws that many batches per epoch, going on where the last epoch stopped; without it an
  epoch lasts until the iterator ends, and an epoch that finds it ended stops training
  with Keras's warning. (Keras 3.15 itself trains the later epochs on the first two
  batches again, which it kept when it peeked at the generator: an artifact of its
  implementation, not followed here.)
* a ``PyDataset`` (``unrolled.utils.PyDataset``, Keras 2's ``Sequence``) or any object
  with ``__len__`` and ``__getitem__`` returning such batches: ``len`` batches an epoch
  (or ``steps_per_epoch``), in order, or shuffled when ``shuffle=True``; its
  ``on_epoch_begin()`` before each epoch and ``on_epoch_end()`` after, and once more when
  ``fit``/``evaluate``/``predict`` starts, as Keras's EpochIterator calls it.

``ArraySource`` and ``BatchSource`` give ``fit``'s loop the same thing: ``epoch()`` yields
``(xs, y, sample_weight)`` per batch, ``num_batches`` is known or None.
"""
import types
import warnings

import numpy as np

from .. import utils


def is_batch_source(x):
    """Data that comes in batches: a generator, an iterator, or a PyDataset-like object."""
    if isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)) or x is None:
        return False
    if isinstance(x, (types.GeneratorType,)) or hasattr(x, "__next__"):
        return True
    if hasattr(x, "__array__") or hasattr(x, "shape"):   # array-likes: dask, pandas, torch
        return False
    return hasattr(x, "__len__") and hasattr(x, "__getitem__")


def refuse_with_batches(what, **given):
    """Keras's errors for arguments that a batch source already holds."""
    for name, value in given.items():
        if value is None or (isinstance(value, (bool, int, float)) and not value):
            continue
        raise ValueError(f"`{name}` argument is not supported when {what} comes in batches "
                         "(a generator or a PyDataset): each batch carries its own.")


class ArraySource:
    """Batches of NumPy arrays ``xs`` (one per input), ``y`` and ``sample_weight``."""

    def __init__(self, xs, ys, sw, batches):
        self.xs, self.ys, self.sw, self.batches = xs, ys, sw, batches

    @property
    def num_batches(self):
        return self.batches.num_batches

    def reset(self):
        self.batches.reset()

    def epoch(self):
        for b in self.batches.epoch():
            yield [a[b] for a in self.xs], self.ys[b], None if self.sw is None else self.sw[b]

    def end_epoch(self):
        pass


class BatchSource:
    """Batches from a generator, an iterator or a PyDataset; ``standardize(x, y, sw)``
    checks each batch as ``fit`` checks arrays (``x`` alone for ``predict``)."""

    def __init__(self, data, steps, shuffle, standardize, what="x"):
        self.data, self.steps = data, steps
        self.shuffle = shuffle and getattr(data, "fit_shuffles", True)
        self.standardize, self.what = standardize, what
        self.indexed = not hasattr(data, "__next__")
        if self.indexed:
            self.length = len(data)
            if self.length == 0:
                raise ValueError(f"`{what}` has no batches: its len() is 0.")
            if getattr(data, "workers", 1) not in (None, 1) or getattr(
                    data, "use_multiprocessing", False):
                warnings.warn("unrolled reads a PyDataset's batches in the calling thread: "
                              "workers and use_multiprocessing change nothing but speed.",
                              stacklevel=3)
        self.ended = False
        self.end_epoch()         # as Keras's EpochIterator does when it starts (its reset())

    @property
    def num_batches(self):
        if self.indexed:
            return self.length if self.steps is None else min(self.steps, self.length)
        return self.steps

    def reset(self):
        pass

    def _raw(self):
        if self.indexed:
            order = np.arange(self.length)
            if self.shuffle:
                utils.rng().shuffle(order)
            for i in order[:self.num_batches]:
                yield self.data[int(i)]
            return
        count = 0
        while self.steps is None or count < self.steps:
            try:
                batch = next(self.data)
            except StopIteration:
                self.ended = True
                return
            count += 1
            yield batch

    def epoch(self):
        self._hook("on_epoch_begin")
        for batch in self._raw():
            yield self.standardize(batch)

    def end_epoch(self):
        self._hook("on_epoch_end")

    def _hook(self, name):
        hook = getattr(self.data, name, None)
        if self.indexed and callable(hook):
            hook()

