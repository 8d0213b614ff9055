"""Normalization layers: LayerNormalization, GroupNormalization, UnitNormalization here,
BatchNormalization in ``batchnorm.py`` -- each forward with its backward beside it.

They share one computation, the affine normalization of Keras 3 (TensorFlow backend)::

    mean, var = moments of x over the reduced axes   (var biased: divided by n)
    inv = gamma / sqrt(var + epsilon)
    y   = x * inv + (beta - mean * inv)              (= (x - mean) * inv + beta)

and its backward (``affine_backward``): with ``xc = x - mean`` and ``r = 1/sqrt(var+eps)``,
``dbeta = sum dy``, ``dgamma = sum dy xc r``, ``dmean = -sum dy inv``,
``dvar = -r^3/2 sum dy gamma xc``; when the moments come from x itself,
``dx = dy inv + dmean / n + dvar * 2 xc / n`` (``moments_backward``).
"""
import warnings

import numpy as np

from .. import initializers
from .base import Layer


def reduce_to(g, shape):
    """Sum ``g`` over the axes where ``shape`` (same rank) has size 1: the gradient of a
    broadcast operand."""
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def moments(x, axes, weights=None, eps_count=None):
    """``(mean, var)`` over ``axes`` (kept as size-1 axes). With 0/1 ``weights`` (a mask
    broadcast to x) only the weighted entries count, divided by ``count + eps_count``."""
    if weights is None:
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        return mean, (xc * xc).mean(axis=axes, keepdims=True)
    count = weights.sum(axis=axes, keepdims=True) + eps_count
    mean = (x * weights).sum(axis=axes, keepdims=True) / count
    xc = (x - mean) * weights
    return mean, (xc * xc).sum(axis=axes, keepdims=True) / count


def affine_forward(x, mean, var, epsilon, gamma, beta):
    """``y = x * inv + (beta - mean * inv)`` with ``inv = gamma / sqrt(var + epsilon)``, in
    the order Keras's TensorFlow backend computes it. Returns ``y, r, inv``."""
    r = 1.0 / np.sqrt(var + epsilon)
    inv = r if gamma is None else r * gamma
    res = -mean * inv
    if beta is not None:
        res = res + beta
    return x * inv + res, r, inv


def affine_backward(dy, xc, r, inv, gamma, beta_shape):
    """Gradients of ``y = xc * inv + beta`` (``xc = x - mean``): ``dx`` through ``inv``
    alone, and ``dgamma``, ``dbeta`` (None when absent, broadcast shapes), ``dmean``,
    ``dvar`` (shaped as ``r``)."""
    dyxc = dy * xc
    dgamma = None if gamma is None else reduce_to(dyxc * r, gamma.shape)   # inv = r gamma
    dbeta = None if beta_shape is None else reduce_to(dy, beta_shape)     # y = ... + beta
    dr = reduce_to(dyxc if gamma is None else dyxc * gamma, r.shape)
    dvar = -0.5 * r ** 3 * dr                               # r = (var + eps)^(-1/2)
    dmean = -reduce_to(dy * inv, r.shape)                   # y = (x - mean) inv + beta
    return dy * inv, dgamma, dbeta, dmean, dvar


def moments_backward(dx, xc, dmean, dvar, count, weights=None, axes=None):
    """Add to ``dx`` the paths through ``mean`` and ``var`` of ``moments``:
    mean = sum(w x)/c  =>  dx += w dmean / c;  var = sum(w xc^2)/c  =>  dx += 2 w xc dvar / c,
    and, with weights (where sum(w xc) is not exactly 0), var's own path through mean
    (``axes``: the reduced ones)."""
    if weights is None:         # TensorFlow's moments stop the gradient of var through mean
        return dx + dmean / count + dvar * (2.0 / count) * xc
    wxc = weights * xc                                      # xc here is x - mean, unmasked
    dmean = dmean - 2.0 * dvar * wxc.sum(axis=axes, keepdims=True) / count
    return dx + weights * dmean / count + dvar * 2.0 * wxc / count


def check_axes(layer, axes, ndim):
    """Axes in range and distinct (as positions), else a ValueError naming them."""
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool) or not -ndim <= a < ndim:
            raise ValueError(f"Axis {a} is out of bounds for an input of rank {ndim} in layer "
                             f"'{layer.name}'. Received: axis={layer.axis}")
    if len({a % ndim for a in axes}) != len(axes):
        raise ValueError(f"Layer '{layer.name}': axis={layer.axis} names an axis twice.")


def _axis_argument(axis, what):
    if isinstance(axis, (list, tuple)):
        return list(axis)
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise TypeError(f"Expected an int or a list/tuple of ints for the argument 'axis' of "
                    f"{what}, but received: {axis!r}")


class _Affine(Layer):
    """Shared arguments of the layers with ``gamma`` (scale) and ``beta`` (center)."""

    supports_masking = True
    weight_rules = ("beta", "gamma")                 # beta_regularizer, ... (base.py)

    def __init__(self, epsilon, center, scale, beta_initializer, gamma_initializer, rules,
                 kwargs):
        for key, value in rules.items():
            if value is not None:
                kwargs[key] = value
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.gamma = self.beta = None

    def _check_input_shape(self, shape, index=0):
        """After build: the rank and the sizes of the axes the weights span, as built."""
        spec = self.__dict__.get("_spec")
        if spec is not None and (len(shape) != spec[0] or any(
                shape[a] != size for a, size in spec[1].items())):
            raise ValueError(
                f"Input {index} of layer '{self.name}' is incompatible with the layer: "
                f"expected ndim={spec[0]} and sizes {spec[1]} at those axes; received an input "
                f"of shape {tuple(shape)}.")

    def _affine_weights(self, shape, gamma=True, beta=True):
        """gamma, then beta (Keras's order)."""
        if gamma:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer)
        if beta:
            self.beta = self.add_weight("beta", shape, self.beta_initializer)

    def _weight_grads(self, dgamma, dbeta):
        grads = []
        if self.gamma is not None:
            grads.append(dgamma.reshape(self.gamma.shape))
        if self.beta is not None:
            grads.append(dbeta.reshape(self.beta.shape))
        return grads

    def _check_rank(self, input_shape):
        check_axes(self, self.axis if isinstance(self.axis, list) else [self.axis],
                   len(input_shape))

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


class LayerNormalization(_Affine):
    """Normalizes each sample over ``axis`` (an int or a list): ``y = (x - mean) /
    sqrt(var + epsilon) * gamma + beta``, the moments taken over ``axis`` (biased
    variance), ``gamma``/``beta`` of the shape of those axes.

    ``rms_scaling=True`` (deprecated in Keras, kept for its files) computes
    ``y = x / sqrt(var + epsilon) * gamma``: not centered, no ``beta``.
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 rms_scaling=False, **kwargs):
        if rms_scaling:
            warnings.warn("You passed `rms_scaling=True`, which is deprecated. It scales the "
                          "input by the variance, not the root mean square; Keras's "
                          "RMSNormalization is the layer for RMS normalization.", stacklevel=2)
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         {"beta_regularizer": beta_regularizer,
                          "gamma_regularizer": gamma_regularizer,
                          "beta_constraint": beta_constraint,
                          "gamma_constraint": gamma_constraint}, kwargs)
        self.axis = _axis_argument(axis, "LayerNormalization")
        self.rms_scaling = bool(rms_scaling)

    def build(self, input_shape):
        ndim = len(input_shape)
        # Keras sorts the axes as given (negative ones first) and shapes gamma and beta by
        # that order; they are reshaped to the broadcast shape when used.
        axes = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        check_axes(self, axes, ndim)
        shape = tuple(input_shape[a] for a in axes)
        if None in shape:
            raise ValueError(f"Layer '{self.name}': the normalized axes {axes} of the input "
                             f"shape {tuple(input_shape)} must have a defined size.")
        self.axis = axes
        self._spec = (ndim, {a % ndim: input_shape[a] for a in axes})
        self._broadcast = [1] * ndim
        for a in axes:
            self._broadcast[a] = input_shape[a]
        self._affine_weights(shape, gamma=self.scale or self.rms_scaling,
                             beta=self.center and not self.rms_scaling)
        self.built = True

    def _b(self, w):
        if w is None:
            return None
        v = w.value
        return v if v.ndim == len(self._broadcast) else v.reshape(self._broadcast)

    def forward(self, x, *, training=False, mask=None):
        axes = tuple(self.axis)
        gamma, beta = self._b(self.gamma), self._b(self.beta)
        mean, var = moments(x, axes)
        if self.rms_scaling:                        # y = x r gamma, r = 1/sqrt(var + eps)
            r = 1.0 / np.sqrt(var + self.epsilon)
            y = x * r
            inv = r
            if gamma is not None:
                y = y * gamma
                inv = r * gamma
            return y, (x, mean, r, inv, gamma, None)
        y, r, inv = affine_forward(x, mean, var, self.epsilon, gamma, beta)
        return y, (x, mean, r, inv, gamma, None if beta is None else beta.shape)

    def backward(self, cache, dy):
        x, mean, r, inv, gamma, beta_shape = cache
        n = x.size // mean.size
        centre = 0.0 if self.rms_scaling else mean  # the output is (x - centre) inv + beta
        dx, dgamma, dbeta, dmean, dvar = affine_backward(dy, x - centre, r, inv, gamma,
                                                         beta_shape)
        if self.rms_scaling:
            dmean = 0.0                             # the mean enters through var alone
        dx = moments_backward(dx, x - mean, dmean, dvar, n)
        return [dx], self._weight_grads(dgamma, dbeta)

    def get_config(self):
        return {**super().get_config(), "rms_scaling": self.rms_scaling}


class GroupNormalization(_Affine):
    """Splits the channels (``axis``) into ``groups`` groups of ``C / groups`` and
    normalizes each sample's group over the group's channels and every other non-batch
    axis; ``gamma``/``beta`` are per channel, shape ``(C,)``. ``groups=-1`` gives one
    group per channel (instance normalization)."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or (
                groups <= 0 and groups != -1):
            raise ValueError("Received an invalid value for argument `groups`, expected a "
                             "positive integer (or `-1` for instance normalization). "
                             f"Received: groups={groups}")
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"GroupNormalization takes one int `axis`; received axis={axis!r}")
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         {"beta_regularizer": beta_regularizer,
                          "gamma_regularizer": gamma_regularizer,
                          "beta_constraint": beta_constraint,
                          "gamma_constraint": gamma_constraint}, kwargs)
        self.groups, self.axis = int(groups), int(axis)

    def build(self, input_shape):
        self._check_rank(input_shape)
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(f"Axis {self.axis} of input tensor should have a defined "
                             f"dimension but the layer received an input with shape "
                             f"{tuple(input_shape)}.")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"Number of groups ({self.groups}) cannot be more than the "
                             f"number of channels ({dim}).")
        if dim % self.groups:
            raise ValueError(f"Number of groups ({self.groups}) must be a multiple of the "
                             f"number of channels ({dim}).")
        self._spec = (len(input_shape), {self.axis % len(input_shape): dim})
        self._affine_weights((dim,), gamma=self.scale, beta=self.center)
        self.built = True

    def _grouped(self, shape):
        """The input's shape with the channel axis split into (groups, C / groups), that
        axis's position, and the axes the moments reduce over."""
        a = self.axis % len(shape)
        g_shape = tuple(shape[:a]) + (self.groups, shape[a] // self.groups) + tuple(shape[a + 1:])
        return g_shape, a, tuple(i for i in range(1, len(g_shape)) if i != a)

    def forward(self, x, *, training=False, mask=None):
        g_shape, a, axes = self._grouped(x.shape)
        b_shape = [1] * len(g_shape)
        b_shape[a], b_shape[a + 1] = g_shape[a], g_shape[a + 1]
        gamma = None if self.gamma is None else self.gamma.value.reshape(b_shape)
        beta = None if self.beta is None else self.beta.value.reshape(b_shape)
        xg = x.reshape(g_shape)
        mean, var = moments(xg, axes)
        y, r, inv = affine_forward(xg, mean, var, self.epsilon, gamma, beta)
        return y.reshape(x.shape), (xg, mean, r, inv, gamma, tuple(b_shape))

    def backward(self, cache, dy):
        xg, mean, r, inv, gamma, b_shape = cache
        xc = xg - mean
        dx, dgamma, dbeta, dmean, dvar = affine_backward(
            dy.reshape(xg.shape), xc, r, inv, gamma, None if self.beta is None else b_shape)
        dx = moments_backward(dx, xc, dmean, dvar, xg.size // mean.size)
        return [dx.reshape(dy.shape)], self._weight_grads(dgamma, dbeta)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis`` (an int or a list):
    ``y = x * min(1 / sqrt(sum x^2), 1e12)``. No weights."""

    supports_masking = True
    CAP = 1e12                                       # Keras: 1 / epsilon, epsilon = 1e-12

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_argument(axis, "UnitNormalization")
        self.built = True

    def _axes(self, ndim):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        check_axes(self, axes, ndim)
        return tuple(axes)

    def compute_output_shape(self, input_shape):
        self._axes(len(input_shape))
        return tuple(input_shape)

    def forward(self, x, *, training=False, mask=None):
        s = np.sum(x * x, axis=self._axes(x.ndim), keepdims=True)
        with np.errstate(divide="ignore"):
            raw = 1.0 / np.sqrt(s)
        inv = np.minimum(raw, np.asarray(self.CAP, x.dtype))
        return x * inv, (x, raw, inv)

    def backward(self, cache, dy):
        x, raw, inv = cache
        # y = x inv, inv = s^(-1/2) where not capped  =>  dx = dy inv - x inv^3 sum(dy x)
        # (where the cap 1e12 is taken, inv is a constant: dx = dy 1e12, as TensorFlow)
        used = raw <= self.CAP
        dot = np.sum(dy * x, axis=self._axes(x.ndim), keepdims=True)
        dx = dy * inv - x * np.where(used, inv ** 3 * dot, 0.0).astype(x.dtype)
        return [dx], []

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


from .batchnorm import BatchNormalization  # noqa: E402  (it uses the helpers above)

__all__ = ["BatchNormalization", "GroupNormalization", "LayerNormalization",
           "UnitNormalization"]
_AFFINE = ("epsilon", "center", "scale", "beta_initializer", "gamma_initializer")
# class name: (unrolled class, Keras snake-case name, options in the config): saving/serialize.py
# reads and writes these layers through this table.
KERAS_LAYERS = {
    "LayerNormalization": (LayerNormalization, "layer_normalization",
                           ("axis",) + _AFFINE + ("rms_scaling",)),
    "GroupNormalization": (GroupNormalization, "group_normalization",
                           ("groups", "axis") + _AFFINE),
    "UnitNormalization": (UnitNormalization, "unit_normalization", ("axis",)),
    "BatchNormalization": (BatchNormalization, "batch_normalization",
                           ("axis", "momentum") + _AFFINE + (
                               "moving_mean_initializer", "moving_variance_initializer",
                               "synchronized", "renorm", "renorm_clipping",
                               "renorm_momentum")),
}
