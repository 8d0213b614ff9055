"""Keras's array helpers for sequence data: ``pad_sequences`` and ``to_categorical``.

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
