"""Activation functions, each with the derivative the backward pass needs.

Every activation is a pair: ``f(x)`` and ``f.backward(x, y, dy)``, where ``y = f(x)`` was
computed in the forward pass, and the result is ``dL/dx = f'(x) * dy``. Most derivatives
are cheapest from the output (``tanh' = 1 - y**2``, ``sigmoid' = y (1 - y)``), so the
cells keep ``y`` and never recompute it.

Names follow ``keras.activations``: ``get("tanh")``, ``get(None)`` is ``linear``; one is
unrolled's own: ``hard_sigmoid_keras2``, ``clip(0.2 x + 0.5, 0, 1)``, which Keras 2 named
``hard_sigmoid`` (Keras 3's ``hard_sigmoid`` is ``clip(x / 6 + 0.5, 0, 1)``).
"""
import numpy as np

from . import kernels


class Activation:
    """A named elementwise function ``fn`` with its derivative ``grad``."""

    def __init__(self, name, fn, backward):
        self.__name__ = name
        self.name = name
        self._fn = fn
        self._backward = backward

    def __call__(self, x):
        return self._fn(x)

    def backward(self, x, y, dy):
        """dL/dx given dL/dy, the input x and the output y = f(x)."""
        return self._backward(x, y, dy)

    def __repr__(self):
        return f"<activation {self.name}>"

    def __reduce__(self):
        # Pickled by name (a model sent to a worker process), never by its functions.
        return (get, (self.name,))


def _sigmoid(x):
    # 1 / (1 + e^-x) = (1 + tanh(x/2)) / 2: one vectorized tanh, no overflow for any x.
    y = kernels.tanh(x * x.dtype.type(0.5))
    y *= 0.5
    y += 0.5
    return y


def _hard_sigmoid(x):
    # Keras 3: clip(x / 6 + 1/2, 0, 1).
    y = x / x.dtype.type(6) + x.dtype.type(0.5)
    return np.clip(y, 0, 1).astype(x.dtype, copy=False)


def _hard_sigmoid_keras2(x):
    # Keras 2 and tf.keras 2: clip(0.2 x + 1/2, 0, 1), the product and sum in x's dtype.
    y = x * x.dtype.type(0.2) + x.dtype.type(0.5)
    return np.clip(y, 0, 1).astype(x.dtype, copy=False)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(x, y, dy):
    # dL/dx_i = y_i (dy_i - sum_j dy_j y_j)
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


linear = Activation("linear", lambda x: x, lambda x, y, dy: dy)
tanh = Activation("tanh", kernels.tanh, lambda x, y, dy: dy * (1 - y * y))
sigmoid = Activation("sigmoid", _sigmoid, lambda x, y, dy: dy * y * (1 - y))
relu = Activation("relu", lambda x: np.maximum(x, 0), lambda x, y, dy: dy * (y > 0))  # y > 0 iff x > 0
hard_sigmoid = Activation(
    "hard_sigmoid", _hard_sigmoid, lambda x, y, dy: dy * ((x > -3) & (x < 3)) / x.dtype.type(6)
)
# What Keras 2 (up to 2.15, and tf.keras 2) called "hard_sigmoid": slope 0.2 where Keras 3's
# is 1/6. The loaders give it to layers of files that Keras 2 wrote (io/serialize.py); it is
# also the name such layers report in get_config(), so a copy built from it computes the same.
hard_sigmoid_keras2 = Activation(
    "hard_sigmoid_keras2", _hard_sigmoid_keras2,
    lambda x, y, dy: dy * ((x > -2.5) & (x < 2.5)) * x.dtype.type(0.2)
)
softmax = Activation("softmax", _softmax, _softmax_backward)

def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _softplus(x):
    return np.logaddexp(x, 0).astype(x.dtype, copy=False)      # log(1 + e^x), stable


def _swish(x):
    return x * _sigmoid(x)


elu = Activation("elu", _elu, lambda x, y, dy: dy * np.where(x > 0, 1, y + 1))
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

_ALL = {a.name: a for a in (linear, tanh, sigmoid, relu, hard_sigmoid, hard_sigmoid_keras2,
                            softmax, elu, selu, softplus, softsign, swish, exponential, relu6)}
_ALL["silu"] = swish


def get(identifier):
    """An activation from a Keras name, None (linear) or an Activation."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
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
