"""Conv1D and SeparableConv1D (issue 25) against Keras 3: outputs, input/kernel/bias gradients (tf.GradientTape on
``sum(out * dy)``) over padding valid/same/causal, strides, dilation, groups, activations;
float64 finite differences; argument checks; a mask reaching it dropped with a warning as in
Keras; models with recurrent layers trained in both (Adam, ``shuffle=False``); files both ways
(.keras, legacy .h5, and a tf_keras .h5); exports refused by name."""
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras  # the Keras 2 reference (make installs it)
from conftest import varied
from gradcheck import numeric_grad
from keras_ref import keras

import unrolled
from unrolled.io.safety import UnsupportedModelError
from unrolled.models import load_model

CASES = [
    dict(kernel_size=3),
    dict(kernel_size=[3], strides=2),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=3, padding="same", strides=2),
    dict(kernel_size=4, padding="same", strides=3),          # odd total padding: more on the right
    dict(kernel_size=2, padding="same"),
    dict(kernel_size=3, padding="causal", dilation_rate=2),
    dict(kernel_size=2, padding="causal", strides=2),
    dict(kernel_size=3, padding="valid", dilation_rate=3, activation="tanh"),
    dict(kernel_size=3, padding="same", dilation_rate=2, groups=2, activation="relu"),
    dict(kernel_size=1, groups=4, use_bias=False),
    dict(kernel_size=5, padding="SAME", activation="sigmoid"),
]


def _pair(kw, x_shape, rng, filters=8, dtype="float32"):
    theirs = keras.layers.Conv1D(filters, dtype=dtype, **kw)
    theirs.build(x_shape)
    weights = [varied(rng, *w.shape).astype(dtype) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = unrolled.layers.Conv1D(filters, dtype=dtype, **kw)
    ours.build(x_shape)
    ours.set_weights(weights)
    return ours, theirs


def _keras_grads(layer, x, dy):
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = layer(xv)
        loss = tf.reduce_sum(out * dy)
    grads = tape.gradient(loss, [xv] + list(layer.trainable_weights))
    return out.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_outputs_and_gradients_equal_keras(kw, rng):
    x = rng.standard_normal((3, 13, 4)).astype("float32")
    ours, theirs = _pair(kw, x.shape, rng)
    y, cache = ours.forward(x)
    assert y.shape[1:] == ours.compute_output_shape((None, 13, 4))[1:]
    dy = rng.standard_normal(y.shape).astype("float32")
    want_y, want = _keras_grads(theirs, x, dy)
    assert y.shape == want_y.shape and y.dtype == np.float32
    scale = np.abs(want_y).max()
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6 * scale)
    dx, dweights = ours.backward(cache, dy)
    assert len(dweights) == len(want) - 1
    for got, ref in zip(dx + dweights, want):
        np.testing.assert_allclose(got, ref, rtol=5e-5, atol=5e-5 * np.abs(ref).max())


@pytest.mark.parametrize("kw", [CASES[3], CASES[4], CASES[6], CASES[9], CASES[10]],
                         ids=["same-s2", "same-s3-k4", "causal-d2", "groups-d2", "pointwise"])
def test_finite_differences_float64(kw, rng):
    x = rng.standard_normal((2, 9, 4))
    layer = unrolled.layers.Conv1D(4, dtype="float64", **{**kw, "activation": "tanh"})
    layer.build(x.shape)
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape) * 0.5)
    y, cache = layer.forward(x)
    assert y.dtype == np.float64 and all(w.value.dtype == np.float64 for w in layer.weights)
    dy = rng.standard_normal(y.shape)
    dx, dweights = layer.backward(cache, dy)

    def f():
        return float(np.sum(layer.forward(x)[0] * dy))
    np.testing.assert_allclose(dx[0], numeric_grad(f, x), rtol=1e-6, atol=1e-9)
    for w, g in zip(layer.weights, dweights):
        np.testing.assert_allclose(g, numeric_grad(f, w.value), rtol=1e-6, atol=1e-9)


SEPARABLE = [
    dict(kernel_size=3),
    dict(kernel_size=3, padding="same", strides=2),
    dict(kernel_size=4, padding="same", strides=3, depth_multiplier=2),
    dict(kernel_size=3, padding="same", dilation_rate=2, depth_multiplier=2, activation="tanh"),
    dict(kernel_size=2, strides=3, depth_multiplier=3, use_bias=False),
]


@pytest.mark.parametrize("kw", SEPARABLE,
                         ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_separable_outputs_and_gradients_equal_keras(kw, rng):
    x = rng.standard_normal((3, 13, 4)).astype("float32")
    theirs = keras.layers.SeparableConv1D(6, **kw)
    theirs.build(x.shape)
    theirs.set_weights([varied(rng, *w.shape) for w in theirs.get_weights()])
    ours = unrolled.layers.SeparableConv1D(6, **kw)
    ours.build(x.shape)
    ours.set_weights(theirs.get_weights())
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    y, cache = ours.forward(x)
    dy = rng.standard_normal(y.shape).astype("float32")
    want_y, want = _keras_grads(theirs, x, dy)
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6 * np.abs(want_y).max())
    dx, dweights = ours.backward(cache, dy)
    assert len(dweights) == len(want) - 1
    for got, ref in zip(dx + dweights, want):
        np.testing.assert_allclose(got, ref, rtol=5e-5, atol=5e-5 * np.abs(ref).max())
    assert ours.compute_output_shape((None, 13, 4)) == tuple(
        theirs.compute_output_shape((None, 13, 4)))


@pytest.mark.parametrize("kw", SEPARABLE[1:4], ids=["same-s2", "same-s3-m2", "same-d2-m2"])
def test_separable_finite_differences_float64(kw, rng):
    x = rng.standard_normal((2, 9, 3))
    layer = unrolled.layers.SeparableConv1D(4, dtype="float64", **{**kw, "activation": "tanh"})
    layer.build(x.shape)
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape) * 0.5)
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx, dweights = layer.backward(cache, dy)

    def f():
        return float(np.sum(layer.forward(x)[0] * dy))
    np.testing.assert_allclose(dx[0], numeric_grad(f, x), rtol=1e-6, atol=1e-9)
    for w, g in zip(layer.weights, dweights):
        np.testing.assert_allclose(g, numeric_grad(f, w.value), rtol=1e-6, atol=1e-9)


def test_separable_arguments_are_checked():
    with pytest.raises(ValueError, match="padding"):
        unrolled.layers.SeparableConv1D(4, 3, padding="causal")
    with pytest.raises(ValueError):
        keras.layers.SeparableConv1D(4, 3, padding="causal")
    with pytest.raises(ValueError, match="depth_multiplier"):
        unrolled.layers.SeparableConv1D(4, 3, depth_multiplier=0)
    with pytest.raises(NotImplementedError, match="dilation_rate"):
        unrolled.layers.SeparableConv1D(4, 3, strides=2, dilation_rate=2)
    layer = unrolled.layers.SeparableConv1D(4, 3, depthwise_regularizer="l2",
                                            pointwise_constraint="non_neg")
    layer.build((None, 6, 2))
    assert layer.depthwise_kernel.regularizer is not None
    assert layer.pointwise_kernel.constraint is not None and layer.bias.regularizer is None


def test_float64_layer_equals_keras_float64(rng):
    x = rng.standard_normal((2, 10, 4))
    ours, theirs = _pair(dict(kernel_size=3, padding="causal", dilation_rate=2), x.shape, rng,
                         dtype="float64")
    np.testing.assert_allclose(ours(x), theirs(x).numpy(), rtol=1e-12, atol=1e-12)


def test_weights_names_shapes_config_as_keras():
    theirs = keras.layers.Conv1D(6, 3, groups=2, kernel_regularizer="l2",
                                 bias_constraint=keras.constraints.NonNeg())
    ours = unrolled.layers.Conv1D(6, 3, groups=2, kernel_regularizer="l2",
                                  bias_constraint=unrolled.constraints.NonNeg())
    theirs.build((None, 7, 4))
    ours.build((None, 7, 4))
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights] == ["kernel", "bias"]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert ours.name.startswith("conv1d") and theirs.name.startswith("conv1d")
    assert ours.kernel.regularizer is not None and ours.bias.constraint is not None
    for shape in [(None, 7, 4), (None, None, 4), (2, 1, 4)]:
        for kw in CASES[:8]:
            try:
                want = tuple(keras.layers.Conv1D(5, **kw).compute_output_shape(shape))
            except ValueError:                  # too short for a valid window: both refuse
                with pytest.raises(ValueError, match="fewer than the window"):
                    unrolled.layers.Conv1D(5, **kw).compute_output_shape(shape)
                continue
            assert unrolled.layers.Conv1D(5, **kw).compute_output_shape(shape) == want
    mine = ours.get_config()
    for key in ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
                "filters", "use_bias"):
        assert tuple(np.atleast_1d(mine[key])) == tuple(np.atleast_1d(theirs.get_config()[key]))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(filters=0, kernel_size=3), ValueError, "filters"),
    (dict(filters=4, kernel_size=0), ValueError, "kernel_size"),
    (dict(filters=4, kernel_size=(3, 3)), ValueError, "kernel_size"),
    (dict(filters=4, kernel_size=3, strides=0), ValueError, "strides"),
    (dict(filters=5, kernel_size=3, groups=2), ValueError, "divisible"),
    (dict(filters=4, kernel_size=3, groups=0), ValueError, "groups"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), ValueError, "dilation_rate"),
    (dict(filters=4, kernel_size=3, padding="full"), ValueError, "padding"),
    (dict(filters=4, kernel_size=3, data_format="channels_first"), NotImplementedError,
     "channels_first"),
    (dict(filters=4, kernel_size=3, activity_regularizer="OrthogonalRegularizer"),
     NotImplementedError, "OrthogonalRegularizer"),
    (dict(filters=4, kernel_size=3, lora_rank=2), NotImplementedError, "lora_rank"),
])
def test_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        unrolled.layers.Conv1D(**kwargs)
    if error is ValueError:                               # Keras refuses them too
        with pytest.raises(ValueError):
            keras.layers.Conv1D(**kwargs)


def test_input_channels_must_divide_into_groups_and_input_must_be_long_enough():
    with pytest.raises(ValueError, match="evenly divisible"):
        unrolled.layers.Conv1D(4, 3, groups=2).build((None, 5, 3))
    with pytest.raises(ValueError, match="fewer than the window"):
        unrolled.layers.Conv1D(4, 5)(np.zeros((1, 3, 2), "float32"))


def _masked_conv(m):
    i = m.Input((8,), dtype="int32")
    h = m.layers.Embedding(10, 4, mask_zero=True)(i)
    h = m.layers.Conv1D(5, 3, padding="causal")(h)
    return m.Model(i, m.layers.LSTM(3)(h))


def test_a_mask_reaching_conv1d_is_dropped_with_a_warning_as_keras(rng):
    with pytest.warns(UserWarning, match="does not support masking"):
        theirs = _masked_conv(keras)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours = _masked_conv(unrolled)
        ours.set_weights(theirs.get_weights())
        x = rng.integers(1, 10, (4, 8)).astype("int32")
        x[:, 5:] = 0                                      # padding the LSTM still sees
        got = ours.predict(x, verbose=0)
    assert any("does not support masking" in str(w.message) for w in seen)
    assert not unrolled.layers.Conv1D.supports_masking
    np.testing.assert_allclose(got, theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def _cnn_lstm(m):
    L = m.layers
    return m.Sequential([m.Input((12, 3)), L.Conv1D(5, 3, padding="same", activation="relu"),
                         L.MaxPooling1D(2), L.LSTM(4), L.Dense(2)])


def _causal_gru(m):
    L = m.layers
    return m.Sequential([m.Input((10,), dtype="int32"), L.Embedding(9, 4),
                         L.Conv1D(6, 2, padding="causal", dilation_rate=2, activation="tanh"),
                         L.GRU(4), L.Dense(1)])


def _data(kind, rng):
    if kind != "embedding-causal-gru":
        return (rng.standard_normal((16, 12, 3)).astype("float32"),
                rng.standard_normal((16, 2)).astype("float32"))
    return (rng.integers(0, 9, (16, 10)).astype("int32"),
            rng.standard_normal((16, 1)).astype("float32"))


def _separable_lstm(m):
    L = m.layers
    return m.Sequential([m.Input((12, 3)),
                         L.SeparableConv1D(6, 3, padding="same", strides=2, depth_multiplier=2,
                                           activation="relu",
                                           depthwise_regularizer=m.regularizers.L2(0.01)),
                         L.LSTM(4), L.Dense(2)])


MODELS = {"cnn-lstm": _cnn_lstm, "embedding-causal-gru": _causal_gru,
          "separable-lstm": _separable_lstm}


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
    conv = [layer for layer in back.layers if "Conv1D" in type(layer).__name__][0]
    assert conv.get_config()["padding"] in ("same", "causal")


def test_tf_keras_h5_loads(rng, tmp_path):
    L = tf_keras.layers
    theirs = tf_keras.Sequential([
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu",
                 input_shape=(9, 3)),
        L.Conv1D(6, 2, strides=2, padding="same", groups=2),
        L.LSTM(3), L.Dense(2)])
    for w in theirs.weights:
        w.assign(varied(rng, *w.shape))
    theirs.save(tmp_path / "k2.h5")
    x = rng.standard_normal((5, 9, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_tf_keras_separable_conv1d_h5_is_refused_by_name(tmp_path):
    # Keras 2's SeparableConv1D config carries Conv1D's keys (groups, kernel_initializer, ...)
    # that Keras 3's does not: unrolled refuses the file, naming the key.
    theirs = tf_keras.Sequential([tf_keras.layers.SeparableConv1D(4, 2, input_shape=(6, 3))])
    theirs.save(tmp_path / "k2.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedModelError, match="SeparableConv1D.*'groups'"):
            load_model(tmp_path / "k2.h5")


def test_generated_code_refuses_grouped_conv1d_by_name(tmp_path):
    # Conv1D exports (test_explain_layers.py, test_interop_onnx_layers.py,
    # test_interop_torch_layers.py); generated NumPy code leaves groups > 1 out.
    model = unrolled.Sequential([unrolled.Input((6, 4)), unrolled.layers.Conv1D(4, 2, groups=2),
                                 unrolled.layers.LSTM(2)])
    with pytest.raises(ValueError, match="Conv1D"):
        unrolled.explain.to_numpy_code(model)
