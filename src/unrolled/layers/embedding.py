"""Layers where masks begin: Embedding (token ids to vectors) and Masking.

A mask is a boolean array ``(batch, timesteps)``: True where a step is real data. These
two layers create one; the functional ``Model`` hands it to the layers downstream, and
``RNN`` skips the masked steps (see ``recurrent/loop.py``).
"""
import numpy as np

from .. import initializers
from ..optimizers.sparse import IndexedSlices
from .base import Layer

# Keras's short names for the two random initializers Embedding is commonly given.
_ALIASES = {"uniform": "random_uniform", "normal": "random_normal"}


def _check_positive_int(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r} "
            f"(of type {type(value).__name__})."
        )
    return int(value)


class Embedding(Layer):
    """Looks up row ``ids`` of ``embeddings (input_dim, output_dim)``: ``y = embeddings[ids]``.

    Input: integer ids of any shape, each in ``[0, input_dim)`` (Keras also accepts
    ``[-input_dim, 0)``, counting from the end, and so does this layer). Output: that shape plus
    ``(output_dim,)``. The default initializer, ``"uniform"``, is Keras's
    ``RandomUniform(-0.05, 0.05)``. With ``mask_zero=True`` id 0 is padding: the output mask
    is ``ids != 0`` (so ``input_dim`` should count the padding id). ``input_length`` (Keras 2)
    gives a Sequential model whose first layer this is the input ``(None, input_length)``.

    Backward: the ids get no gradient; each row of ``embeddings`` gets the sum of the
    gradients of the positions that looked it up. With ``sparse=True`` (training) it is
    an ``IndexedSlices`` of one row per position instead, as Keras's TensorFlow backend
    hands its optimizer (the sum differs from it in Adam, RMSprop, Adagrad: see
    ``unrolled/optimizers/sparse.py``).
    """

    weight_rules = ("embeddings",)            # embeddings_regularizer/_constraint (base.py)

    sparse_gradients = True                                  # backward takes ``sparse``

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 mask_zero=False, **kwargs):
        input_length = kwargs.pop("input_length", None)
        if input_length is not None and "batch_input_shape" not in kwargs:
            kwargs["batch_input_shape"] = (None, input_length)   # Keras 2: a model's input
        super().__init__(**kwargs)
        self.input_dim = _check_positive_int("input_dim", input_dim)
        self.output_dim = _check_positive_int("output_dim", output_dim)
        if isinstance(embeddings_initializer, str):
            embeddings_initializer = _ALIASES.get(embeddings_initializer, embeddings_initializer)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero

    def build(self, input_shape=None):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _prepare_eager(self, inputs):
        # Ids stay integers: the base class would cast them to the layer's float dtype.
        ids = np.asarray(inputs)
        if ids.dtype.kind not in "biuf":
            raise TypeError(
                f"Input of layer '{self.name}' must be integer token ids; received an array "
                f"of dtype {ids.dtype}."
            )
        self._maybe_build(ids.shape)
        return ids

    def _ids(self, x):
        ids = np.asarray(x)
        if ids.dtype.kind != "i":
            ids = ids.astype(np.int64)                       # floats truncate, as Keras's cast
        n = self.input_dim
        if ids.size and (ids.min() < -n or ids.max() >= n):
            raise ValueError(
                f"Layer '{self.name}' got token ids outside the expected range "
                f"[0, {n - 1}] (input_dim={n}; as in Keras, a negative id down to -{n} counts "
                f"from the end): the ids run from {ids.min()} to {ids.max()}. Raise input_dim "
                "to cover the vocabulary, or map unknown tokens to an id inside it."
            )
        return ids                                           # negative ids index from the end

    def forward(self, x, *, training=False, mask=None):
        ids = self._ids(x)
        return self.embeddings.value[ids], ids

    def backward(self, ids, dy, sparse=False):
        if sparse:
            rows = np.where(ids < 0, ids + self.input_dim, ids)
            # dy is kept until the optimizer step: a copy, should a layer reuse its buffer
            return [None], [IndexedSlices(rows, np.array(dy), self.embeddings.shape)]
        dembeddings = np.zeros_like(self.embeddings.value)
        np.add.at(dembeddings, ids, dy)                      # repeated ids add up
        return [None], [dembeddings]

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero}


class Masking(Layer):
    """Masks the time steps whose features all equal ``mask_value``.

    ``keep = any(x != mask_value, axis=-1)`` is the output mask; the output is ``x`` where
    ``keep`` and 0 elsewhere (Keras uses ``where``, so even a NaN in a masked step becomes 0).
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value

    def forward(self, x, *, training=False, mask=None):
        keep = np.any(x != self.mask_value, axis=-1, keepdims=True)
        return np.where(keep, x, 0).astype(x.dtype, copy=False), keep

    def backward(self, keep, dy):
        return [np.where(keep, dy, 0).astype(dy.dtype, copy=False)], []   # y = where(keep, x, 0)

    def compute_mask(self, inputs, mask=None):
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
