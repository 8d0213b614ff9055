"""The NumPy formulas behind ``unrolled.activations``, each beside its derivative.

A formula ``f(x, **args)`` returns ``y`` in ``x``'s float dtype; its ``f_backward(x, y, dy,
**args)`` returns dL/dx = f'(x) * dy from the input, the output and dL/dy, with the same
keyword arguments (Keras's, with Keras's defaults). ``activations`` wraps them in its named
``Activation`` objects; the formulas here need NumPy alone, nothing of unrolled (those built
on the fast path's tanh, ``sigmoid`` and the ones using it, live in ``activations``).

``erf`` is computed here because NumPy has none: gelu's exact form is ``x Phi(x)``.
"""
import numpy as np


def hard_sigmoid(x):
    # Keras 3: clip(x / 6 + 1/2, 0, 1).
    y = x / x.dtype.type(6) + x.dtype.type(0.5)
    return np.clip(y, 0, 1).astype(x.dtype, copy=False)


def hard_sigmoid_keras2(x):
    # Keras 2 and tf.keras 2: clip(0.2 x + 1/2, 0, 1), the product and sum in x's dtype.
    y = x * x.dtype.type(0.2) + x.dtype.type(0.5)
    return np.clip(y, 0, 1).astype(x.dtype, copy=False)


def softmax(x, axis=-1):
    # e^x_i / sum_j e^x_j along ``axis`` (an int or a tuple: one softmax over all of them).
    axis = _axis(axis)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(x, y, dy, axis=-1):
    # dL/dx_i = y_i (dy_i - sum_j dy_j y_j)
    return y * (dy - (dy * y).sum(axis=_axis(axis), keepdims=True))


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def log_softmax(x, axis=-1):
    # x - log sum_j e^x_j, from the shifted logits: no overflow.
    axis = _axis(axis)
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def log_softmax_backward(x, y, dy, axis=-1):
    # y_i = x_i - lse(x)  =>  dx_i = dy_i - softmax_i sum_j dy_j, with softmax = e^y
    return dy - np.exp(y) * dy.sum(axis=_axis(axis), keepdims=True)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    # Keras's relu with arguments, branch for branch (activations.ReLU.static_call):
    #   x > threshold: x, clipped to [0, max_value] when one is given;
    #   else: 0, minus negative_slope * (threshold - x).
    t = x.dtype.type
    if max_value is None and threshold == 0:
        if negative_slope == 0:
            return np.maximum(x, t(0))
        return np.where(x > 0, x, x * t(negative_slope))            # leaky relu
    y = np.where(x > t(threshold), x, t(0)) if threshold != 0 else np.maximum(x, t(0))
    if max_value is not None:
        y = np.clip(y, t(0), t(max_value))
    if negative_slope != 0:
        y = y - t(negative_slope) * np.maximum(t(threshold) - x, t(0))
    return y


def relu_backward(x, y, dy, negative_slope=0.0, max_value=None, threshold=0.0):
    t = x.dtype.type
    if max_value is None and threshold == 0 and negative_slope != 0:
        return dy * np.where(x > 0, t(1), t(negative_slope))
    passed = (x > t(threshold)) if threshold != 0 else (x > 0)       # the identity branch
    if max_value is not None:
        passed &= (x > 0) & (x < t(max_value))                       # clip(., 0, max_value)
    slope = passed.astype(x.dtype)
    if negative_slope != 0:
        slope += t(negative_slope) * (x < t(threshold))             # -s * relu(threshold - x)
    return dy * slope


def elu(x, alpha=1.0):
    # x for x > 0, alpha (e^x - 1) else
    y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    return y if alpha == 1 else np.where(x > 0, y, x.dtype.type(alpha) * y)


def erf(z):
    """erf, vectorized, in float64 (NumPy has none): its Taylor series for |z| < 3, where 60
    terms reach 1e-16; beyond, 1 - erfc from erfc's continued fraction
    erfc(z) = e^(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...))))."""
    z = np.asarray(z, np.float64)
    a = np.abs(z)
    s = np.minimum(a, 3.0)
    s2, term = s * s, s.copy()
    total = s.copy()
    for n in range(1, 70):            # sum_n (-1)^n s^(2n+1) / (n! (2n+1))
        term *= -s2 / n
        total += term / (2 * n + 1)
    near = total * (2 / np.sqrt(np.pi))
    b = np.maximum(a, 3.0)
    f = b.copy()
    for k in range(60, 0, -1):
        f = b + (k / 2) / f
    far = 1 - np.exp(-b * b) / (np.sqrt(np.pi) * f)
    return np.sign(z) * np.where(a < 3, near, far)


_SQRT_2_OVER_PI = 0.7978845608028654


def gelu(x, approximate=False):
    if approximate:   # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        t = x.dtype.type
        return t(0.5) * x * (1 + np.tanh(t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x ** 3)))
    return (0.5 * x * (1 + erf(x / np.sqrt(2.0)))).astype(x.dtype)  # x Phi(x)


def gelu_backward(x, y, dy, approximate=False):
    if approximate:   # u = c (x + k x^3): y' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3k x^2)
        t = x.dtype.type
        th = np.tanh(t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x ** 3))
        du = t(_SQRT_2_OVER_PI) * (1 + t(3 * 0.044715) * x * x)
        return dy * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * du)
    xd = x.astype(np.float64)         # y = x Phi(x)  =>  y' = Phi(x) + x phi(x)
    g = 0.5 * (1 + erf(xd / np.sqrt(2.0))) + xd * np.exp(-0.5 * xd * xd) / np.sqrt(2 * np.pi)
    return dy * g.astype(x.dtype)


def hard_silu(x):
    return x * (np.clip(x + x.dtype.type(3), 0, 6) / x.dtype.type(6))   # x relu6(x + 3) / 6


def hard_silu_backward(x, y, dy):
    t = x.dtype.type
    hs = np.clip(x + t(3), 0, 6) / t(6)
    return dy * (hs + x * ((x > -3) & (x < 3)) / t(6))


def celu(x, alpha=1.0):
    # max(x, 0) + alpha (e^(min(x, 0) / alpha) - 1)
    a = x.dtype.type(alpha)
    return np.maximum(x, 0) + a * np.expm1(np.minimum(x, 0) / a)


def soft_shrink(x, threshold=0.5):
    t = x.dtype.type(threshold)
    return np.where(x > t, x - t, np.where(x < -t, x + t, x.dtype.type(0)))


def sparse_plus(x):
    # 0 for x <= -1, (x + 1)^2 / 4 for |x| < 1, x for x >= 1
    return np.where(x <= -1, x.dtype.type(0), np.where(x < 1, x.dtype.type(0.25) * (x + 1) ** 2, x))


def squareplus(x, b=4):
    return (x + np.sqrt(x * x + x.dtype.type(b))) / x.dtype.type(2)
