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


class _Timeseries(PyDataset):
    # It stands in for Keras's tf.data.Dataset, whose order fit(shuffle=True) leaves alone.
    fit_shuffles = False

    def __init__(self, data, targets, positions, offsets, batch_size):
        super().__init__()
        self.data, self.targets = data, targets
        self.positions, self.offsets, self.batch_size = positions, offsets, batch_size

    def __len__(self):
        if self.batch_size is None:
            return len(self.positions)
        return -(-len(self.positions) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        size = self.batch_size or 1
        starts = self.positions[index * size:(index + 1) * size]
        x = self.data[starts[:, None] + self.offsets]
        if self.batch_size is None:
            x, starts = x[0], starts[0]
        return x if self.targets is None else (x, self.targets[starts])


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Windows of ``sequence_length`` steps (every ``sampling_rate``-th step) starting every
    ``sequence_stride`` steps of ``data[start_index:end_index]``, each with the target at
    its start index, in batches of ``batch_size`` (None: one window at a time), as
    ``keras.utils.timeseries_dataset_from_array`` cuts them.

    Returns a ``PyDataset`` that ``fit``, ``evaluate`` and ``predict`` take, whose items
    are NumPy batches ``(x, y)`` (``x`` alone without targets), where Keras returns a
    ``tf.data.Dataset``. ``shuffle=True`` shuffles the windows with NumPy's
    ``RandomState(seed)``, as Keras first does; Keras then shuffles again through
    tf.data buffers, which this does not copy, so shuffled batches differ from Keras's.
    """
    data = np.asarray(data)
    if targets is not None:
        targets = np.asarray(targets)
    start = 0 if start_index is None else start_index
    end = len(data) if end_index is None else end_index
    if start_index is not None and not 0 <= start_index < len(data):
        raise ValueError("`start_index` must be 0 or greater and lower than the length of "
                         f"the data. Received: start_index={start_index}, for data of "
                         f"length {len(data)}")
    if end_index is not None and not (start < end_index < len(data) and end_index > 0):
        raise ValueError("`end_index` must be higher than `start_index` and lower than the "
                         f"length of the data. Received: end_index={end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value <= 0 or value >= len(data):
            raise ValueError(f"`{name}` must be higher than 0 and lower than the length of "
                             f"the data. Received: {name}={value}, for data of length "
                             f"{len(data)}")
    num_seqs = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_seqs = min(num_seqs, len(targets))
    positions = np.arange(0, max(num_seqs, 0), sequence_stride)
    if shuffle:
        np.random.RandomState(np.random.randint(1e6) if seed is None else seed).shuffle(
            positions)
    offsets = np.arange(0, sequence_length * sampling_rate, sampling_rate)
    return _Timeseries(data[start:end], None if targets is None else targets[start:end],
                       positions, offsets, batch_size)
