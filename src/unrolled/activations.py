"""Activation functions, each with the derivative the backward pass needs.

Every activation is a pair: ``f(x)`` and ``f.backward(x, y, dy)``, where ``y = f(x)`` was
computed in the forward pass, and the result is ``dL/dx = f'(x) * dy``. Most derivatives
are cheapest from the output (``tanh' = 1 - y**2``, ``sigmoid' = y (1 - y)``), so the
cells keep ``y`` and never recompute it.

Names follow ``keras.activations``: ``get("tanh")``, ``get(None)`` is ``linear``; one is
unrolled's own: ``hard_sigmoid_keras2``, ``clip(0.2 x + 0.5, 0, 1)``, which Keras 2 named
``hard_sigmoid`` (Keras 3's ``hard_sigmoid`` is ``clip(x / 6 + 0.5, 0, 1)``). Three of
Keras's names are refused by ``get`` (``_REFUSED`` says why): ``glu`` and ``threshold``
exist as functions to call directly, ``sparsemax`` not at all.

Called directly, an activation takes Keras's arguments (``relu(x, negative_slope=0.1,
max_value=6.0)``, ``gelu(x, approximate=True)``, ``softmax(x, axis=1)``), and its
``backward`` the same ones. A layer's ``activation`` is a name, so it uses the defaults; the
layers ``ReLU``, ``LeakyReLU``, ``ELU`` and ``Softmax`` hold the arguments.

This module holds the ``Activation`` objects, the name table and ``get``; the formulas that
take arguments or need more than a line (relu's branches, softmax, gelu's erf, ...) are in
``activation_formulas``, which needs NumPy alone. The ones built on the fast tanh
(``sigmoid`` and those using it) stay here, beside ``_tanh``.
"""
import numpy as np

from . import activation_formulas as formulas


_REQUIRED = object()          # a parameter without default (``threshold``'s)


class Activation:
    """A named elementwise function ``fn`` with its derivative ``backward``.

    ``params``: the keyword arguments Keras's function of that name takes, with Keras's
    defaults, in Keras's positional order (``relu``: negative_slope, max_value, threshold).
    Called by name (a layer's ``activation="relu"``) an activation uses the defaults; called
    directly it takes them, ``relu(x, negative_slope=0.1)``, and ``backward`` takes the same
    ones, ``relu.backward(x, y, dy, negative_slope=0.1)``.
    """

    def __init__(self, name, fn, backward, params=None):
        self.__name__ = name
        self.name = name
        self._fn = fn
        self._backward = backward
        self.params = dict(params or {})
        self._required = _REQUIRED in self.params.values()

    def _bind(self, args, kwargs):
        if not args and not kwargs and _REQUIRED not in self.params.values():
            return self.params
        names = list(self.params)
        if len(args) > len(names):
            raise TypeError(f"{self.name}() takes {len(names)} argument(s) after x "
                            f"({', '.join(names) or 'none'}); received {len(args)}.")
        bound = dict(self.params)
        for k, v in zip(names, args):
            bound[k] = v
        for k, v in kwargs.items():
            if k not in bound:
                raise TypeError(f"{self.name}() got an unexpected keyword argument {k!r}; "
                                f"it takes: {', '.join(names) or 'none'}.")
            if k in names[:len(args)]:
                raise TypeError(f"{self.name}() got multiple values for argument {k!r}.")
            bound[k] = v
        missing = [k for k, v in bound.items() if v is _REQUIRED]
        if missing:
            raise TypeError(f"{self.name}() missing required argument(s): {', '.join(missing)}.")
        return bound

    def __call__(self, x, *args, **kwargs):
        if not (args or kwargs or self._required):      # a layer's activation: the defaults
            if not (type(x) is np.ndarray and x.dtype.kind == "f"):
                x = _as_float(x)
            return self._fn(x, **self.params) if self.params else self._fn(x)
        return self._fn(_as_float(x), **self._bind(args, kwargs))

    def backward(self, x, y, dy, *args, **kwargs):
        """dL/dx given dL/dy, the input x and the output y = f(x) (same arguments as the call)."""
        if not (args or kwargs or self._required) and (
                x is None or (type(x) is np.ndarray and x.dtype.kind == "f")):
            return (self._backward(x, y, dy, **self.params) if self.params
                    else self._backward(x, y, dy))
        return self._backward(x if x is None else _as_float(x), y, dy, **self._bind(args, kwargs))

    def __repr__(self):
        return f"<activation {self.name}>"

    def __reduce__(self):
        # Pickled by name (a model sent to a worker process), never by its functions.
        return (_named, (self.name,))


def _as_float(x):
    """Layers pass float arrays; a direct call may pass a list or ints (Keras: float32)."""
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype("float32")


_fast_kernels = None          # ``unrolled.fast.kernels``, imported by the first ``_tanh``


def _tanh(x, out=None):
    """``np.tanh``; for float32 with the fast path on, its vectorized ``tanh`` (max error
    2.5e-7, ``unrolled.fast.kernels``). The fast package is optional and sits above this
    module, so it is imported here, at the first call, not when ``unrolled`` is."""
    global _fast_kernels
    if _fast_kernels is None:
        from .fast import kernels as _fast_kernels
    return _fast_kernels.tanh(x, out)


def _sigmoid(x):
    # 1 / (1 + e^-x) = (1 + tanh(x/2)) / 2: one vectorized tanh, no overflow for any x.
    y = _tanh(x * x.dtype.type(0.5))
    y *= 0.5
    y += 0.5
    return y


linear = Activation("linear", lambda x: x, lambda x, y, dy: dy)
tanh = Activation("tanh", _tanh, lambda x, y, dy: dy * (1 - y * y))
sigmoid = Activation("sigmoid", _sigmoid, lambda x, y, dy: dy * y * (1 - y))
relu = Activation("relu", formulas.relu, formulas.relu_backward,
                  {"negative_slope": 0.0, "max_value": None, "threshold": 0.0})
hard_sigmoid = Activation(
    "hard_sigmoid", formulas.hard_sigmoid,
    lambda x, y, dy: dy * ((x > -3) & (x < 3)) / x.dtype.type(6)
)
# What Keras 2 (up to 2.15, and tf.keras 2) called "hard_sigmoid": slope 0.2 where Keras 3's
# is 1/6. The loaders give it to layers of files that Keras 2 wrote (saving/serialize.py); it is
# also the name such layers report in get_config(), so a copy built from it computes the same.
hard_sigmoid_keras2 = Activation(
    "hard_sigmoid_keras2", formulas.hard_sigmoid_keras2,
    lambda x, y, dy: dy * ((x > -2.5) & (x < 2.5)) * x.dtype.type(0.2)
)
softmax = Activation("softmax", formulas.softmax, formulas.softmax_backward, {"axis": -1})
log_softmax = Activation("log_softmax", formulas.log_softmax, formulas.log_softmax_backward,
                         {"axis": -1})


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _softplus(x):
    return np.logaddexp(x, 0).astype(x.dtype, copy=False)      # log(1 + e^x), stable


def _swish(x):
    return x * _sigmoid(x)


elu = Activation("elu", formulas.elu,              # y = alpha (e^x - 1)  =>  y' = y + alpha
                 lambda x, y, dy, alpha=1.0: dy * np.where(x > 0, 1, y + x.dtype.type(alpha)),
                 {"alpha": 1.0})
selu = Activation(
    "selu", lambda x: (_SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))).astype(x.dtype),
    lambda x, y, dy: dy * np.where(x > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA).astype(x.dtype))
softplus = Activation("softplus", _softplus, lambda x, y, dy: dy * _sigmoid(x))
softsign = Activation("softsign", lambda x: x / (1 + np.abs(x)),
                      lambda x, y, dy: dy / np.square(1 + np.abs(x)))
swish = Activation("swish", _swish,
                   lambda x, y, dy: dy * (lambda s: s + x * s * (1 - s))(_sigmoid(x)))
exponential = Activation("exponential", np.exp, lambda x, y, dy: dy * y)
relu6 = Activation("relu6", lambda x: np.clip(x, 0, 6), lambda x, y, dy: dy * ((x > 0) & (x < 6)))


# --- the rest of keras.activations ----------------------------------------------------------


def _mish(x):
    return x * np.tanh(_softplus(x))         # x tanh(softplus(x))


def _mish_backward(x, y, dy):
    t = np.tanh(_softplus(x))                 # softplus' = sigmoid
    return dy * (t + x * (1 - t * t) * _sigmoid(x))


def _f(x, c):
    return x.dtype.type(c)


leaky_relu = Activation("leaky_relu",
                        lambda x, negative_slope=0.2: np.where(x > 0, x, x * _f(x, negative_slope)),
                        lambda x, y, dy, negative_slope=0.2:
                            dy * np.where(x > 0, _f(x, 1), _f(x, negative_slope)),
                        {"negative_slope": 0.2})
gelu = Activation("gelu", formulas.gelu, formulas.gelu_backward, {"approximate": False})
mish = Activation("mish", _mish, _mish_backward)
hard_silu = Activation("hard_silu", formulas.hard_silu, formulas.hard_silu_backward)
celu = Activation("celu", formulas.celu,           # y' = e^(x / alpha) for x < 0
                  lambda x, y, dy, alpha=1.0:
                      dy * np.where(x > 0, _f(x, 1), np.exp(np.minimum(x, 0) / _f(x, alpha))),
                  {"alpha": 1.0})
hard_tanh = Activation("hard_tanh", lambda x: np.clip(x, _f(x, -1), _f(x, 1)),
                       lambda x, y, dy: dy * ((x > -1) & (x < 1)))
hard_shrink = Activation("hard_shrink",
                         lambda x, threshold=0.5:
                             np.where(np.abs(x) > _f(x, threshold), x, _f(x, 0)),
                         lambda x, y, dy, threshold=0.5: dy * (np.abs(x) > _f(x, threshold)),
                         {"threshold": 0.5})
soft_shrink = Activation("soft_shrink", formulas.soft_shrink,
                         lambda x, y, dy, threshold=0.5: dy * (np.abs(x) > _f(x, threshold)),
                         {"threshold": 0.5})
log_sigmoid = Activation("log_sigmoid", lambda x: -_softplus(-x),       # -log(1 + e^-x)
                         lambda x, y, dy: dy * _sigmoid(-x))
sparse_plus = Activation("sparse_plus", formulas.sparse_plus,
                         lambda x, y, dy: dy * np.where(
                             x <= -1, _f(x, 0), np.where(x < 1, _f(x, 0.5) * (x + 1), _f(x, 1))))
sparse_sigmoid = Activation(     # 0 for x <= -1, (x + 1) / 2 for |x| < 1, 1 for x >= 1
    "sparse_sigmoid",
    lambda x: np.where(x <= -1, _f(x, 0), np.where(x >= 1, _f(x, 1), _f(x, 0.5) * (x + 1))),
    lambda x, y, dy: dy * ((x > -1) & (x < 1)) * _f(x, 0.5))
squareplus = Activation("squareplus", formulas.squareplus,      # y' = (1 + x / sqrt(x^2 + b)) / 2
                        lambda x, y, dy, b=4: dy * (1 + x / np.sqrt(x * x + _f(x, b))) / _f(x, 2),
                        {"b": 4})
tanh_shrink = Activation("tanh_shrink", lambda x: x - np.tanh(x),       # y' = 1 - (1 - tanh^2)
                         lambda x, y, dy: dy * np.square(np.tanh(x)))
# Called with its arguments only (Keras's needs them too), so no name reaches it.
threshold = Activation("threshold",
                       lambda x, threshold, default_value: np.where(x > _f(x, threshold), x,
                                                                    _f(x, default_value)),
                       lambda x, y, dy, threshold, default_value: dy * (x > _f(x, threshold)),
                       {"threshold": _REQUIRED, "default_value": _REQUIRED})


def _glu(x, axis=-1):
    # x = [a, b] halved along axis: a sigmoid(b)
    if x.shape[axis] % 2:
        raise ValueError(f"glu: the size of axis {axis} must be even; received x.shape={x.shape}.")
    a, b = np.split(x, 2, axis=axis)
    return a * _sigmoid(b)


def _glu_backward(x, y, dy, axis=-1):
    a, b = np.split(x, 2, axis=axis)          # da = dy s(b),  db = dy a s(b) (1 - s(b))
    s = _sigmoid(b)
    return np.concatenate([dy * s, dy * a * s * (1 - s)], axis=axis)


# Halves its axis: called directly only (Keras's layers declare the input's shape for it).
glu = Activation("glu", _glu, _glu_backward, {"axis": -1})

# Every name a layer's ``activation`` takes (and a file may hold).
_ALL = {a.name: a for a in (
    linear, tanh, sigmoid, relu, hard_sigmoid, hard_sigmoid_keras2, softmax, log_softmax, elu,
    selu, softplus, softsign, swish, exponential, relu6, leaky_relu, gelu, mish, hard_silu, celu,
    hard_tanh, hard_shrink, soft_shrink, log_sigmoid, sparse_plus, sparse_sigmoid, squareplus,
    tanh_shrink)}
_ALL["silu"] = swish
_ALL["hard_swish"] = hard_silu
silu, hard_swish = swish, hard_silu
# keras.activations names unrolled's layers do not take, and why.
_REFUSED = {
    "glu": "it halves the last axis, and Keras's layers declare the input's shape for it "
           "(a model built on it breaks in Keras); call unrolled.activations.glu(x) directly",
    "threshold": "it needs arguments (threshold, default_value); Keras's fails when called by "
                 "name; call unrolled.activations.threshold(x, threshold, default_value) directly",
    "sparsemax": "Keras 3.15's sparsemax does not sum to 1 when more than one entry is kept "
                 "(its threshold adds up the cumulative sums), so there is no reference to match",
}


def _named(name):
    """The activation of that name, the ones ``get`` refuses (glu, threshold) included."""
    return _ALL.get(name) or globals()[name]


def names():
    """The activation names layers take and files may hold."""
    return tuple(_ALL)


def get(identifier):
    """An activation from a Keras name, None (linear) or an Activation."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        if identifier in _REFUSED:
            raise ValueError(f"Activation {identifier!r} is not supported as a name: "
                             f"{_REFUSED[identifier]}.")
        if identifier not in _ALL:
            raise ValueError(
                f"Unknown activation {identifier!r}. Expected one of {sorted(_ALL)}, or None "
                "for linear."
            )
        return _ALL[identifier]
    raise TypeError(
        f"Could not interpret activation {identifier!r}: pass a name such as 'tanh', None, "
        "or an unrolled.activations function. Arbitrary callables have no backward pass."
    )


def serialize(activation):
    return activation.name
