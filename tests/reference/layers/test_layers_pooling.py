"""MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D, GlobalAveragePooling1D, UpSampling1D,
ZeroPadding1D and Cropping1D (issue 25) against Keras 3: outputs and input gradients
(tf.GradientTape on ``sum(out * dy)``), with ties where max pooling must choose as TensorFlow
does; masks as Keras (GlobalAveragePooling1D averages the unmasked steps and consumes the
mask, the others drop it with a warning); float64 finite differences; argument checks;
recurrent models trained in both; files both ways (.keras, .h5, tf_keras .h5); exports
refused by name."""
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras  # the Keras 2 reference (make installs it)
from conftest import varied
from gradcheck import numeric_grad
from keras_ref import keras

import unrolled
from unrolled.models import load_model

CASES = [
    ("MaxPooling1D", dict()),
    ("MaxPooling1D", dict(pool_size=3, strides=1)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same")),
    ("MaxPooling1D", dict(pool_size=4, strides=3, padding="same")),
    ("MaxPooling1D", dict(pool_size=[2], strides=[3], padding="valid")),
    ("AveragePooling1D", dict(pool_size=2)),
    ("AveragePooling1D", dict(pool_size=3, strides=1)),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same")),
    ("AveragePooling1D", dict(pool_size=4, strides=1, padding="same")),
    ("GlobalMaxPooling1D", dict()),
    ("GlobalMaxPooling1D", dict(keepdims=True)),
    ("GlobalAveragePooling1D", dict()),
    ("GlobalAveragePooling1D", dict(keepdims=True)),
    ("UpSampling1D", dict(size=3)),
    ("UpSampling1D", dict()),
    ("ZeroPadding1D", dict(padding=(1, 2))),
    ("ZeroPadding1D", dict(padding=2)),
    ("Cropping1D", dict(cropping=(2, 1))),
    ("Cropping1D", dict(cropping=(0, 3))),
]
IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in CASES]


def _keras_run(layer, x, dy, mask=None):
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = layer(xv) if mask is None else layer(xv, mask=mask)
        loss = tf.reduce_sum(out * dy)
    return out.numpy(), tape.gradient(loss, xv).numpy()


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_outputs_and_gradients_equal_keras(name, kw, ties, rng):
    if ties:               # small integers: windows hold equal maxima, the gradient must choose
        x = rng.integers(-2, 3, (3, 11, 4)).astype("float32")
    else:
        x = rng.standard_normal((3, 11, 4)).astype("float32")
    ours = getattr(unrolled.layers, name)(**kw)
    theirs = getattr(keras.layers, name)(**kw)
    y, cache = ours.forward(x)
    np.testing.assert_array_equal(ours(x), y)                # the eager call is forward
    assert y.shape[1:] == ours.compute_output_shape((None, 11, 4))[1:]
    dy = rng.standard_normal(y.shape).astype("float32")
    want_y, want_dx = _keras_run(theirs, x, dy)
    assert y.shape == want_y.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6)
    (dx,), dweights = ours.backward(cache, dy)
    assert dweights == [] and dx.shape == x.shape and dx.dtype == np.float32
    np.testing.assert_allclose(dx, want_dx, rtol=5e-5, atol=5e-6)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling_averages_unmasked_steps_as_keras(keepdims, rng):
    x = rng.standard_normal((4, 9, 3)).astype("float32")
    mask = rng.random((4, 9)) > 0.4
    mask[:, 0] = True
    ours = unrolled.layers.GlobalAveragePooling1D(keepdims=keepdims)
    y, cache = ours.forward(x, mask=mask)
    dy = rng.standard_normal(y.shape).astype("float32")
    want_y, want_dx = _keras_run(keras.layers.GlobalAveragePooling1D(keepdims=keepdims), x, dy,
                                 mask=mask)
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.backward(cache, dy)[0][0], want_dx, rtol=1e-6, atol=1e-7)
    assert ours.compute_mask(x, mask) is None


def test_global_average_pooling_with_every_step_masked_gives_nan_as_keras(rng):
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    mask = np.array([[True, False, True, False, False], [False] * 5])
    ours = unrolled.layers.GlobalAveragePooling1D()
    y, cache = ours.forward(x, mask=mask)
    dy = rng.standard_normal(y.shape).astype("float32")
    want_y, want_dx = _keras_run(keras.layers.GlobalAveragePooling1D(), x, dy, mask=mask)
    assert np.isnan(y[1]).all() and np.isnan(want_y[1]).all()
    np.testing.assert_allclose(y[0], want_y[0], rtol=1e-6)
    np.testing.assert_allclose(ours.backward(cache, dy)[0][0], want_dx, rtol=1e-6, atol=1e-7)


def test_mask_support_flags_equal_keras():
    for name, kw in CASES:
        assert (getattr(unrolled.layers, name)(**kw).supports_masking
                == getattr(keras.layers, name)(**kw).supports_masking), name


def _gmp_after_mask(m):
    i = m.Input((7,), dtype="int32")
    h = m.layers.Embedding(10, 3, mask_zero=True)(i)
    h = m.layers.LSTM(4, return_sequences=True)(h)
    return m.Model(i, m.layers.GlobalMaxPooling1D()(h))


def test_global_max_pooling_drops_a_mask_with_a_warning_as_keras(rng):
    with pytest.warns(UserWarning, match="does not support masking"):
        theirs = _gmp_after_mask(keras)
    with pytest.warns(UserWarning, match="does not support masking"):
        ours = _gmp_after_mask(unrolled)
        ours.set_weights(theirs.get_weights())
        x = rng.integers(1, 10, (5, 7)).astype("int32")
        x[:, 4:] = 0                  # masked steps: the LSTM repeats its state, the max sees them
        got = ours.predict(x, verbose=0)
    np.testing.assert_allclose(got, theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kw", [c for c in CASES if c[0] != "UpSampling1D" or c[1]],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] != "UpSampling1D" or c[1]])
def test_finite_differences_float64(name, kw, rng):
    x = rng.standard_normal((2, 10, 3))              # distinct values: max is differentiable
    layer = getattr(unrolled.layers, name)(dtype="float64", **kw)
    mask = None
    if name == "GlobalAveragePooling1D":
        mask = rng.random((2, 10)) > 0.3
        mask[:, 0] = True
    y, cache = layer.forward(x, mask=mask)
    assert y.dtype == np.float64
    dy = rng.standard_normal(y.shape)
    (dx,), _ = layer.backward(cache, dy)

    def f():
        return float(np.sum(layer.forward(x, mask=mask)[0] * dy))
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-9)


def test_output_shapes_and_configs_equal_keras():
    for name, kw in CASES:
        ours, theirs = getattr(unrolled.layers, name)(**kw), getattr(keras.layers, name)(**kw)
        for shape in [(None, 11, 4), (2, None, 3)]:
            assert (tuple(ours.compute_output_shape(shape))
                    == tuple(theirs.compute_output_shape(shape))), (name, kw, shape)
        mine, want = ours.get_config(), theirs.get_config()
        for key in set(want) - {"name", "dtype", "trainable"}:
            assert np.array_equal(np.atleast_1d(mine[key]), np.atleast_1d(want[key])), key
        # automatic names as Keras's: max_pooling1d, up_sampling1d, cropping1d, ...
        assert ours.name.rstrip("_0123456789") == theirs.name.rstrip("_0123456789")
        assert ours.name.rstrip("_0123456789").endswith("1d")


@pytest.mark.parametrize("name, kwargs, error, match", [
    ("MaxPooling1D", dict(pool_size=0), ValueError, "pool_size"),
    ("MaxPooling1D", dict(pool_size=(2, 2)), ValueError, "pool_size"),
    ("AveragePooling1D", dict(pool_size=2, padding="causal"), ValueError, "padding"),
    ("MaxPooling1D", dict(data_format="channels_first"), NotImplementedError, "channels_first"),
    ("GlobalAveragePooling1D", dict(data_format="channels_first"), NotImplementedError,
     "channels_first"),
    ("GlobalMaxPooling1D", dict(data_format="channels_middle"), ValueError, "data_format"),
    ("UpSampling1D", dict(size=0), ValueError, "size"),
    ("UpSampling1D", dict(size=1.5), TypeError, "integer"),
    ("ZeroPadding1D", dict(padding=-1), ValueError, "padding"),
    ("ZeroPadding1D", dict(padding=(1, 2, 3)), ValueError, "padding"),
    ("Cropping1D", dict(cropping=(1, -1)), ValueError, "cropping"),
])
def test_arguments_are_checked(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(unrolled.layers, name)(**kwargs)
    if error is not NotImplementedError:     # Keras refuses too (padding: TensorFlow, called)
        with pytest.raises(Exception):
            getattr(keras.layers, name)(**kwargs)(np.zeros((1, 6, 2), "float32"))


def test_short_inputs_are_refused():
    with pytest.raises(ValueError, match="must be smaller than the input length"):
        unrolled.layers.Cropping1D((2, 3))(np.zeros((1, 5, 2), "float32"))
    with pytest.raises(ValueError, match="fewer than the window"):
        unrolled.layers.MaxPooling1D(4)(np.zeros((1, 3, 2), "float32"))
    with pytest.raises(TypeError, match="average_pooling|pool_size"):
        unrolled.layers.AveragePooling1D()                   # no default, as Keras


def _masked_average(m):
    L = m.layers
    return m.Sequential([m.Input((10,), dtype="int32"), L.Embedding(9, 4, mask_zero=True),
                         L.LSTM(5, return_sequences=True), L.GlobalAveragePooling1D(),
                         L.Dense(1)])


def _shifting(m):
    L = m.layers
    i = m.Input((12, 3))
    h = L.ZeroPadding1D((2, 1))(i)
    h = L.AveragePooling1D(3, strides=2, padding="same")(h)
    h = L.UpSampling1D(2)(h)
    h = L.Cropping1D((1, 2))(h)
    h = L.GRU(4, return_sequences=True)(h)
    h = L.MaxPooling1D(3, strides=2, padding="same")(h)
    h = L.SimpleRNN(3, return_sequences=True)(h)
    h = L.Concatenate()([L.GlobalMaxPooling1D()(h), L.GlobalAveragePooling1D()(h)])
    return m.Model(i, L.Dense(2)(h))


def _data(kind, rng):
    if kind == "embedding-lstm-gap":
        x = rng.integers(1, 9, (16, 10)).astype("int32")
        for row, n in zip(x, rng.integers(3, 10, 16)):
            row[n:] = 0                                      # padding the mask hides
        return x, rng.standard_normal((16, 1)).astype("float32")
    return (rng.standard_normal((16, 12, 3)).astype("float32"),
            rng.standard_normal((16, 2)).astype("float32"))


MODELS = {"embedding-lstm-gap": _masked_average, "pad-pool-upsample-crop-gru": _shifting}


@pytest.mark.parametrize("kind", MODELS)
def test_fit_equals_keras(kind, rng):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    x, y = _data(kind, rng)
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.01), loss="mse")
    kw = dict(epochs=3, batch_size=4, shuffle=False, verbose=0)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[-1] < got[0]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def _file_case(kind, rng):
    """Keras's model with varied weights, ours with a copy, the input, Keras's prediction."""
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    for w in theirs.weights:
        w.assign(varied(rng, *w.shape))
    ours.set_weights(theirs.get_weights())
    x, _ = _data(kind, rng)
    return theirs, ours, x, theirs.predict(x, verbose=0)


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("kind", MODELS)
def test_files_both_ways(kind, ext, rng, tmp_path, shared):
    if ("files", kind) not in shared:           # one Keras run for both formats
        shared["files", kind] = _file_case(kind, rng)
    theirs, ours, x, want = shared["files", kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.save(tmp_path / f"theirs.{ext}")
        ours.save(tmp_path / f"ours.{ext}")
        mine = load_model(tmp_path / f"theirs.{ext}")
        back = keras.models.load_model(tmp_path / f"ours.{ext}")
    assert [type(layer).__name__ for layer in mine.layers] == [
        type(layer).__name__ for layer in theirs.layers]
    np.testing.assert_allclose(mine.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_tf_keras_h5_loads(rng, tmp_path):
    L = tf_keras.layers
    i = L.Input((12, 3))
    h = L.ZeroPadding1D((2, 1))(i)
    h = L.MaxPooling1D(3, strides=2, padding="same")(h)
    h = L.UpSampling1D(3)(h)
    h = L.Cropping1D((1, 2))(h)
    h = L.AveragePooling1D(2, padding="same")(h)
    h = L.LSTM(4, return_sequences=True)(h)
    h = L.Concatenate()([L.GlobalMaxPooling1D()(h), L.GlobalAveragePooling1D(keepdims=False)(h)])
    theirs = tf_keras.Model(i, L.Dense(2)(h))
    for w in theirs.weights:
        w.assign(varied(rng, *w.shape))
    theirs.save(tmp_path / "k2.h5")
    x = rng.standard_normal((5, 12, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_exports_refuse_pooling_layers_by_name(tmp_path):
    L = unrolled.layers
    model = unrolled.Sequential([unrolled.Input((6, 3)), L.LSTM(4, return_sequences=True),
                                 L.GlobalMaxPooling1D(), L.Dense(1)])
    # to_onnx and to_numpy_code export it (test_interop_onnx_layers.py,
    # test_explain_layers.py); PyTorch has no module of that name to map it to.
    with pytest.raises(ValueError, match="GlobalMaxPooling1D"):
        unrolled.interop.to_torch(model)
