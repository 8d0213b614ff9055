"""Keras's helpers for sequence data: ``pad_sequences``, ``to_categorical``, and
``PyDataset`` (Keras 2's ``Sequence``), the base class of data that comes in batches.

Both are what ``keras.utils`` (and Keras 2's ``keras.preprocessing.sequence``) compute, on
NumPy alone: the same defaults (``padding="pre"``, ``truncating="pre"``, int32 ids; float
one-hot rows), the same shapes and the same errors.
"""
import numpy as np


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Sequences of different lengths as one ``(len(sequences), maxlen, ...)`` array.

    Each sequence longer than ``maxlen`` (default: the longest) loses its first steps
    (``truncating="pre"``) or its last (``"post"``); each shorter one is filled with
    ``value`` before (``padding="pre"``) or after (``"post"``). Steps may be arrays: their
    shape (that of the first non-empty sequence's steps) is kept.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood')
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood')
    lengths, step_shape = [], None
    for s in sequences:
        if not hasattr(s, "__len__"):
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {s}")
        lengths.append(len(s))
        if step_shape is None and len(s):
            step_shape = np.asarray(s).shape[1:]
    step_shape = step_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    text_dtype = np.issubdtype(np.dtype(dtype), np.str_) if dtype is not object else False
    if isinstance(value, str) and dtype is not object and not text_dtype:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: "
                         f"{type(value)}\nYou should set `dtype=object` for variable length "
                         "strings.")
    out = np.full((len(lengths), maxlen) + tuple(step_shape), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or maxlen == 0:
            continue
        kept = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        kept = np.asarray(kept, dtype=dtype)
        if kept.shape[1:] != tuple(step_shape):
            raise ValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {i} is "
                             f"different from expected shape {tuple(step_shape)}")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out


def to_categorical(x, num_classes=None):
    """Integer class ids as one-hot rows: shape ``x.shape + (num_classes,)`` (a trailing
    axis of size 1 is replaced), ``num_classes`` defaulting to ``max(x) + 1``."""
    x = np.array(x, dtype="int64")
    shape = x.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1
    out = np.zeros((x.shape[0], num_classes))
    out[np.arange(x.shape[0]), x] = 1
    return out.reshape(shape + (num_classes,))


class PyDataset:
    """Keras's ``keras.utils.PyDataset`` (Keras 2's ``Sequence``): subclass it with
    ``__len__`` (batches per epoch) and ``__getitem__(index)`` returning a batch ``(x, y)``
    or ``(x, y, sample_weight)``; ``on_epoch_begin``/``on_epoch_end`` run around each epoch
    (``on_epoch_end`` also once as ``fit`` starts, as in Keras). ``workers``,
    ``use_multiprocessing`` and ``max_queue_size`` are accepted as Keras accepts them; the
    batches are read in the calling thread (the numbers are the same), with a warning when
    more than one worker is asked for."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__.")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__.")

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass
