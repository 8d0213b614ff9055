"""A layer's weights: ``add_weight`` (Keras 3's form and the library's own), the weight
lists Keras keeps (``weights``, ``trainable_weights``, ``non_trainable_weights``),
``trainable``, ``get_weights``/``set_weights``, ``count_params``; and ``WeightsFromFile``,
under which a model read from a file allocates zeros of checked sizes instead of running
initializers. ``Layer`` (``layers/base.py``) inherits ``HasWeights``."""
import numpy as np

from .. import constraints as constraints_mod
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from ..utils import to_list
from ..variables import Variable

_from_file = None          # a WeightsFromFile while a model is rebuilt from a file


class WeightsFromFile:
    """While a loader rebuilds a model from a file's config (``with WeightsFromFile(...)``),
    ``add_weight`` runs no initializer: the weights come from the file next, so each starts
    as zeros (``np.zeros``: memory the OS maps only when written), and the bytes the config
    declares are counted against ``budget_bytes`` before anything is allocated. A small
    file declaring ``LSTM(6000)`` is refused at once instead of spending a minute and
    gigabytes on an orthogonal initializer (issue 26.4). ``error`` is the exception class to
    raise (the loaders' ``ModelFileError``)."""

    def __init__(self, budget_bytes, error, where):
        self.budget, self.error, self.where, self.used = int(budget_bytes), error, where, 0

    def __enter__(self):
        global _from_file
        self._outer, _from_file = _from_file, self
        return self

    def __exit__(self, *exc):
        global _from_file
        _from_file = self._outer
        return False

    def take(self, layer, name, shape, dtype):
        size = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        self.used += size
        if self.used > self.budget:
            raise self.error(
                f"{self.where}: layer {layer!r} declares a weight {name!r} of shape "
                f"{tuple(shape)}, and the model's weights would then take {self.used:,} bytes, "
                f"more than the file can hold ({self.budget:,} bytes at the most).")


class HasWeights:
    """The weights part of ``Layer``: it expects ``self.name``, ``self.dtype``,
    ``self._weights`` (a list), ``self._trainable`` and ``self.weight_rules``."""

    # --- weights -------------------------------------------------------------------------
    def add_weight(self, *args, shape=None, initializer=None, dtype=None, trainable=True,
                   autocast=True, regularizer=None, constraint=None, aggregation="none",
                   overwrite_with_gradient=False, name=None):
        """A new weight of this layer, in Keras 3's form: ``add_weight(shape=None,
        initializer=None, dtype=None, trainable=True, ..., name=None)`` (``shape``,
        ``initializer`` and ``dtype`` may come positionally; the initializer defaults to
        glorot_uniform for a float weight, zeros otherwise; the name to ``variable``,
        ``variable_1``, ...). ``autocast`` and ``aggregation`` change nothing here (no
        mixed precision, one device); ``overwrite_with_gradient=True`` is refused. The
        library's own layers call ``add_weight(name, shape, initializer, ...)``: a string
        first is that form."""
        if args and isinstance(args[0], str):
            kwargs = {"trainable": trainable, "regularizer": regularizer,
                      "constraint": constraint}
            if shape is not None:
                kwargs["shape"] = shape
            if initializer is not None:
                kwargs["initializer"] = initializer
            return self._add_weight(*args, **kwargs)
        if len(args) > 3:
            raise TypeError(f"add_weight() takes at most 3 positional arguments (shape, "
                            f"initializer, dtype) but {len(args)} were given.")
        for key, value in zip(("shape", "initializer", "dtype"), args):
            if {"shape": shape, "initializer": initializer, "dtype": dtype}[key] is not None:
                raise ValueError(f"`{key}` was passed both positionally and as a keyword "
                                 "argument.")
        shape, initializer, dtype = (list(args) + [shape, initializer, dtype][len(args):])[:3]
        if overwrite_with_gradient:
            raise NotImplementedError("add_weight(overwrite_with_gradient=True) is not "
                                      "implemented in unrolled (it serves float8 training).")
        if aggregation not in (None, "none", "mean", "sum", "only_first_replica"):
            raise ValueError(f"Invalid value for argument `aggregation`: {aggregation!r}.")
        dtype = np.dtype(getattr(dtype, "name", dtype)).name if dtype is not None else self.dtype
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        if name is None:
            taken = {w.name for w in self._weights}
            name = next(n for n in ["variable"] + [f"variable_{i}" for i in range(1, 10 ** 6)]
                        if n not in taken)
        shape = () if shape is None else tuple(int(d) for d in to_list(shape))
        return self._add_weight(name, shape, initializer, trainable, regularizer, constraint,
                                dtype=dtype)

    def _add_weight(self, name, shape, initializer="zeros", trainable=True, regularizer=None,
                    constraint=None, dtype=None):
        """A new weight of this layer. Its regularizer and constraint are the given ones,
        else the layer's ``<prefix>_regularizer``/``_constraint`` for a weight named by one
        of ``weight_rules`` (``recurrent_kernel`` takes the ``recurrent_`` ones)."""
        dtype = dtype or self.dtype
        prefix = "recurrent" if name == "recurrent_kernel" else name
        if prefix in self.weight_rules:
            regularizer = regularizer or getattr(self, f"{prefix}_regularizer")
            constraint = constraint or getattr(self, f"{prefix}_constraint")
        if _from_file is not None:                  # its value comes from the file next
            _from_file.take(self.name, name, shape, dtype)
            value = np.zeros(tuple(shape), dtype)
        else:
            init = initializers_mod.get(initializer)
            floating = np.dtype(dtype).kind == "f"           # an integer weight: zeros, a
            value = np.asarray(init(tuple(shape), dtype if floating else self.dtype),  # count
                               dtype=dtype)
        if value.shape != tuple(shape):
            raise ValueError(
                f"Initializer for weight '{name}' of layer '{self.name}' returned shape "
                f"{value.shape}; expected {tuple(shape)}."
            )
        var = Variable(value, name, trainable=trainable, path=f"{self.name}/{name}")
        var.regularizer = regularizers_mod.get(regularizer)
        var.constraint = constraints_mod.get(constraint)
        self._weights.append(var)
        return var

    @property
    def weights(self):
        return list(self._weights)

    def _sublayers(self):
        """The layers this one holds (a recurrent layer's cell, a wrapper's layer, a
        model's layers): ``trainable`` reaches them, as it does in Keras."""
        return []

    @property
    def trainable(self):
        """Whether training updates this layer's weights. Setting it sets the flag of the
        layer's own weights created trainable and of every layer it holds, as Keras's
        setter does (so ``model.trainable = True`` unfreezes everything below); the next
        ``fit`` or ``train_on_batch`` step reads it again."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = bool(value)
        self._trainable = value
        for w in self._weights:
            if w.created_trainable:
                w.trainable = value
        for layer in self._sublayers():
            layer.trainable = value

    def _trainable_ids(self):
        if not self._trainable:
            return set()
        ids = {id(w) for w in self._weights if w.trainable}
        for layer in self._sublayers():
            ids |= layer._trainable_ids()
        return ids

    @property
    def trainable_weights(self):
        """The weights the optimizer updates: those of trainable layers all the way down,
        in ``weights`` order."""
        ids = self._trainable_ids()
        return [w for w in self.weights if id(w) in ids]

    @property
    def non_trainable_weights(self):
        ids = self._trainable_ids()
        return [w for w in self.weights if id(w) not in ids]

    def get_weights(self):
        """The weights as a list of NumPy arrays (copies), in Keras's order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Set the weights from a list of arrays in ``get_weights()`` order and shapes."""
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(
                f"Layer '{self.name}' expects {len(own)} weights "
                f"({', '.join(f'{w.name} {w.shape}' for w in own) or 'none'}), but "
                f"set_weights received {len(weights)}. Pass a list in get_weights() order."
            )
        arrays = []
        for var, value in zip(own, weights):
            value = np.asarray(value)
            if value.shape != var.shape:
                raise ValueError(
                    f"Weight '{var.path}' has shape {var.shape}, but set_weights received "
                    f"an array of shape {value.shape}. Pass the arrays in get_weights() "
                    "order; a Keras or PyTorch weight may need a transpose or gate reorder."
                )
            arrays.append(value)
        for var, value in zip(own, arrays):
            var.assign(value)

    def count_params(self):
        return int(sum(w.value.size for w in self.weights))
