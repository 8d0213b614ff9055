"""Losses, as Keras 3 computes them, each with its gradient written by hand.

A loss turns ``(y_true, y_pred)`` into one number in three steps:

1. ``values = loss.call(y_true, y_pred)``: one value per sample (and per time step for
   sequence outputs), reducing the last axis. ``y_pred (N, C)`` gives ``(N,)``,
   ``y_pred (N, T, C)`` gives ``(N, T)``.
2. ``weighted = values * sample_weight``, after Keras's rank fix-up: a weight with one
   axis fewer than ``(N, 1)`` values, or one trailing 1 more, is expanded/squeezed
   first; then NumPy broadcasting applies. Keras 3.15.1 does **not** expand ``(N,)`` to
   ``(N, T)``: with ``y_pred (N, T, C)`` a weight of shape ``(N,)`` fails unless
   ``T == N`` (and then it weights time steps, not samples). Pass ``(N, 1)`` or ``(N, T)``.
3. ``loss = sum(weighted) / weighted.size`` for the default reduction
   ``"sum_over_batch_size"``. The divisor is the **number of elements**, not the sum of
   the weights: a zero weight lowers the loss, it does not drop the sample from the mean.

``gradient`` returns ``dloss/dy_pred`` (same shape and dtype as ``y_pred``) through the
same steps in reverse: ``dloss/dvalues = sample_weight / n``, times ``dvalues/dy_pred``
from each loss's ``call_gradient``. Arithmetic runs in ``y_pred``'s float dtype.

**Keras's hidden logits path.** With the TensorFlow backend, a tensor that comes straight
out of a ``sigmoid`` or ``softmax`` activation (``Dense(activation=...)`` or an
``Activation`` layer) carries its logits, and *every* crossentropy loss then uses the
``from_logits=True`` formula on those logits, without clipping (even binary crossentropy
on a softmax output). ``on_keras_logits(loss)`` gives the loss Keras really evaluates in
that case; call it on the logits, and its gradient is ``dloss/dlogits``.
"""
from unrolled.losses.base import Loss, LossFunctionWrapper
from unrolled.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from unrolled.losses.more import (
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCosh,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
)
from unrolled.losses.regression import Huber, MeanAbsoluteError, MeanSquaredError

__all__ = [
    "Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError", "Huber",
    "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae",
    "get", "resolve_crossentropy", "binary_or_sparse", "on_keras_logits",
    "LogCosh", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson",
    "KLDivergence", "Hinge", "SquaredHinge", "CosineSimilarity",
]


# ---- plain functions: per-sample values, as keras.losses.<name>(y_true, y_pred) ----

def mean_squared_error(y_true, y_pred):
    return MeanSquaredError().per_sample(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    return MeanAbsoluteError().per_sample(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    return Huber(delta=delta).per_sample(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    return BinaryCrossentropy(from_logits, label_smoothing).per_sample(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    return CategoricalCrossentropy(from_logits, label_smoothing).per_sample(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    return SparseCategoricalCrossentropy(from_logits).per_sample(y_true, y_pred)


mse = mean_squared_error
mae = mean_absolute_error

# Keras's names (keras.losses.ALL_OBJECTS_DICT, case-sensitive) for the losses we have.
_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "MeanSquaredError": MeanSquaredError,
    "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "MeanAbsoluteError": MeanAbsoluteError,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "huber": Huber, "Huber": Huber,
    "binary_crossentropy": BinaryCrossentropy, "BinaryCrossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "log_cosh": LogCosh, "LogCosh": LogCosh,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "MeanAbsolutePercentageError": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "MeanSquaredLogarithmicError": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "poisson": Poisson, "Poisson": Poisson,
    "kl_divergence": KLDivergence, "KLDivergence": KLDivergence, "kld": KLDivergence,
    "KLD": KLDivergence,
    "hinge": Hinge, "Hinge": Hinge, "squared_hinge": SquaredHinge,
    "SquaredHinge": SquaredHinge,
    "cosine_similarity": CosineSimilarity, "CosineSimilarity": CosineSimilarity,
}
_BY_FUNCTION = {
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    huber: Huber, binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}


def get(identifier):
    """A Loss from a name (case-sensitive, as Keras), a Loss, a Loss class, or a function
    ``(y_true, y_pred) -> per-sample values``.

    A snake-case name gives an instance named as given: compile("mse") logs "mse".
    Our own plain functions map back to their classes, so they keep their gradients.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(
                f"Unknown loss {identifier!r}. Known names: {', '.join(sorted(_BY_NAME))}."
            )
        cls = _BY_NAME[identifier]
        return cls(name=identifier) if identifier[0].islower() else cls()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        if identifier in _BY_FUNCTION:
            return _BY_FUNCTION[identifier](name=identifier.__name__)
        return LossFunctionWrapper(identifier)
    raise TypeError(
        f"Could not interpret loss identifier {identifier!r}: expected a name, a Loss "
        "or a function (y_true, y_pred) -> per-sample losses."
    )


def binary_or_sparse(y_true_shape, y_pred_shape):
    """compile()'s guess of the label format: ``(is_binary, is_sparse_categorical)``.

    Binary if ``y_pred`` ends in 1; sparse if ``y_true`` has fewer axes than ``y_pred``,
    or ends in 1 while ``y_pred`` does not.
    """
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    is_binary = y_pred_shape[-1] == 1
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (
        y_true_shape[-1] == 1 and y_pred_shape[-1] > 1)
    return is_binary, is_sparse


def resolve_crossentropy(identifier, y_true_shape, y_pred_shape):
    """compile()'s loss lookup: "crossentropy"/"ce" (any case) picks binary, sparse or
    categorical from the shapes (binary wins); anything else goes to ``get``."""
    if str(identifier).lower() not in ("crossentropy", "ce"):
        return get(identifier)
    is_binary, is_sparse = binary_or_sparse(y_true_shape, y_pred_shape)
    if is_binary:
        return BinaryCrossentropy(name=identifier)
    if is_sparse:
        return SparseCategoricalCrossentropy(name=identifier)
    return CategoricalCrossentropy(name=identifier)


def on_keras_logits(loss):
    """The loss Keras (TensorFlow backend) evaluates when ``y_pred`` is the direct output
    of a ``sigmoid``/``softmax`` activation: the same crossentropy with ``from_logits=True``,
    to be called on the activation's *input*. None for other losses (Keras then uses
    ``y_pred`` as is). Keras does not take this path when the activation's output is
    reshaped on the way (TimeDistributed, or a trailing 1 squeezed against ``y_true (N, T)``).
    """
    if isinstance(loss, (BinaryCrossentropy, CategoricalCrossentropy)):
        return type(loss)(True, loss.label_smoothing, loss.reduction, loss.name)
    if isinstance(loss, SparseCategoricalCrossentropy):
        return SparseCategoricalCrossentropy(True, loss.reduction, loss.name)
    return None
