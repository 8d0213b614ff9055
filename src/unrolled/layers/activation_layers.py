"""Activation layers (Keras's ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``, ``Softmax``), each
forward with its backward beside it.

All are elementwise (``Softmax``: along its axes) and keep the shape; all pass a mask on
(``supports_masking``, as Keras). ``Softmax`` also uses it: masked logits become -1e9 before
the softmax, and masked outputs 0 after it, as Keras 3's layer does.
"""
import warnings

import numpy as np

from .. import activations, initializers
from .base import Layer

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]


def _number(value, what, cls, allow_none=False):
    """A float option >= 0, refused (ValueError, Keras's wording) when None or negative."""
    if value is None and allow_none:
        return None
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or value < 0:
        raise ValueError(f"{what} of a {cls} layer cannot be None or a negative value. "
                         f"Received: {what}={value!r}")
    return value


class ReLU(Layer):
    """``y = min(x, max_value)`` for ``x > threshold``, else ``negative_slope (x - threshold)``
    (``keras.activations.relu`` with these arguments)."""

    supports_masking = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and (isinstance(max_value, bool) or max_value < 0):
            raise ValueError("max_value of a ReLU layer cannot be a negative value. "
                             f"Received: max_value={max_value!r}")
        self.max_value = max_value
        self.negative_slope = _number(negative_slope, "negative_slope", "ReLU")
        self.threshold = _number(threshold, "threshold", "ReLU")

    def _args(self):
        return {"negative_slope": self.negative_slope, "max_value": self.max_value,
                "threshold": self.threshold}

    def forward(self, x, *, training=False, mask=None):
        return activations.relu(x, **self._args()), x

    def backward(self, x, dy):
        # y' = 1 on the identity branch (below max_value), negative_slope below threshold, else 0
        return [activations.relu.backward(x, None, dy, **self._args())], []

    def get_config(self):
        return {**super().get_config(), **self._args()}


class _AliasedOptions(tuple):
    """A layer's config options, where a file may also hold an older name of one (``alias``):
    the readers (saving/serialize.py) accept it and the constructor maps it, the writers write the
    current names only (iterating the tuple)."""

    def __new__(cls, options, aliases):
        self = super().__new__(cls, options)
        self.aliases = tuple(aliases)
        return self

    def __contains__(self, key):
        return tuple.__contains__(self, key) or key in self.aliases


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, else ``negative_slope * x``. Keras 2's ``alpha`` (its name of
    ``negative_slope``, in files tf.keras wrote) is accepted, with Keras's warning."""

    supports_masking = True

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.",
                          stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is None or isinstance(negative_slope, bool) or negative_slope < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or "
                             f"negative value. Expected a float. Received: "
                             f"negative_slope={negative_slope!r}")
        self.negative_slope = negative_slope

    def forward(self, x, *, training=False, mask=None):
        return activations.leaky_relu(x, negative_slope=self.negative_slope), x

    def backward(self, x, dy):
        # y' = 1 for x > 0, negative_slope else
        return [activations.leaky_relu.backward(x, None, dy,
                                                negative_slope=self.negative_slope)], []

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """``y = x`` for ``x > 0``, else ``alpha (e^x - 1)``.

    Keras 3's ELU leaves ``alpha`` out of its config (a Keras file of ``ELU(alpha=0.5)``
    reloads, in Keras and here, with alpha 1.0); unrolled writes it, and Keras 3 reads it."""

    supports_masking = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)):
            raise ValueError(f"ELU: alpha must be a number; received alpha={alpha!r}.")
        self.alpha = alpha

    def forward(self, x, *, training=False, mask=None):
        y = activations.elu(x, alpha=self.alpha)
        return y, (x, y)

    def backward(self, cache, dy):
        x, y = cache                    # y = alpha (e^x - 1)  =>  y' = y + alpha  (x <= 0)
        return [activations.elu.backward(x, y, dy, alpha=self.alpha)], []

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """``y = x`` for ``x > 0``, else ``alpha * x``, with ``alpha`` a learned weight shaped
    like the input without its batch axis, size 1 along ``shared_axes`` (broadcast there).

    Weight: ``alpha``; ``alpha_regularizer``/``alpha_constraint`` apply to it."""

    supports_masking = True
    weight_rules = ("alpha",)

    def __init__(self, alpha_initializer="Zeros", shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            for a in axes:
                if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1:
                    raise ValueError("PReLU: shared_axes are axes of the input counted from 1 "
                                     "(the batch axis is 0 and is always shared); received "
                                     f"shared_axes={shared_axes!r}.")
            self.shared_axes = [int(a) for a in axes]
        self._param_shape = None

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            if a >= len(input_shape):
                raise ValueError(f"PReLU: shared axis {a} is out of range for an input of "
                                 f"rank {len(input_shape)} (shape {tuple(input_shape)}).")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU: the input's axes must be known, except the batch axis and "
                             f"shared axes; received shape {tuple(input_shape)}.")
        self._param_shape = (len(input_shape),) + tuple(shape)
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer)
        self.built = True

    def _check_input_shape(self, shape, index=0):
        super()._check_input_shape(shape, index)
        if self._param_shape is None:
            return
        ndim, pshape = self._param_shape[0], self._param_shape[1:]
        shape = tuple(shape)
        if len(shape) != ndim or any(p != 1 and d is not None and d != p
                                     for p, d in zip(pshape, shape[1:])):
            raise ValueError(f"Input {index} of layer '{self.name}' is incompatible with the "
                             f"layer: its alpha has shape {pshape} (for inputs of rank {ndim}), "
                             f"received input with shape {shape}.")

    def forward(self, x, *, training=False, mask=None):
        a = self.alpha.value
        neg = np.minimum(x, 0)                 # -relu(-x)
        return np.maximum(x, 0) + a * neg, (x, neg)

    def backward(self, cache, dy):
        x, neg = cache
        a = self.alpha.value
        # y = relu(x) + alpha min(x, 0)  =>  dx = dy (x > 0 ? 1 : alpha),
        #                                     dalpha = sum over broadcast axes of dy min(x, 0)
        dx = dy * np.where(x > 0, x.dtype.type(1), a)
        axes = (0,) + tuple(i + 1 for i, p in enumerate(a.shape) if p == 1 and x.shape[i + 1] != 1)
        dalpha = (dy * neg).sum(axis=axes, keepdims=True).reshape(a.shape)
        return [dx], [dalpha]

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "shared_axes": self.shared_axes}


def _mask_for(x, mask):
    """Keras's Softmax mask check: broadcastable to the input from its last axis, never of
    more axes; a non-boolean mask is ``mask > 0.5``."""
    mask = np.asarray(mask)
    if mask.ndim > x.ndim or any(m != 1 and m != d for m, d in zip(mask.shape[::-1],
                                                                     x.shape[::-1])):
        raise ValueError("The `mask` must be broadcastable to `inputs`. Each mask dimension "
                         "must be 1 or match the corresponding input dimension, and the mask "
                         f"must not have more dimensions. Received: inputs.shape={x.shape}, "
                         f"mask.shape={mask.shape}")
    return mask if mask.dtype == bool else mask > 0.5


class Softmax(Layer):
    """``y_i = e^(x_i) / sum_j e^(x_j)`` along ``axis`` (an int, or a list of axes taken as
    one). With a mask: ``x`` is -1e9 where the mask is off, and ``y`` 0 there."""

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        ok = lambda a: isinstance(a, (int, np.integer)) and not isinstance(a, bool)  # noqa: E731
        if not (ok(axis) or (isinstance(axis, (list, tuple)) and axis and all(map(ok, axis)))):
            raise ValueError(f"Softmax: axis must be an integer or a list of integers; "
                             f"received axis={axis!r}.")
        self.axis = [int(a) for a in axis] if isinstance(axis, (list, tuple)) else int(axis)

    def forward(self, x, *, training=False, mask=None):
        if mask is not None:
            mask = _mask_for(x, mask)
            x = np.where(mask, x, x.dtype.type(-1e9))
        y = activations.softmax(x, axis=self.axis)
        if mask is not None:
            y = np.where(mask, y, x.dtype.type(0))
        return y, (y, mask)

    def backward(self, cache, dy):
        y, mask = cache
        if mask is not None:
            dy = np.where(mask, dy, dy.dtype.type(0))       # y = where(mask, s, 0)
        # dx_i = y_i (dy_i - sum_j dy_j y_j); a masked logit was replaced: dx = 0 there
        dx = activations.softmax.backward(None, y, dy, axis=self.axis)
        if mask is not None:
            dx = np.where(mask, dx, dx.dtype.type(0))
        return [dx], []

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# class name: (unrolled class, Keras snake-case name, options in the config): saving/serialize.py
# reads and writes these layers through this table.
KERAS_LAYERS = {
    "ReLU": (ReLU, "re_lu", ("max_value", "negative_slope", "threshold")),
    "LeakyReLU": (LeakyReLU, "leaky_re_lu", _AliasedOptions(("negative_slope",), ("alpha",))),
    "PReLU": (PReLU, "p_re_lu", ("alpha_initializer", "shared_axes")),
    "ELU": (ELU, "elu", ("alpha",)),
    "Softmax": (Softmax, "softmax", ("axis",)),
}
