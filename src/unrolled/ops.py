"""``unrolled.ops``: the part of ``keras.ops`` that custom layers use, on NumPy arrays.

A layer written the Keras way (``call`` with ``keras.ops``) runs here with ``import unrolled
as keras`` and ``keras.ops``: every function takes arrays, Python numbers and lists, and the
layers' weights (``Variable``), and returns NumPy arrays (``shape`` returns a tuple,
``split`` a list). Names, arguments and defaults are Keras 3's (``softmax(x, axis=-1)``,
``split(x, indices_or_sections, axis=0)``, ``take(x, indices, axis=None)``, ...).

Dtypes follow Keras's rules where NumPy's differ: Python floats and lists of them become
float32 (Keras's ``floatx``), Python ints int32; ``exp``, ``log``, ``sqrt``, ``tanh``,
``sigmoid``, ``softmax``, ``mean``, ``divide`` and ``norm`` of integers give float32; an
integer array meeting a float array takes the float's dtype; ``sum`` and ``cumsum`` keep
the integer width (``bool`` counts as int32); ``argmax`` gives int32. A name of
``keras.ops`` that is not here raises an AttributeError that says so.
"""
import numpy as np

from .config import floatx

_INT = "int32"


def _keras_dtype(value):
    """The dtype Keras gives a Python number or a (nested) list of them."""
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        return arr.astype(floatx())
    if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:
        return arr.astype(_INT)
    return arr


def _arr(x):
    """``x`` as an array: arrays and Variables as they are, Python values as Keras types them."""
    if isinstance(x, np.ndarray):
        return x
    value = getattr(x, "value", None)                 # an unrolled Variable
    if isinstance(value, np.ndarray):
        return value
    if isinstance(x, np.generic):
        return np.asarray(x)
    return _keras_dtype(x)


def _is_python(x):
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _float(x):
    """``x`` in a float dtype: integers and booleans become float32, as Keras's unary math."""
    x = _arr(x)
    return x if x.dtype.kind == "f" else x.astype(floatx())


def _pair(x1, x2):
    """Two operands promoted as Keras promotes them: a Python number takes the array's
    dtype (when it fits its kind), an integer array meeting a float array the float's."""
    if _is_python(x1) and not _is_python(x2):
        a2 = _arr(x2)
        return _scalar_like(x1, a2), a2
    if _is_python(x2) and not _is_python(x1):
        a1 = _arr(x1)
        return a1, _scalar_like(x2, a1)
    a1, a2 = _arr(x1), _arr(x2)
    k1, k2 = a1.dtype.kind, a2.dtype.kind
    if k1 == "f" and k2 in "biu":
        a2 = a2.astype(a1.dtype)
    elif k2 == "f" and k1 in "biu":
        a1 = a1.astype(a2.dtype)
    return a1, a2


def _scalar_like(value, arr):
    if isinstance(value, float) and arr.dtype.kind != "f":
        return np.asarray(value, floatx())
    return np.asarray(value, arr.dtype) if arr.dtype.kind != "b" else np.asarray(value)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


# --- conversion and creation --------------------------------------------------------------
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """``x`` as a NumPy array (of ``dtype`` when given). ``sparse``/``ragged`` tensors do not
    exist here: True raises."""
    if sparse or ragged:
        raise ValueError(f"convert_to_tensor: {'sparse' if sparse else 'ragged'}=True is not "
                         "supported; unrolled computes on dense NumPy arrays.")
    x = _arr(x)
    return x if dtype is None else x.astype(_dtype(dtype), copy=False)


def convert_to_numpy(x):
    """A NumPy copy of ``x``."""
    return np.array(_arr(x))


def _dtype(dtype):
    name = getattr(dtype, "name", dtype)
    return np.dtype("float32" if name == "float" else "int32" if name == "int" else name)


def cast(x, dtype):
    return _arr(x).astype(_dtype(dtype))


def shape(x):
    """The shape as a tuple of ints."""
    return tuple(int(d) for d in np.shape(_arr(x)))


def zeros(shape, dtype=None):
    return np.zeros(shape, _dtype(dtype or floatx()))


def ones(shape, dtype=None):
    return np.ones(shape, _dtype(dtype or floatx()))


def zeros_like(x, dtype=None):
    x = _arr(x)
    return np.zeros(x.shape, x.dtype if dtype is None else _dtype(dtype))


def ones_like(x, dtype=None):
    x = _arr(x)
    return np.ones(x.shape, x.dtype if dtype is None else _dtype(dtype))


# --- shapes ---------------------------------------------------------------------------------
def reshape(x, newshape):
    return np.reshape(_arr(x), newshape)


def transpose(x, axes=None):
    return np.transpose(_arr(x), axes)


def expand_dims(x, axis):
    return np.expand_dims(_arr(x), _axis(axis))


def squeeze(x, axis=None):
    return np.squeeze(_arr(x), _axis(axis))


def concatenate(xs, axis=0):
    arrays = [_arr(x) for x in xs]
    return np.concatenate(arrays, axis=axis)


def stack(x, axis=0):
    return np.stack([_arr(a) for a in x], axis=axis)


def split(x, indices_or_sections, axis=0):
    """A list of pieces, as ``np.split`` (equal sections must divide the axis)."""
    return list(np.split(_arr(x), indices_or_sections, axis=axis))


def take(x, indices, axis=None):
    """Elements at ``indices`` along ``axis`` (of the flattened array when None); negative
    indices count from the end."""
    return np.take(_arr(x), _arr(indices), axis=axis)


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` holds, else ``x2``; with neither, the indices where it holds
    (``nonzero``, a tuple of int arrays)."""
    if (x1 is None) != (x2 is None):
        raise ValueError("`x1` and `x2` either both should be `None` or both should have "
                         "non-None value.")
    condition = _arr(condition).astype(bool)
    if x1 is None:
        return tuple(i.astype(_INT) for i in np.nonzero(condition))
    a1, a2 = _pair(x1, x2)
    return np.where(condition, a1, a2)


# --- products -------------------------------------------------------------------------------
def matmul(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.matmul(a1, a2)


def dot(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.dot(a1, a2)


def einsum(subscripts, *operands, **kwargs):
    """``np.einsum``; its keyword arguments (``optimize``) pass through."""
    arrays = [_arr(a) for a in operands]
    kinds = {a.dtype.kind for a in arrays}
    if "f" in kinds and kinds - {"f"}:              # ints among floats: the float dtype
        ftype = np.result_type(*[a for a in arrays if a.dtype.kind == "f"])
        arrays = [a.astype(ftype) if a.dtype.kind != "f" else a for a in arrays]
    return np.einsum(subscripts, *arrays, **kwargs)


# --- element-wise -----------------------------------------------------------------------------
def add(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.add(a1, a2)


def subtract(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.subtract(a1, a2)


def multiply(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.multiply(a1, a2)


def divide(x1, x2):
    """True division; integers give float32."""
    a1, a2 = _pair(x1, x2)
    out = np.true_divide(a1, a2)
    return out if a1.dtype.kind == "f" or a2.dtype.kind == "f" else out.astype(floatx())


def maximum(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.maximum(a1, a2)


def minimum(x1, x2):
    a1, a2 = _pair(x1, x2)
    return np.minimum(a1, a2)


def clip(x, x_min, x_max):
    x = _arr(x)
    if x.dtype == bool:
        x = x.astype(_INT)
    return np.clip(x, x_min, x_max).astype(x.dtype, copy=False)


def exp(x):
    return np.exp(_float(x))


def log(x):
    return np.log(_float(x))


def sqrt(x):
    return np.sqrt(_float(x))


def tanh(x):
    return np.tanh(_float(x))


def square(x):
    x = _arr(x)
    return np.square(x.astype(_INT) if x.dtype == bool else x)


def abs(x):
    return np.abs(_arr(x))


absolute = abs


def sigmoid(x):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""
    x = _float(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def relu(x):
    x = _float(x)
    return np.maximum(x, np.zeros((), x.dtype))


def softmax(x, axis=-1):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (an int or a tuple of ints)."""
    x = _float(x)
    axis = _axis(axis)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# --- reductions -------------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):
    x = _arr(x)
    dtype = _INT if x.dtype == bool else x.dtype
    return np.sum(x, axis=_axis(axis), keepdims=keepdims, dtype=dtype)


def mean(x, axis=None, keepdims=False):
    x = _float(x)
    return np.mean(x, axis=_axis(axis), keepdims=keepdims, dtype=x.dtype)


def max(x, axis=None, keepdims=False, initial=None):
    kw = {} if initial is None else {"initial": initial}
    return np.max(_arr(x), axis=_axis(axis), keepdims=keepdims, **kw)


def min(x, axis=None, keepdims=False, initial=None):
    kw = {} if initial is None else {"initial": initial}
    return np.min(_arr(x), axis=_axis(axis), keepdims=keepdims, **kw)


def any(x, axis=None, keepdims=False):
    return np.any(_arr(x), axis=_axis(axis), keepdims=keepdims)


def all(x, axis=None, keepdims=False):
    return np.all(_arr(x), axis=_axis(axis), keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return np.argmax(_arr(x), axis=axis, keepdims=keepdims).astype(_INT)


def cumsum(x, axis=None, dtype=None):
    x = _arr(x)
    if dtype is None:
        dtype = _INT if x.dtype == bool else x.dtype
    return np.cumsum(x, axis=axis, dtype=_dtype(dtype))


def norm(x, ord=None, axis=None, keepdims=False):
    """A vector norm (``axis`` an int, or None on a 1-D array: the 2-norm by default) or a
    matrix norm (``axis`` two ints, or None on a 2-D array: Frobenius by default), as
    ``np.linalg.norm``; integers give float32. Other axes raise, as in Keras."""
    x = _float(x)
    axes = tuple(range(x.ndim)) if axis is None else (
        (axis,) if isinstance(axis, int) else tuple(axis))
    if len(axes) not in (1, 2):
        raise ValueError(f"Invalid axis values. Received: axis={axes}")
    return np.asarray(np.linalg.norm(x, ord=ord, axis=_axis(axis), keepdims=keepdims),
                      x.dtype)


def _returns_arrays(fn):
    """``fn`` whose NumPy scalars (a full reduction, a 1-D dot) come back as 0-d arrays, as
    Keras's ops return tensors."""
    def op(*args, **kwargs):
        out = fn(*args, **kwargs)
        return np.asarray(out) if isinstance(out, np.generic) else out
    op.__name__, op.__qualname__, op.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    op.__module__ = fn.__module__
    return op


OFFERED = sorted(name for name, value in list(globals().items())
                 if callable(value) and not name.startswith("_") and name not in
                 ("floatx",) and getattr(value, "__module__", None) == __name__)


def __getattr__(name):
    raise AttributeError(
        f"unrolled.ops has no {name!r}: it offers the part of keras.ops that custom layers "
        f"use, on NumPy arrays ({', '.join(OFFERED)}). Write the operation with NumPy on the "
        "arrays, or with these.")


for _name in OFFERED:
    if _name not in ("shape", "split", "where"):
        globals()[_name] = _returns_arrays(globals()[_name])
