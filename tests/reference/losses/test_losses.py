"""Losses against real Keras (values and tf.GradientTape gradients) and finite differences."""
import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from unrolled import losses  # noqa: E402

# (name, our constructor, Keras constructor, label kind)
CASES = [
    ("mse", lambda: losses.MeanSquaredError(), lambda: keras.losses.MeanSquaredError(), "real"),
    ("mae", lambda: losses.MeanAbsoluteError(), lambda: keras.losses.MeanAbsoluteError(), "real"),
    ("huber", lambda: losses.Huber(), lambda: keras.losses.Huber(), "real"),
    ("huber_0.3", lambda: losses.Huber(delta=0.3), lambda: keras.losses.Huber(delta=0.3), "real"),
    ("bce", lambda: losses.BinaryCrossentropy(), lambda: keras.losses.BinaryCrossentropy(),
     "prob"),
    ("bce_smooth", lambda: losses.BinaryCrossentropy(label_smoothing=0.2),
     lambda: keras.losses.BinaryCrossentropy(label_smoothing=0.2), "prob"),
    ("bce_logits", lambda: losses.BinaryCrossentropy(from_logits=True),
     lambda: keras.losses.BinaryCrossentropy(from_logits=True), "prob"),
    ("bce_logits_smooth", lambda: losses.BinaryCrossentropy(True, 0.1),
     lambda: keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), "prob"),
    ("cce", lambda: losses.CategoricalCrossentropy(),
     lambda: keras.losses.CategoricalCrossentropy(), "onehot"),
    ("cce_smooth", lambda: losses.CategoricalCrossentropy(label_smoothing=0.1),
     lambda: keras.losses.CategoricalCrossentropy(label_smoothing=0.1), "onehot"),
    ("cce_logits", lambda: losses.CategoricalCrossentropy(from_logits=True),
     lambda: keras.losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    ("cce_logits_smooth", lambda: losses.CategoricalCrossentropy(True, 0.3),
     lambda: keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.3),
     "onehot"),
    ("scce", lambda: losses.SparseCategoricalCrossentropy(),
     lambda: keras.losses.SparseCategoricalCrossentropy(), "sparse"),
    ("scce_logits", lambda: losses.SparseCategoricalCrossentropy(from_logits=True),
     lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
    # issue 20.14: the rest of Keras's losses that scripts use
    ("log_cosh", lambda: losses.LogCosh(), lambda: keras.losses.LogCosh(), "real"),
    ("mape", lambda: losses.MeanAbsolutePercentageError(),
     lambda: keras.losses.MeanAbsolutePercentageError(), "real"),
    ("msle", lambda: losses.MeanSquaredLogarithmicError(),
     lambda: keras.losses.MeanSquaredLogarithmicError(), "prob"),
    ("poisson", lambda: losses.Poisson(), lambda: keras.losses.Poisson(), "prob"),
    ("kld", lambda: losses.KLDivergence(), lambda: keras.losses.KLDivergence(), "onehot"),
    ("hinge", lambda: losses.Hinge(), lambda: keras.losses.Hinge(), "binary"),
    ("squared_hinge", lambda: losses.SquaredHinge(), lambda: keras.losses.SquaredHinge(),
     "binary"),
    ("hinge_pm1", lambda: losses.Hinge(), lambda: keras.losses.Hinge(), "signs"),
    ("cosine_similarity", lambda: losses.CosineSimilarity(),
     lambda: keras.losses.CosineSimilarity(), "real"),
]
IDS = [c[0] for c in CASES]
SHAPES = [(6, 4), (3, 5, 4)]


def make_data(kind, shape, rng, dtype="float32", logits=False):
    """y_true, y_pred for one label kind; predictions are probabilities unless logits."""
    if logits:
        y_pred = rng.normal(size=shape) * 2
    elif kind in ("onehot", "sparse"):
        y_pred = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    else:
        y_pred = rng.uniform(0.02, 0.98, size=shape)
    if kind == "real":
        y_true = rng.normal(size=shape)
        y_pred = rng.normal(size=shape)
    elif kind in ("binary", "signs"):                   # hinge labels: 0/1, or -1/1
        y_true = rng.integers(0, 2, shape) * (2 if kind == "signs" else 1) - (kind == "signs")
        y_pred = rng.normal(size=shape)
    elif kind == "prob":
        y_true = rng.uniform(0, 1, size=shape)
    elif kind == "onehot":
        y_true = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    else:
        y_true = rng.integers(0, shape[-1], shape[:-1])
    y_true = y_true if kind == "sparse" else y_true.astype(dtype)
    return y_true, y_pred.astype(dtype)


def keras_value_and_grad(keras_loss, y_true, y_pred, sample_weight=None):
    var = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = keras_loss(y_true, var, sample_weight=sample_weight)
    return float(value), tape.gradient(value, var).numpy()


def weights_for(shape, rng, which):
    if which == "none":
        return None
    if which == "per_sample":  # (N,) for 2-D predictions, (N, 1) for sequences
        n = shape[0]
        return rng.uniform(0, 2, (n,) if len(shape) == 2 else (n, 1)).astype("float32")
    return rng.uniform(0, 2, shape[:-1]).astype("float32")  # one weight per value


def assert_grad_close(ours, theirs, rtol=1e-5):
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("shape", SHAPES, ids=["rank2", "rank3"])
@pytest.mark.parametrize("weights", ["none", "per_sample", "per_value"])
@pytest.mark.parametrize("name, ours, theirs, kind", CASES, ids=IDS)
def test_matches_keras(name, ours, theirs, kind, shape, weights):
    rng = np.random.default_rng(zlib.crc32(repr((name, shape, weights)).encode()))
    y_true, y_pred = make_data(kind, shape, rng, logits="logits" in name)
    sw = weights_for(shape, rng, weights)
    loss = ours()
    value, grad = keras_value_and_grad(theirs(), y_true, y_pred, sw)
    np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=sw), value, rtol=1e-6)
    ours_grad = loss.gradient(y_true, y_pred, sample_weight=sw)
    assert ours_grad.shape == y_pred.shape and ours_grad.dtype == np.float32
    assert_grad_close(ours_grad, grad)


@pytest.mark.parametrize("shape", SHAPES, ids=["rank2", "rank3"])
@pytest.mark.parametrize("name, ours, theirs, kind", CASES, ids=IDS)
def test_gradient_finite_differences_float64(name, ours, theirs, kind, shape):
    rng = np.random.default_rng(7)
    y_true, y_pred = make_data(kind, shape, rng, dtype="float64", logits="logits" in name)
    if kind == "real":  # keep away from the kinks of |e| and of Huber's switch
        y_pred = y_true + rng.choice([-1, 1], shape) * rng.uniform(0.05, 2.0, shape)
        y_pred[np.abs(np.abs(y_pred - y_true) - 0.3) < 0.02] += 0.1
        y_pred[np.abs(np.abs(y_pred - y_true) - 1.0) < 0.02] += 0.1
    sw = rng.uniform(0.5, 2, shape[:-1])
    loss = ours()
    analytic = loss.gradient(y_true, y_pred, sample_weight=sw)
    assert analytic.dtype == np.float64
    numeric = np.zeros_like(y_pred)
    h = 1e-6
    for i in np.ndindex(y_pred.shape):
        plus, minus = y_pred.copy(), y_pred.copy()
        plus[i] += h
        minus[i] -= h
        numeric[i] = (loss(y_true, plus, sw) - loss(y_true, minus, sw)) / (2 * h)
    rel = np.abs(analytic - numeric).max() / (np.abs(analytic).max() + np.abs(numeric).max())
    assert rel < 1e-6, rel


@pytest.mark.parametrize("name, ours, theirs, kind", [c for c in CASES if c[3] != "real" and
                                                      "logits" not in c[0]],
                         ids=[c[0] for c in CASES if c[3] != "real" and "logits" not in c[0]])
def test_clipped_probabilities_match_keras(name, ours, theirs, kind):
    """Predictions at 0, 1 and inside the clip margin: Keras's value, and zero gradient
    outside [eps, 1 - eps]."""
    rng = np.random.default_rng(3)
    y_true, y_pred = make_data(kind, (5, 4), rng)
    y_pred[0, 0], y_pred[1, 1], y_pred[2, 2], y_pred[3, 3] = 0.0, 1.0, 1e-9, 1 - 1e-8
    value, grad = keras_value_and_grad(theirs(), y_true, y_pred)
    loss = ours()
    np.testing.assert_allclose(loss(y_true, y_pred), value, rtol=1e-6)
    assert_grad_close(loss.gradient(y_true, y_pred), grad)


@pytest.mark.parametrize("reduction", ["sum", "mean_with_sample_weight", "mean", None])
def test_other_reductions(reduction):
    rng = np.random.default_rng(0)
    y_true, y_pred = make_data("real", (4, 3, 2), rng)
    sw = rng.uniform(0, 1, (4, 3)).astype("float32")
    ours = losses.MeanSquaredError(reduction=reduction)(y_true, y_pred, sample_weight=sw)
    theirs = keras.losses.MeanSquaredError(reduction=reduction)(y_true, y_pred, sample_weight=sw)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)
    if reduction is not None:
        _, grad = keras_value_and_grad(keras.losses.MeanSquaredError(reduction=reduction),
                                       y_true, y_pred, sw)
        loss = losses.MeanSquaredError(reduction=reduction)
        assert_grad_close(loss.gradient(y_true, y_pred, sample_weight=sw), grad)


def test_divisor_is_the_number_of_values_not_the_weight_sum():
    y_true = np.zeros((4, 1), "float32")
    y_pred = np.ones((4, 1), "float32")
    sw = np.array([1, 1, 0, 0], "float32")
    assert losses.MeanSquaredError()(y_true, y_pred, sample_weight=sw) == 0.5
    assert float(keras.losses.MeanSquaredError()(y_true, y_pred, sample_weight=sw)) == 0.5


def test_mask_matches_keras():
    from keras.src.backend import set_keras_mask

    rng = np.random.default_rng(1)
    y_true, y_pred = make_data("real", (3, 5, 2), rng)
    mask = rng.uniform(size=(3, 5)) > 0.4
    sw = rng.uniform(size=(3, 5)).astype("float32")
    for weight in (None, sw):
        var = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            pred = tf.identity(var)
            set_keras_mask(pred, tf.constant(mask))
            value = keras.losses.MeanSquaredError()(y_true, pred, sample_weight=weight)
        loss = losses.MeanSquaredError()
        np.testing.assert_allclose(loss(y_true, y_pred, weight, mask=mask), float(value),
                                   rtol=1e-6)
        assert_grad_close(loss.gradient(y_true, y_pred, weight, mask=mask),
                          tape.gradient(value, var).numpy())


def test_trailing_one_is_squeezed_like_keras():
    rng = np.random.default_rng(2)
    y_pred = rng.uniform(0.1, 0.9, (6, 1)).astype("float32")
    y_true = rng.integers(0, 2, (6,)).astype("float32")
    for ours, theirs in [(losses.BinaryCrossentropy(), keras.losses.BinaryCrossentropy()),
                         (losses.MeanSquaredError(), keras.losses.MeanSquaredError())]:
        value, grad = keras_value_and_grad(theirs, y_true, y_pred)
        np.testing.assert_allclose(ours(y_true, y_pred), value, rtol=1e-6)
        assert_grad_close(ours.gradient(y_true, y_pred), grad)
    # y_true (N, T) against y_pred (N, T, 1): y_pred loses its trailing 1
    y_pred3 = rng.uniform(0.1, 0.9, (3, 4, 1)).astype("float32")
    y_true3 = rng.integers(0, 2, (3, 4)).astype("float32")
    value, grad = keras_value_and_grad(keras.losses.BinaryCrossentropy(), y_true3, y_pred3)
    np.testing.assert_allclose(losses.BinaryCrossentropy()(y_true3, y_pred3), value, rtol=1e-6)
    assert_grad_close(losses.BinaryCrossentropy().gradient(y_true3, y_pred3), grad)
    # sparse labels with a trailing 1
    probs = rng.dirichlet(np.ones(3), 5).astype("float32")
    labels = rng.integers(0, 3, (5, 1))
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy()(labels, probs),
                               float(keras.losses.SparseCategoricalCrossentropy()(labels, probs)),
                               rtol=1e-6)


@pytest.mark.parametrize("fn, keras_fn, kind, kwargs", [
    (losses.mean_squared_error, keras.losses.mean_squared_error, "real", {}),
    (losses.mean_absolute_error, keras.losses.mean_absolute_error, "real", {}),
    (losses.huber, keras.losses.huber, "real", {"delta": 0.5}),
    (losses.binary_crossentropy, keras.losses.binary_crossentropy, "prob",
     {"label_smoothing": 0.1}),
    (losses.categorical_crossentropy, keras.losses.categorical_crossentropy, "onehot",
     {"from_logits": True}),
    (losses.sparse_categorical_crossentropy, keras.losses.sparse_categorical_crossentropy,
     "sparse", {}),
])
def test_plain_functions_return_per_sample_values(fn, keras_fn, kind, kwargs):
    rng = np.random.default_rng(4)
    y_true, y_pred = make_data(kind, (3, 4, 5), rng)
    ours = fn(y_true, y_pred, **kwargs)
    assert ours.shape == (3, 4)
    np.testing.assert_allclose(ours, np.asarray(keras_fn(y_true, y_pred, **kwargs)),
                               rtol=1e-6, atol=1e-7)


def test_on_keras_logits_reproduces_a_sigmoid_model():
    """Keras evaluates BCE on the logits of a Dense(sigmoid) output, without clipping."""
    x = np.ones((4, 1), "float32")
    y = np.zeros((4, 1), "float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=keras.initializers.Constant(50.0))])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    keras_loss = model.evaluate(x, y, verbose=0)
    logits = np.full((4, 1), 50.0, "float32")
    via_logits = losses.on_keras_logits(losses.get("binary_crossentropy"))
    np.testing.assert_allclose(via_logits(y, logits), keras_loss, rtol=1e-6)
    assert losses.BinaryCrossentropy()(y, 1 / (1 + np.exp(-logits))) < 16.2  # clipped
    assert losses.on_keras_logits(losses.MeanSquaredError()) is None


def test_dtype_follows_y_pred():
    rng = np.random.default_rng(5)
    y_true, y_pred = make_data("prob", (4, 3), rng, dtype="float64")
    grad = losses.BinaryCrossentropy().gradient(y_true, y_pred)
    assert grad.dtype == np.float64
    value = keras.losses.BinaryCrossentropy(dtype="float64")(y_true, y_pred)
    np.testing.assert_allclose(losses.BinaryCrossentropy()(y_true, y_pred), float(value),
                               rtol=1e-12)


def test_get():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert losses.get("mse").name == "mse"
    assert isinstance(losses.get("BinaryCrossentropy"), losses.BinaryCrossentropy)
    assert isinstance(losses.get("huber"), losses.Huber)
    loss = losses.CategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    assert isinstance(losses.get(losses.mean_absolute_error), losses.MeanAbsoluteError)
    custom = losses.get(lambda t, p: np.mean((t - p) ** 4, axis=-1))
    y = np.zeros((2, 3), "float32")
    assert custom(y, y + 1) == 1.0
    with pytest.raises(NotImplementedError, match="call_gradient"):
        custom.gradient(y, y + 1)
    with pytest.raises(ValueError, match="mean_squared_error") as info:
        losses.get("mean_sqared_error")
    assert "sparse_categorical_crossentropy" in str(info.value)
    with pytest.raises(TypeError):
        losses.get(42)


def test_resolve_crossentropy_like_compile():
    assert isinstance(losses.resolve_crossentropy("crossentropy", (8, 1), (8, 1)),
                      losses.BinaryCrossentropy)
    assert isinstance(losses.resolve_crossentropy("ce", (8,), (8, 5)),
                      losses.SparseCategoricalCrossentropy)
    assert isinstance(losses.resolve_crossentropy("CE", (8, 5), (8, 5)),
                      losses.CategoricalCrossentropy)


def test_bad_shapes_say_both_shapes():
    y_pred = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match=r"y_true.shape=\(4, 2\).*y_pred.shape=\(4, 3\)"):
        losses.MeanSquaredError()(np.zeros((4, 2), "float32"), y_pred)
    with pytest.raises(ValueError, match=r"y_true.shape=\(5,\).*y_pred.shape=\(4, 3\)"):
        losses.SparseCategoricalCrossentropy()(np.zeros(5), y_pred)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        losses.SparseCategoricalCrossentropy()(np.array([0, 1, 2, 3]), y_pred)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        seq = np.zeros((4, 3, 2), "float32")
        losses.MeanSquaredError()(seq, seq, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="average")
