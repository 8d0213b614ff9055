"""Layers that merge a list of tensors into one: Concatenate, Add, Multiply, Average,
Subtract, Maximum, Minimum (Dot: ``dot.py``).

Each is called on a list, ``Concatenate()([a, b])``; ``backward`` returns one gradient
per input, in the same order. Masks are combined as Keras combines them (see each
``compute_mask``).
"""
import numpy as np

from .base import Layer


def _shape_list(layer, input_shape):
    if not isinstance(input_shape, (list, tuple)) or not input_shape or \
            not all(isinstance(s, (list, tuple)) for s in input_shape):
        raise ValueError(
            f"A `{type(layer).__name__}` layer should be called on a list of inputs, e.g. "
            f"{type(layer).__name__}()([a, b]). Received: input_shape={input_shape}"
        )
    return [tuple(s) for s in input_shape]


class Concatenate(Layer):
    """Joins the inputs along ``axis``; all other axes must match.

    Mask (Keras's rule): each input's mask is broadcast over that input's last axis
    (all True where an input has no mask), the masks are concatenated along ``axis``, and
    the output mask is ``any`` over the last axis. Along the features (``axis=-1``) that is
    the logical OR of the masks; along time it is the masks joined end to end.
    """

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape):
        shapes = _shape_list(self, input_shape)
        ranks = {len(s) for s in shapes}
        problem = len(ranks) != 1
        if not problem:
            axis = self.axis % ranks.pop()
            for i in range(len(shapes[0])):
                sizes = {s[i] for s in shapes if s[i] is not None}
                problem = problem or (i != axis and len(sizes) > 1)
        if problem:
            raise ValueError(
                f"A `Concatenate` layer requires inputs with matching shapes except for the "
                f"concatenation axis (axis={self.axis}). Received: input_shape={shapes}"
            )
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = _shape_list(self, input_shape)
        out = list(shapes[0])
        sizes = [s[self.axis] for s in shapes]
        out[self.axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def forward(self, xs, *, training=False, mask=None):
        return np.concatenate(xs, axis=self.axis), [x.shape[self.axis] for x in xs]

    def backward(self, sizes, dy):
        cuts = np.cumsum(sizes)[:-1]                         # each input gets back its own slice
        return list(np.split(dy, cuts, axis=self.axis)), []

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask):
            if m is None:
                m = np.ones(x.shape, bool)                   # an unmasked input: all kept
            elif m.ndim < x.ndim:
                m = np.broadcast_to(np.asarray(m, bool)[..., None], x.shape)
            masks.append(m)
        return np.concatenate(masks, axis=self.axis).any(axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _broadcast_shape(shapes):
    """The shape of the sum (batch axis excluded), aligned from the right as NumPy does."""
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(-rank, 0):
        sizes = {s[i] for s in shapes if len(s) >= -i}
        known = sizes - {None, 1}
        if len(known) > 1:
            raise ValueError(
                f"Inputs have incompatible shapes: an `Add` layer needs shapes that are equal "
                f"or broadcastable (sizes 1 or equal on every axis). Received shapes "
                f"{[(None,) + tuple(s) for s in shapes]}."
            )
        out.append(known.pop() if known else (None if None in sizes else 1))
    return tuple(out)


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (same rank): a broadcast input collects every gradient it fed."""
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class Add(Layer):
    """The elementwise sum of the inputs.

    Shapes may broadcast; an input of lower rank gets axes inserted after the batch axis,
    as Keras does. Mask: the logical OR of the input masks, or no mask if any input has
    none (Keras's ``Merge.compute_mask``).
    """

    supports_masking = True

    def build(self, input_shape):
        shapes = _shape_list(self, input_shape)
        _broadcast_shape([s[1:] for s in shapes])           # fail early with a clear message
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = _shape_list(self, input_shape)
        batch = {s[0] for s in shapes} - {None}
        rest = _broadcast_shape([s[1:] for s in shapes])
        return (batch.pop() if len(batch) == 1 else None,) + rest

    def forward(self, xs, *, training=False, mask=None):
        rank = max(x.ndim for x in xs)
        y = 0
        for x in xs:
            y = y + x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:])
        return y, [x.shape for x in xs]

    def backward(self, shapes, dy):
        dxs = []
        for shape in shapes:
            rank_gap = dy.ndim - len(shape)
            padded = shape[:1] + (1,) * rank_gap + shape[1:]
            dxs.append(_unbroadcast(dy, padded).reshape(shape))   # y = sum x_i  =>  dx_i = dy
        return dxs, []

    def compute_mask(self, inputs, mask=None):
        if mask is None or any(m is None for m in mask):
            return None
        out = np.asarray(mask[0], bool)
        for m in mask[1:]:
            out = out | np.asarray(m, bool)
        return out


def _aligned(xs):
    """The inputs with axes inserted after the batch axis up to the highest rank (Keras's
    rule for inputs of lower rank), ready for NumPy broadcasting."""
    rank = max(x.ndim for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]


def _back_to(shape, g):
    """``g`` summed down to an input's own ``shape`` (broadcast axes, inserted axes)."""
    padded = shape[:1] + (1,) * (g.ndim - len(shape)) + shape[1:]
    return _unbroadcast(g, padded).reshape(shape)


class Multiply(Add):
    """The elementwise product of the inputs (broadcasting and masks as ``Add``).
    Backward: each input gets ``dy`` times the product of the others."""

    def forward(self, xs, *, training=False, mask=None):
        xs = _aligned(xs)
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y, xs

    def backward(self, xs, dy):
        dxs = []
        for i, x in enumerate(xs):
            others = dy
            for j, other in enumerate(xs):
                if j != i:
                    others = others * other
            dxs.append(others)
        return [_back_to(x.shape, g) for x, g in zip(xs, dxs)], []


class Average(Add):
    """The elementwise mean of the inputs. Backward: ``dy / n`` to each."""

    def forward(self, xs, *, training=False, mask=None):
        y, shapes = super().forward(xs, training=training, mask=mask)
        return y / y.dtype.type(len(xs)), shapes

    def backward(self, shapes, dy):
        return super().backward(shapes, dy / dy.dtype.type(len(shapes)))


class Subtract(Add):
    """``inputs[0] - inputs[1]``: exactly two inputs, as in Keras."""

    def build(self, input_shape):
        shapes = _shape_list(self, input_shape)
        if len(shapes) != 2:
            raise ValueError("A `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: input_shape={shapes}")
        super().build(input_shape)

    def forward(self, xs, *, training=False, mask=None):
        a, b = _aligned(xs)
        return a - b, [x.shape for x in xs]

    def backward(self, shapes, dy):
        return [_back_to(shapes[0], dy), _back_to(shapes[1], -dy)], []


class Maximum(Add):
    """The elementwise maximum of the inputs, taken pairwise left to right as Keras does.
    Backward: ``dy`` goes where an input is the maximum; on a tie, to the earlier input
    (TensorFlow's ``maximum(x, y)`` gives a tie to ``x``)."""

    pick = staticmethod(np.greater_equal)
    combine = staticmethod(np.maximum)

    def forward(self, xs, *, training=False, mask=None):
        xs = _aligned(xs)
        y = xs[0]
        for x in xs[1:]:
            y = self.combine(y, x)
        return y, xs

    def backward(self, xs, dy):
        # Walk the pairwise reduction back: at step i the running result r_{i-1} won
        # where pick(r_{i-1}, x_i), else x_i did.
        running = [xs[0]]
        for x in xs[1:]:
            running.append(self.combine(running[-1], x))
        grads, g = [None] * len(xs), dy
        for i in range(len(xs) - 1, 0, -1):
            earlier = self.pick(running[i - 1], xs[i])
            grads[i] = np.where(earlier, 0, g).astype(dy.dtype)
            g = np.where(earlier, g, 0).astype(dy.dtype)
        grads[0] = g
        return [_back_to(x.shape, np.broadcast_to(gr, dy.shape)) for x, gr in zip(xs, grads)], []


class Minimum(Maximum):
    """The elementwise minimum of the inputs; ties go to the earlier input, as in Keras."""

    pick = staticmethod(np.less_equal)
    combine = staticmethod(np.minimum)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``: Keras's functional form."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: Keras's functional form."""
    return Add(**kwargs)(inputs)
