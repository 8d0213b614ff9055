"""Random seeds and small helpers shared across the package, and Keras's ``keras.utils``
helpers for sequence data (``pad_sequences``, ``to_categorical``, ``PyDataset``)."""
import random

import numpy as np

from .sequence_utils import (PyDataset, pad_sequences, timeseries_dataset_from_array,  # noqa: F401
                             to_categorical)

Sequence = PyDataset                  # Keras 2's name

_RNG = np.random.default_rng()


def set_random_seed(seed):
    """Make weight initialization, dropout and ``unrolled.random`` repeatable, and seed
    Python's ``random`` and NumPy's global generator too, as ``keras.utils.set_random_seed``
    does (scripts draw their data from those after calling it)."""
    global _RNG
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed expects a non-negative integer; received {seed!r}.")
    _RNG = np.random.default_rng(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed))


def rng():
    """The package's NumPy Generator: every random draw in ``unrolled`` comes from it."""
    return _RNG


def to_list(x):
    """``x`` as a list: a list or tuple as is, None as [], anything else as [x]."""
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


# keras.utils holds these too; they live in unrolled.backend and unrolled.saving
_ELSEWHERE = {"clear_session": "backend", **dict.fromkeys((
    "register_keras_serializable", "get_custom_objects", "get_registered_name",
    "get_registered_object", "custom_object_scope", "CustomObjectScope",
    "serialize_keras_object", "deserialize_keras_object"), "saving")}


def __getattr__(name):
    if name in _ELSEWHERE:
        import importlib
        return getattr(importlib.import_module(f"unrolled.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module 'unrolled.utils' has no attribute '{name}'")
