"""SpatialDropout1D, GaussianNoise, GaussianDropout and ActivityRegularization (issue 25).

The noise layers cannot reproduce Keras's random numbers: they are checked by their
properties (the identity outside training, the noise's shape and statistics with a seeded
generator, backward reusing the forward's draws exactly, the same seed giving the same
draws), by Keras's argument checks, and in models against Keras with the noise off.
ActivityRegularization is deterministic: its penalty, gradients and fit histories equal
Keras 3's."""
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras  # the Keras 2 reference
from gradcheck import numeric_grad
from keras_ref import files_both_ways, keras

import unrolled
from unrolled.models import load_model

NOISE = {"SpatialDropout1D": 0.3, "GaussianNoise": 0.4, "GaussianDropout": 0.3}


def _noise_layer(mod, name, value, **kw):
    return getattr(mod.layers, name)(value, **kw)


# --- the noise layers: properties ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(NOISE))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_identity_outside_training(name, dtype, rng):
    x = rng.standard_normal((3, 5, 4)).astype(dtype)
    layer = _noise_layer(unrolled, name, NOISE[name], dtype=dtype)
    y, cache = layer.forward(x, training=False)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.dtype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(cache, dy)[0][0], dy)
    np.testing.assert_array_equal(layer(x), np.asarray(_noise_layer(keras, name, NOISE[name],
                                                                    dtype=dtype)(x)))
    np.testing.assert_array_equal(layer(x, training=False), x)


@pytest.mark.parametrize("name", sorted(NOISE))
def test_zero_rate_is_identity_in_training(name, rng):
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    y, _ = _noise_layer(unrolled, name, 0.0).forward(x, training=True)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("name", sorted(NOISE))
@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_argument_checks_as_keras(name, bad):
    with pytest.raises(ValueError) as theirs:
        _noise_layer(keras, name, bad)
    with pytest.raises(ValueError) as ours:
        _noise_layer(unrolled, name, bad)
    what = "stddev" if name == "GaussianNoise" else "rate"
    assert f"{what}={bad}" in str(ours.value) and f"{what}={bad}" in str(theirs.value)


@pytest.mark.parametrize("name", sorted(NOISE))
def test_same_seed_same_draws(name, rng):
    x = rng.standard_normal((4, 6, 5)).astype("float32")
    a, b, c = (_noise_layer(unrolled, name, NOISE[name], seed=s) for s in (7, 7, 8))
    ya1, yb1, yc1 = (L.forward(x, training=True)[0] for L in (a, b, c))
    ya2, yb2 = (L.forward(x, training=True)[0] for L in (a, b))
    np.testing.assert_array_equal(ya1, yb1)            # same seed: the same sequence
    np.testing.assert_array_equal(ya2, yb2)
    assert not np.allclose(ya1, ya2)                   # a new draw at every call
    assert not np.allclose(ya1, yc1)                   # another seed: other draws


@pytest.mark.parametrize("name", sorted(NOISE))
def test_masks_pass_through_as_keras(name):
    ours, theirs = _noise_layer(unrolled, name, 0.2), _noise_layer(keras, name, 0.2)
    assert ours.supports_masking is theirs.supports_masking is True
    mask = np.array([[True, False, True]])
    np.testing.assert_array_equal(ours.compute_mask(np.zeros((1, 3, 2)), mask), mask)


def test_spatial_dropout_drops_whole_channels(rng):
    rate = 0.3
    x = rng.uniform(0.5, 1.5, (200, 7, 50)).astype("float32")   # no zeros: y / x is the mask
    layer = unrolled.layers.SpatialDropout1D(rate, seed=3)
    y, cache = layer.forward(x, training=True)
    scale = y / x
    np.testing.assert_allclose(scale, scale[:, :1, :].repeat(7, axis=1), rtol=1e-6)  # over time
    kept = scale[:, 0, :] > 0
    np.testing.assert_allclose(scale[:, 0, :][kept], 1 / (1 - rate), rtol=1e-6)
    # 10,000 Bernoulli(0.3) decisions: standard deviation of the fraction 0.0046
    assert abs((~kept).mean() - rate) < 0.02
    dy = rng.standard_normal(x.shape).astype("float32")
    (dx,), dw = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, dy * scale, rtol=1e-6, atol=1e-7)   # the same mask
    assert dw == []
    np.testing.assert_array_equal(dx[~np.broadcast_to(kept[:, None, :], x.shape)], 0)


def test_spatial_dropout_rate_one_and_rank():
    x = np.ones((2, 3, 4), "float32")
    np.testing.assert_array_equal(unrolled.layers.SpatialDropout1D(1.0)(x, training=True),
                                  np.asarray(keras.layers.SpatialDropout1D(1.0)(x, training=True)))
    with pytest.raises(ValueError, match="expected ndim=3"):
        unrolled.layers.SpatialDropout1D(0.5)(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="noise_shape"):
        unrolled.layers.SpatialDropout1D(0.5, noise_shape=(None, 1, 4))
    assert (set(unrolled.layers.SpatialDropout1D(0.5, seed=2).get_config())
            == set(keras.layers.SpatialDropout1D(0.5, seed=2).get_config()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gaussian_noise_statistics_and_backward(dtype, rng):
    std = 0.4
    x = rng.standard_normal((100, 10, 100)).astype(dtype)
    layer = unrolled.layers.GaussianNoise(std, seed=1, dtype=dtype)
    y, cache = layer.forward(x, training=True)
    assert y.dtype == np.dtype(dtype)
    n = (y - x).astype("float64")
    # 100,000 draws: the mean's standard deviation is 0.0013, the std's 0.0009
    assert abs(n.mean()) < 0.006 and abs(n.std() - std) < 0.005
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(cache, dy)[0][0], dy)   # y = x + n


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gaussian_dropout_statistics_and_backward(dtype, rng):
    rate = 0.3
    x = rng.uniform(0.5, 1.5, (100, 10, 100)).astype(dtype)
    layer = unrolled.layers.GaussianDropout(rate, seed=2, dtype=dtype)
    y, cache = layer.forward(x, training=True)
    assert y.dtype == np.dtype(dtype)
    m = (y / x).astype("float64")
    want = np.sqrt(rate / (1 - rate))                       # 0.655
    # 100,000 draws: the mean's standard deviation is 0.0021, the std's 0.0015
    assert abs(m.mean() - 1) < 0.01 and abs(m.std() - want) < 0.008
    dy = rng.standard_normal(x.shape).astype(dtype)
    (dx,), _ = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, dy * m, rtol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", sorted(NOISE))
def test_model_gradients_with_noise_finite_differences_float64(name, rng):
    """In a model, in training: backward uses the forward's draws (the generator is reset
    to the same state before every forward, so the finite differences see the same noise)."""
    f64 = dict(dtype="float64")
    noise = _noise_layer(unrolled, name, NOISE[name], seed=0, **f64)
    model = unrolled.Sequential([unrolled.Input((4, 3), **f64),
                                 unrolled.layers.LSTM(3, return_sequences=True, **f64), noise,
                                 unrolled.layers.Dense(2, **f64)])
    x = rng.standard_normal((5, 4, 3))
    dy = rng.standard_normal((5, 4, 2))

    def run():
        noise._generator = np.random.default_rng(5)
        return model.forward(x, training=True)

    def f():
        return float(np.sum(run()[0] * dy))

    y, tape = run()
    assert not np.allclose(y, model.predict(x, verbose=0))      # the noise is on
    (dx,), dweights = model.backward(tape, dy)
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-9)
    for w, g in zip(model.weights, dweights):
        np.testing.assert_allclose(g, numeric_grad(f, w.value), rtol=1e-6, atol=1e-9)


def test_gaussian_dropout_rate_one_refused_in_training():
    layer = unrolled.layers.GaussianDropout(1.0)        # accepted, as Keras accepts it
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(layer(x), x)
    with pytest.raises(ValueError, match="rate=1"):
        layer(x, training=True)


# --- ActivityRegularization -------------------------------------------------------------------
AR_ARGS = [(0.1, 0.0), (0.0, 0.2), (0.05, 0.3), (0.0, 0.0)]


@pytest.mark.parametrize("l1,l2", AR_ARGS)
@pytest.mark.parametrize("shape", [(4, 6), (3, 5, 4)])
def test_activity_penalty_and_gradient_equal_keras(l1, l2, shape, rng):
    x = rng.standard_normal(shape).astype("float32")
    dy = rng.standard_normal(shape).astype("float32")
    ours = unrolled.layers.ActivityRegularization(l1=l1, l2=l2)
    y = ours(x)
    np.testing.assert_array_equal(y, x)
    theirs = keras.layers.ActivityRegularization(l1=l1, l2=l2)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = theirs(xt)
        loss = tf.reduce_sum(out * dy) + tf.add_n([tf.cast(0.0, tf.float32)] + theirs.losses)
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-6,
                               atol=1e-8)
    (dx,), _ = ours.gradients(x, dy)
    np.testing.assert_allclose(dx, tape.gradient(loss, xt).numpy(), rtol=5e-5, atol=1e-7)
    assert len(ours.losses) == 1                           # a second call replaces it
    ours(x)
    assert len(ours.losses) == 1


def test_activity_gradient_finite_differences_float64(rng):
    layer = unrolled.layers.ActivityRegularization(l1=0.3, l2=0.2, dtype="float64")
    x = rng.standard_normal((3, 4, 5))                     # no entry at 0 (|x| is smooth)
    dy = rng.standard_normal(x.shape)

    def f():
        y, _ = layer.forward(x)
        return float(np.sum(y * dy)) + layer.losses[-1]

    _, cache = layer.forward(x)
    (dx,), _ = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-8)


def test_activity_regularization_checks_arguments():
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError):
            keras.layers.ActivityRegularization(l1=bad)
        with pytest.raises(ValueError):
            unrolled.layers.ActivityRegularization(l1=bad)
    layer = unrolled.layers.ActivityRegularization(l2=0.5)
    assert layer.supports_masking and keras.layers.ActivityRegularization().supports_masking


# --- models against Keras ----------------------------------------------------------------------
def _embedding_spatial_gru(m, rate=0.0):
    return m.Sequential([m.Input((7,), dtype="int32"), m.layers.Embedding(20, 6),
                         m.layers.SpatialDropout1D(rate, seed=1), m.layers.GRU(5),
                         m.layers.Dense(2)])


def _lstm_noise(m, stddev=0.0):
    return m.Sequential([m.Input((6, 3)), m.layers.LSTM(5, return_sequences=True),
                         m.layers.GaussianNoise(stddev, seed=1), m.layers.LSTM(4),
                         m.layers.Dense(2)])


def _lstm_gaussian_dropout(m, rate=0.0):
    return m.Sequential([m.Input((6, 3)), m.layers.LSTM(5), m.layers.GaussianDropout(rate),
                         m.layers.Dense(2)])


def _lstm_activity(m, l1=0.01, l2=0.05, l2_last=0.02):
    return m.Sequential([m.Input((6, 3)), m.layers.LSTM(5, return_sequences=True),
                         m.layers.ActivityRegularization(l1=l1, l2=l2), m.layers.LSTM(4),
                         m.layers.ActivityRegularization(l2=l2_last), m.layers.Dense(2)])


def _lstm_activity_functional(m):
    x = m.Input((6, 3))
    h = m.layers.LSTM(5)(x)
    h = m.layers.ActivityRegularization(l1=0.02, l2=0.1)(h)
    return m.Model(x, m.layers.Dense(2)(h))


def _activity_shared_and_nested(m):
    inner = m.Sequential([m.Input((6, 3)), m.layers.LSTM(5, return_sequences=True),
                          m.layers.ActivityRegularization(l1=0.03, l2=0.01)])
    shared = m.layers.ActivityRegularization(l2=0.2)          # called twice: two penalties
    x = m.Input((6, 3))
    h1 = shared(m.layers.LSTM(3)(inner(x)))
    h2 = shared(m.layers.GRU(3)(x))
    return m.Model(x, m.layers.Dense(2)(m.layers.Concatenate()([h1, h2])))


MODELS = {"embedding-spatialdropout-gru": _embedding_spatial_gru, "lstm-noise": _lstm_noise,
          "lstm-gaussiandropout": _lstm_gaussian_dropout, "lstm-activity": _lstm_activity,
          "lstm-activity-functional": _lstm_activity_functional,
          "activity-shared-and-nested": _activity_shared_and_nested}


def _data(kind, rng, n=20):
    if kind.startswith("embedding"):
        x = rng.integers(0, 20, (n, 7)).astype("int32")
    else:
        x = rng.standard_normal((n, 6, 3)).astype("float32")
    return x, rng.standard_normal((n, 2)).astype("float32")


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fit_equals_keras(kind, rng):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    x, y = _data(kind, rng)
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.03), loss="mse")
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)   # a last batch of 4
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0, batch_size=8),
                               theirs.evaluate(x, y, verbose=0, batch_size=8), rtol=1e-5)
    np.testing.assert_allclose(ours.train_on_batch(x[:5], y[:5]),
                               float(theirs.train_on_batch(x[:5], y[:5])), rtol=1e-5)
    theirs(x[:5])                                  # Keras's losses: those of the last call
    ours.evaluate(x[:5], y[:5], verbose=0)         # (ours: of the last step, all calls)
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-5,
                               atol=1e-8)


def test_activity_penalty_is_in_the_loss(rng):
    x, y = _data("lstm", rng)
    with_reg, without = _lstm_activity(unrolled), _lstm_activity(unrolled, 0.0, 0.0, 0.0)
    without.set_weights(with_reg.get_weights())
    for model in (with_reg, without):
        model.compile(optimizer="sgd", loss="mse")
    gap = with_reg.evaluate(x, y, verbose=0) - without.evaluate(x, y, verbose=0)
    assert gap > 1e-3 and len(with_reg.losses) == 2
    np.testing.assert_allclose(gap, sum(with_reg.losses), rtol=1e-5)
    (_, *grads_with), (_, *grads_without) = (m.gradients(x, y) for m in (with_reg, without))
    assert any(not np.allclose(a, b) for a, b in zip(grads_with[0], grads_without[0]))


@pytest.mark.parametrize("kind,make", [("embedding", lambda m: _embedding_spatial_gru(m, 0.5)),
                                       ("lstm", lambda m: _lstm_noise(m, 0.5)),
                                       ("lstm", lambda m: _lstm_gaussian_dropout(m, 0.5))])
def test_noisy_models_train_and_infer_as_without_noise(kind, make, rng):
    ours, theirs = make(unrolled), make(keras)
    ours.set_weights(theirs.get_weights())
    x, y = _data(kind, rng)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    before = ours.get_weights()
    ours.compile(optimizer="adam", loss="mse")
    history = ours.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert any(not np.allclose(a, b) for a, b in zip(before, ours.get_weights()))
    theirs.set_weights(ours.get_weights())                  # inference: still the identity
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    y_pred, _ = ours.forward(x, training=True)            # training draws noise
    assert not np.allclose(y_pred, ours.predict(x, verbose=0), rtol=1e-3, atol=1e-4)


def test_activity_regularization_inside_a_wrapper_is_refused(rng):
    model = unrolled.Sequential([unrolled.Input((4, 3)), unrolled.layers.TimeDistributed(
        unrolled.layers.ActivityRegularization(l2=0.1)), unrolled.layers.LSTM(2)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="TimeDistributed"):
        model.fit(rng.standard_normal((4, 4, 3)), rng.standard_normal((4, 2)), verbose=0)


# --- files -------------------------------------------------------------------------------------
FILE_MODELS = {"spatial": lambda m: _embedding_spatial_gru(m, 0.25),
               "noise": lambda m: _lstm_noise(m, 0.2),
               "gaussian-dropout": lambda m: _lstm_gaussian_dropout(m, 0.4),
               "activity": _lstm_activity}


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("kind", sorted(FILE_MODELS))
def test_files_both_ways(kind, ext, rng, tmp_path, shared):
    if ("files", kind) not in shared:           # one Keras model and run for both formats
        theirs, ours = FILE_MODELS[kind](keras), FILE_MODELS[kind](unrolled)
        ours.set_weights([w * 1.5 for w in theirs.get_weights()])   # ours differ from theirs
        x, _ = _data("embedding" if kind == "spatial" else "lstm", rng)
        shared["files", kind] = theirs, ours, x, theirs.predict(x, verbose=0)
    theirs, ours, x, want = shared["files", kind]
    back_theirs, back_ours = files_both_ways(theirs, ours, x, tmp_path, ext, want=want)
    for a, b in zip(back_theirs.layers, theirs.layers):
        assert type(a).__name__ == type(b).__name__
        for key in ("rate", "stddev", "seed", "l1", "l2"):
            if hasattr(b, key):
                assert getattr(a, key) == getattr(b, key), key


def test_tf_keras_h5_loads(rng, tmp_path):
    k2 = tf_keras
    model = k2.Sequential([k2.layers.Embedding(20, 6, input_length=7),
                           k2.layers.SpatialDropout1D(0.2), k2.layers.GRU(5, return_sequences=True),
                           k2.layers.GaussianNoise(0.1), k2.layers.LSTM(4),
                           k2.layers.GaussianDropout(0.3),
                           k2.layers.ActivityRegularization(l1=0.01, l2=0.02), k2.layers.Dense(2)])
    model.build((None, 7))
    x = rng.integers(0, 20, (6, 7)).astype("int32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / "k2.h5")
    back = load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert [type(layer).__name__ for layer in back.layers][1:4] == [
        "SpatialDropout1D", "GRU", "GaussianNoise"]


# --- exports that do not cover these layers ------------------------------------------------------
@pytest.mark.parametrize("name", ["SpatialDropout1D", "GaussianNoise", "GaussianDropout",
                                  "ActivityRegularization"])
def test_exports_refuse_by_name(name, tmp_path):
    layer = (unrolled.layers.ActivityRegularization(l2=0.1) if name == "ActivityRegularization"
             else getattr(unrolled.layers, name)(0.2))
    model = unrolled.Sequential([unrolled.Input((4, 3)), unrolled.layers.LSTM(3,
                                 return_sequences=True), layer, unrolled.layers.Dense(2)])
    from unrolled.interop import to_torch
    # to_onnx and to_numpy_code export it as the identity (test_interop_onnx_layers.py,
    # test_explain_layers.py); to_torch maps no module to it.
    with pytest.raises((ValueError, NotImplementedError), match=name):
        to_torch(model)
