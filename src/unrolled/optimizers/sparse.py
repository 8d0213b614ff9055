"""Sparse gradients: what an Embedding hands the optimizer while training.

Keras's TensorFlow backend gives an Embedding's weights the gradient of a gather: one row
of values per *looked-up position* (``IndexedSlices``), indices repeated where a token
repeats, never summed first. Its optimizers then mix that with dense state, and the rule
that comes out (checked against Keras 3.15 / TF 2.21, tests/reference/optimizers/test_embedding_sparse_updates.py):

* every quantity linear in the gradient sees the row sums ``G`` (the dense gradient);
* every *squared* gradient is squared per position, then summed: ``S = sum_i g_i**2`` for
  the rows present, 0 elsewhere (Adam's and RMSprop's velocity, Adagrad's accumulator);
* state stays dense: absent rows still decay (Adam's m and v, RMSprop's velocity and
  momentum) and still move where that state is non-zero; Adagrad leaves them alone;
* clipping: ``clipnorm`` uses the norm of the per-position values and ``clipvalue`` clips
  each position (both stay sparse); ``global_clipnorm`` counts per-position squares in the
  global norm and then makes the gradient dense, so the step after it uses ``G**2``.
"""
import numpy as np


class IndexedSlices:
    """Rows ``values[k]`` to be added at row ``indices[k]`` of a ``dense_shape`` array."""

    def __init__(self, indices, values, dense_shape):
        self.indices = np.asarray(indices).reshape(-1)
        self.values = np.asarray(values).reshape((self.indices.size,) + tuple(dense_shape[1:]))
        self.dense_shape = tuple(dense_shape)

    @property
    def shape(self):
        return self.dense_shape

    @property
    def dtype(self):
        return self.values.dtype

    def with_values(self, values):
        return IndexedSlices(self.indices, values, self.dense_shape)

    def astype(self, dtype, copy=True):
        return self.with_values(self.values.astype(dtype, copy=copy))

    def dense(self):
        """The row sums: the ordinary (dense) gradient."""
        out = np.zeros(self.dense_shape, dtype=self.values.dtype)
        np.add.at(out, self.indices, self.values)
        return out

    def squares(self):
        """Per-position squares, summed by row (``S`` above)."""
        out = np.zeros(self.dense_shape, dtype=self.values.dtype)
        np.add.at(out, self.indices, np.square(self.values))
        return out

    def abs_sums(self):
        """Per-position absolute values, summed by row (Adamax's ``|g|``)."""
        out = np.zeros(self.dense_shape, dtype=self.values.dtype)
        np.add.at(out, self.indices, np.abs(self.values))
        return out

    def __add__(self, other):
        # Two calls of one Embedding: positions concatenate, as TF aggregates IndexedSlices.
        if isinstance(other, IndexedSlices):
            return IndexedSlices(np.concatenate([self.indices, other.indices]),
                                 np.concatenate([self.values, other.values]), self.dense_shape)
        return self.dense() + other

    __radd__ = __add__

    def __array__(self, dtype=None, copy=None):
        d = self.dense()
        return d if dtype is None else d.astype(dtype)


def dense(gradient):
    """The dense gradient of an ndarray or an ``IndexedSlices``."""
    return gradient.dense() if isinstance(gradient, IndexedSlices) else gradient


def dense_and_squares(gradient):
    """``(G, S)``: the gradient and the squared gradient as Keras's sparse updates see them
    (``S = G**2`` for a dense gradient)."""
    if isinstance(gradient, IndexedSlices):
        return gradient.dense(), gradient.squares()
    return gradient, np.square(gradient)
