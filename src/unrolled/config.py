"""Global settings: the default float type, as ``keras.config`` has it.

``floatx()`` is the dtype that new layers, weights and outputs use unless a layer
is given ``dtype=`` of its own. Keras's default is float32; float64 is there for
gradient checks and for people who want to see the math without rounding.
"""
import numpy as np

_FLOATX = "float32"
_EPSILON = 1e-7


def floatx():
    """The default float type, a string: ``"float32"`` unless changed."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type for layers created from now on."""
    global _FLOATX
    if value not in ("float16", "float32", "float64"):
        raise ValueError(
            f"Unknown floatx {value!r}: expected one of 'float16', 'float32', 'float64'."
        )
    _FLOATX = str(value)


def epsilon():
    """The fuzz factor Keras uses in losses and metrics (1e-7)."""
    return _EPSILON


def set_epsilon(value):
    """Set the fuzz factor: read, as Keras reads ``backend.epsilon()``, by the losses,
    the weight constraints, ``AUC`` (when built), BatchNormalization's masked moments and
    ``Dot(normalize=True)``."""
    global _EPSILON
    _EPSILON = float(value)


def standardize_dtype(dtype):
    """A dtype argument (None, a string or a NumPy dtype) as a NumPy float dtype."""
    if dtype is None:
        return np.dtype(_FLOATX)
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"Invalid dtype {dtype!r}: expected 'float32' or 'float64'.") from e
    if dt.kind != "f":
        raise TypeError(f"Invalid dtype {dtype!r}: layers compute in floats, e.g. 'float32'.")
    return dt
