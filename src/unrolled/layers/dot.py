"""Dot: the batched dot product of two inputs, a merge layer (``merge.py`` has the others).

``backward`` returns one gradient per input; with ``normalize=True`` it goes back through
the l2 normalization too.
"""
import numpy as np

from ..config import epsilon
from .base import Layer


def _l2_normalize(x, axis):
    """Keras's ``normalize``: ``y = x * r``, ``r = min(1 / ||x||, 1 / eps)`` along ``axis``
    (``eps = config.epsilon()``, 1e-7); returns ``y``, ``r`` and where ``r`` was not
    clipped (``r`` depends on ``x`` there)."""
    eps = epsilon()
    with np.errstate(divide="ignore"):
        r = 1.0 / np.sqrt(np.sum(np.square(x), axis=axis, keepdims=True))
    live = r < 1.0 / eps
    r = np.minimum(r, 1.0 / eps).astype(x.dtype)
    return x * r, r, live


def _l2_normalize_backward(y, r, live, axis, g):
    """``y = x r``, ``r = ||x||^-1``  =>  ``dx = r (g - y sum(y g))``; where ``r`` is the
    constant ``1 / eps``: ``dx = r g``."""
    return r * (g - np.where(live, y * np.sum(y * g, axis=axis, keepdims=True), 0))


class Dot(Layer):
    """The batched dot product of two inputs along ``axes``, as ``keras.layers.Dot``.

    ``axes``: one axis for both inputs, or a pair ``(axis_a, axis_b)``; negative axes count
    from the end; the batch axis cannot be one. For each sample the output holds, for every
    remaining index ``i`` of ``a`` and ``j`` of ``b``, ``sum_k a[i, k] b[k, j]``: the
    remaining axes of ``a``, then those of ``b`` (an output of one axis becomes ``(B, 1)``).
    ``normalize=True`` first l2-normalizes each input along its axis (the output is then a
    cosine similarity), ``x * min(1 / ||x||, 1e7)`` as Keras. Backward, with both moved to
    ``a: (B, I, K)``, ``b: (B, K, J)``: ``da = dy b^T``, ``db = a^T dy``, then through the
    normalization. Masks are accepted and none is passed on, as Keras's.
    """

    supports_masking = True

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)):
                raise TypeError("Invalid type for argument `axes`: it should be a list or an "
                                f"int. Received: axes={axes}")
            if len(axes) != 2:
                raise ValueError("Invalid format for argument `axes`: it should contain two "
                                 f"elements. Received: axes={axes}")
            if not isinstance(axes[0], int) or not isinstance(axes[1], int):
                raise ValueError("Invalid format for argument `axes`: list elements should be "
                                 f"integers. Received: axes={axes}")
            axes = tuple(axes)
        self.axes = axes
        self.normalize = normalize

    def _two_shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError("A `Dot` layer should be called on a list of 2 inputs. "
                             f"Received: input_shape={input_shape}")
        return [tuple(s) for s in input_shape]

    def _resolved_axes(self, shapes):
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        for s in shapes:
            if len(s) < 2:
                raise ValueError(f"Cannot do batch_dot on inputs with rank < 2. Received inputs "
                                 f"with shapes {shapes[0]} and {shapes[1]}.")
        axes = [a % len(s) if a < 0 else a for a, s in zip(pair, shapes)]
        for a, s in zip(axes, shapes):
            if a == 0:
                raise ValueError("Cannot perform batch_dot over axis 0 (the batch axis): "
                                 f"layer '{self.name}', axes={self.axes}.")
            if a >= len(s):
                raise ValueError(f"Layer '{self.name}': axes={self.axes} is out of range for "
                                 f"input shapes {shapes[0]} and {shapes[1]}.")
        return axes

    def build(self, input_shape):
        shapes = self._two_shapes(input_shape)
        a0, a1 = self._resolved_axes(shapes)
        d0, d1 = shapes[0][a0], shapes[1][a1]
        if d0 is not None and d1 is not None and d0 != d1:
            raise ValueError(f"Incompatible input shapes: axis values {d0} (at axis {a0}) != "
                             f"{d1} (at axis {a1}). Full input shapes: {shapes[0]}, {shapes[1]}")
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = self._two_shapes(input_shape)
        a0, a1 = self._resolved_axes(shapes)
        s0 = [d for i, d in enumerate(shapes[0]) if i != a0]
        s1 = [d for i, d in enumerate(shapes[1]) if i not in (0, a1)]
        out = s0 + s1
        return tuple(out + [1] if len(out) == 1 else out)

    def compute_mask(self, inputs, mask=None):
        return None

    def forward(self, xs, *, training=False, mask=None):
        if len(xs) != 2:
            raise ValueError(f"A `Dot` layer should be called on exactly 2 inputs. Received "
                             f"{len(xs)} inputs.")
        a, b = xs
        a0, a1 = self._resolved_axes([a.shape, b.shape])
        norms = None
        if self.normalize:
            a, ra, la = _l2_normalize(a, a0)
            b, rb, lb = _l2_normalize(b, a1)
            norms = (a, ra, la, b, rb, lb)
        # a -> (B, I, K) with the summed axis last; b -> (B, K, J) with it first
        am = np.moveaxis(a, a0, -1)
        bm = np.moveaxis(b, a1, 1)
        n, k = a.shape[0], a.shape[a0]
        a3 = am.reshape(n, -1, k)
        b3 = bm.reshape(n, k, -1)
        y = np.matmul(a3, b3)                               # y[n, i, j] = sum_k a[n,i,k] b[n,k,j]
        out_shape = (n,) + am.shape[1:-1] + bm.shape[2:]
        if len(out_shape) == 1:
            out_shape += (1,)
        return y.reshape(out_shape), (a3, b3, am.shape, bm.shape, a0, a1, norms)

    def backward(self, cache, dy):
        a3, b3, am_shape, bm_shape, a0, a1, norms = cache
        g = dy.reshape(a3.shape[0], a3.shape[1], b3.shape[2])
        da = np.matmul(g, np.swapaxes(b3, 1, 2))           # y = a b  =>  da = dy b^T
        db = np.matmul(np.swapaxes(a3, 1, 2), g)           #          =>  db = a^T dy
        da = np.moveaxis(da.reshape(am_shape), -1, a0)
        db = np.moveaxis(db.reshape(bm_shape), 1, a1)
        if norms is not None:
            a, ra, la, b, rb, lb = norms
            da = _l2_normalize_backward(a, ra, la, a0, da)
            db = _l2_normalize_backward(b, rb, lb, a1, db)
        return [da, db], []

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def dot(inputs, axes=-1, **kwargs):
    """``Dot(axes=axes, **kwargs)(inputs)``: Keras's functional form."""
    return Dot(axes=axes, **kwargs)(inputs)
