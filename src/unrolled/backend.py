"""``keras.backend`` for scripts run with ``import unrolled as keras``.

What Keras 3's ``keras.backend`` offers and unrolled honours:

``clear_session(free_memory=True)``
    Keras resets its global state; what unrolled keeps of it is the per-process counter
    behind automatic names (``dense``, ``dense_1``...; ``precision``, ``precision_1``...)
    and the active ``custom_object_scope``. Both are reset, as in Keras: the next
    ``Dense()`` is ``dense`` again. ``free_memory`` runs the garbage collector.
``get_uid(prefix="")``
    that counter: adds one to ``prefix``'s count and returns the new count.
``floatx()``/``set_floatx(value)``
    the float type new layers, weights, metrics and optimizers use (``unrolled.config``).
``epsilon()``/``set_epsilon(value)``
    the fuzz factor (1e-7) read where Keras reads ``backend.epsilon()``: the probability
    clipping of the crossentropies and the other losses, weight constraints, ``AUC``'s
    outer thresholds (when the metric is built), BatchNormalization's masked moments and
    ``Dot(normalize=True)``.
``image_data_format()``/``set_image_data_format(value)``
    ``"channels_last"``, the only layout unrolled's layers compute; ``"channels_first"`` is
    refused by name instead of being recorded and ignored.
``backend()``
    ``"numpy"``: unrolled computes in NumPy, as Keras's NumPy backend does (a script that
    branches on ``== "tensorflow"`` takes its other branch).
``is_keras_tensor(x)``, ``standardize_dtype(dtype)``, ``is_float_dtype``, ``is_int_dtype``
    as Keras's.

Anything else raises an AttributeError naming what unrolled has.
"""
import gc

import numpy as np

from unrolled import config
from unrolled.config import epsilon, floatx, set_epsilon, set_floatx  # noqa: F401

_IMAGE_DATA_FORMAT = "channels_last"


def clear_session(free_memory=True):
    """Reset the automatic-name counters (and any active ``custom_object_scope``), as
    ``keras.backend.clear_session()`` does; with ``free_memory`` collect garbage too."""
    from unrolled.layers import base
    from unrolled import saving
    base._NAME_COUNTS.clear()
    saving._reset_scope()
    if free_memory:
        gc.collect()


def get_uid(prefix=""):
    """One more use of ``prefix`` in the automatic-name counter; returns its new count
    (``get_uid("dense")`` after two ``Dense()`` is 3), as ``keras.backend.get_uid``."""
    from unrolled.layers import base
    base._NAME_COUNTS[prefix] = base._NAME_COUNTS.get(prefix, 0) + 1
    return base._NAME_COUNTS[prefix]


def backend():
    """``"numpy"``: the engine unrolled computes with."""
    return "numpy"


def image_data_format():
    """``"channels_last"``: ``(batch, steps, channels)``, the layout of unrolled's layers."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format):
    """Accepts ``"channels_last"``; ``"channels_first"`` is not implemented by unrolled's
    layers and raises rather than being ignored."""
    fmt = str(data_format).lower()
    if fmt not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={data_format}")
    if fmt == "channels_first":
        raise NotImplementedError(
            "set_image_data_format('channels_first') is not supported by unrolled: its layers "
            "compute on channels_last inputs (batch, steps, channels) only.")


def is_keras_tensor(x):
    """True for a symbolic tensor of the functional API (what ``Input`` returns)."""
    from unrolled.layers.symbolic import KerasTensor
    return isinstance(x, KerasTensor)


def standardize_dtype(dtype):
    """A dtype (None: ``floatx()``; a string, NumPy dtype or type) as Keras's string name."""
    if dtype is None:
        return config.floatx()
    if dtype in (int, "int"):
        return "int64"
    if dtype in (float, "float"):
        return "float32"
    if dtype in (bool, "bool"):
        return "bool"
    try:
        return np.dtype(dtype).name
    except TypeError as e:
        raise ValueError(f"Invalid dtype: {dtype}") from e


def is_float_dtype(dtype):
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype):
    return standardize_dtype(dtype).startswith(("int", "uint"))


def __getattr__(name):
    raise AttributeError(
        f"module 'unrolled.backend' has no attribute '{name}'. unrolled.backend offers "
        "clear_session, get_uid, floatx, set_floatx, epsilon, set_epsilon, image_data_format, "
        "set_image_data_format, backend, is_keras_tensor, standardize_dtype, is_float_dtype, "
        "is_int_dtype (Keras 2's tensor functions such as K.sum are keras.ops in Keras 3).")
