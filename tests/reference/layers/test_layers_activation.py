"""Activation functions with arguments and the activation layers (ReLU, LeakyReLU, PReLU, ELU,
Softmax), issue 25: outputs against Keras 3 (rtol 1e-6), input and weight gradients against
tf.GradientTape on sum(out * dy) (5e-5), float64 finite differences (rtol 1e-6), training in
models with recurrent layers against Keras's fit (losses at rel 1e-5), and files both ways
(.keras and legacy .h5; a tf_keras .h5 too)."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from gradcheck import numeric_grad, rel_error

import unrolled
from unrolled import activation_formulas, activations
from unrolled.saving import serialize
from unrolled.models import load_model

# --- activation functions called with arguments -----------------------------------------------
CALLS = [("relu", dict(negative_slope=0.1)), ("relu", dict(max_value=2.5)),
         ("relu", dict(threshold=0.7)), ("relu", dict(negative_slope=0.2, max_value=3.0,
                                                       threshold=0.5)),
         ("relu", dict(negative_slope=0.3, threshold=-0.5)),
         ("relu", dict(max_value=1.0, threshold=-0.5)), ("relu", dict(max_value=6.0)),
         ("leaky_relu", dict(negative_slope=0.05)), ("leaky_relu", {}),
         ("gelu", dict(approximate=True)), ("gelu", dict(approximate=False)),
         ("elu", dict(alpha=0.5)), ("celu", dict(alpha=0.7)), ("softmax", dict(axis=0)),
         ("softmax", dict(axis=(0, 1))), ("log_softmax", dict(axis=0)),
         ("log_softmax", {}), ("squareplus", dict(b=2.0)), ("hard_shrink", dict(threshold=1.5)),
         ("soft_shrink", dict(threshold=1.5)),
         ("threshold", dict(threshold=0.3, default_value=-2.0)), ("glu", dict(axis=0)),
         ("glu", {})]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CALLS]


def _away_from_kinks(x):
    """Nudge entries off the points where these functions have kinks (finite differences and
    the subgradient TensorFlow picks there would differ)."""
    for k in (0.0, 0.5, -0.5, 0.7, 1.0, -1.0, 1.5, -1.5, 2.5, 3.0, -3.0, 6.0, 0.3):
        x[np.abs(x - k) < 1e-2] = k + 0.05
    return x


@pytest.mark.parametrize("name,kw", CALLS, ids=IDS)
def test_calls_with_arguments_equal_keras(name, kw, rng):
    x = _away_from_kinks((rng.standard_normal((6, 8)) * 3).astype("float32"))
    fn = getattr(activations, name)
    y = fn(x, **kw)
    dy = rng.standard_normal(y.shape).astype("float32")
    dx = fn.backward(x, y, dy, **kw)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = getattr(keras.activations, name)(xt, **kw)
        loss = tf.reduce_sum(out * dy)
    scale = np.abs(out.numpy()).max()
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-6, atol=1e-6 * scale)
    want = tape.gradient(loss, xt).numpy()
    np.testing.assert_allclose(dx, want, rtol=5e-5, atol=5e-5 * np.abs(want).max())
    assert y.dtype == dx.dtype == np.float32


@pytest.mark.parametrize("name,kw", CALLS, ids=IDS)
def test_calls_with_arguments_finite_differences(name, kw, rng):
    fn = getattr(activations, name)
    x = _away_from_kinks(rng.standard_normal((4, 6)) * 3)
    dy = rng.standard_normal(fn(x, **kw).shape)
    dx = fn.backward(x, fn(x, **kw), dy, **kw)
    assert rel_error(dx, numeric_grad(lambda: float(np.sum(fn(x, **kw) * dy)), x)) < 1e-6


def test_gradients_by_name_equal_keras(rng):
    """Every name's backward against TensorFlow's gradient of Keras's function."""
    x = _away_from_kinks((rng.standard_normal((5, 9)) * 3).astype("float32"))
    dy = rng.standard_normal(x.shape).astype("float32")
    for name in activations.names():
        if name == "hard_sigmoid_keras2":
            continue                                 # not in Keras 3 (test_activations.py)
        act = activations.get(name)
        xt = tf.Variable(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(keras.activations.get(name)(xt) * dy)
        want = tape.gradient(loss, xt).numpy()
        got = act.backward(x, act(x), dy)
        np.testing.assert_allclose(got, want, rtol=5e-5, atol=5e-5 * np.abs(want).max(),
                                   err_msg=name)


def test_names_keras_has_and_what_is_refused():
    ours = set(activations.names())
    from keras.src.activations import ALL_OBJECTS_DICT
    keras_names = set(ALL_OBJECTS_DICT)
    assert keras_names - ours == {"glu", "threshold", "sparsemax"}
    assert ours - keras_names == {"hard_sigmoid_keras2"}
    for name in ("glu", "threshold", "sparsemax"):
        with pytest.raises(ValueError, match=name):
            activations.get(name)
    assert set(serialize.ACTIVATIONS) == ours
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.get("silu") is activations.swish
    with pytest.raises(TypeError, match="negative_slop"):
        activations.relu(np.ones(3), negative_slop=0.1)
    with pytest.raises(TypeError, match="default_value"):
        activations.threshold(np.ones(3), 0.5)
    import pickle                        # pickled by name, the directly-called ones too
    for act in (activations.glu, activations.threshold, activations.gelu):
        assert pickle.loads(pickle.dumps(act)) is act
    # positional arguments in Keras's order, and lists as input, as keras.activations.relu
    np.testing.assert_array_equal(activations.relu([-10, -5, 0.0, 5, 10], 0.5, 5.0),
                                  keras.activations.relu([-10, -5, 0.0, 5, 10], 0.5, 5.0))


def test_erf_is_accurate():
    import math
    z = np.linspace(-9, 9, 4001)
    want = np.array([math.erf(v) for v in z])
    np.testing.assert_allclose(activation_formulas.erf(z), want, rtol=1e-13, atol=1e-15)


# --- the layers --------------------------------------------------------------------------------
LAYERS = [("ReLU", {}), ("ReLU", dict(max_value=2.0)),
          ("ReLU", dict(negative_slope=0.1, threshold=0.5)),
          ("ReLU", dict(max_value=3.0, negative_slope=0.2, threshold=0.4)),
          ("LeakyReLU", {}), ("LeakyReLU", dict(negative_slope=0.05)),
          ("ELU", {}), ("ELU", dict(alpha=0.5)),
          ("PReLU", {}), ("PReLU", dict(shared_axes=[1])), ("PReLU", dict(shared_axes=2)),
          ("PReLU", dict(shared_axes=[1, 2])),
          ("Softmax", {}), ("Softmax", dict(axis=1)), ("Softmax", dict(axis=[1, 2]))]
LIDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in LAYERS]


def _layer_pair(name, kw, rng, shape, dtype="float32"):
    ours = getattr(unrolled.layers, name)(dtype=dtype, **kw)
    theirs = getattr(keras.layers, name)(dtype=dtype, **kw)
    ours.build(shape)
    theirs.build(shape)
    if ours.weights:                        # varied alpha, negative and positive entries
        w = (rng.standard_normal(ours.weights[0].shape) * 0.5).astype(dtype)
        ours.set_weights([w])
        theirs.set_weights([w])
    return ours, theirs


@pytest.mark.parametrize("name,kw", LAYERS, ids=LIDS)
def test_layer_outputs_and_gradients_equal_keras(name, kw, rng):
    shape = (4, 5, 6)
    x = _away_from_kinks((rng.standard_normal(shape) * 3).astype("float32"))
    dy = rng.standard_normal(shape).astype("float32")
    ours, theirs = _layer_pair(name, kw, rng, shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    y, cache = ours.forward(x)
    (dx,), dws = ours.backward(cache, dy)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = theirs(xt)
        loss = tf.reduce_sum(out * dy)
    grads = tape.gradient(loss, [xt] + theirs.trainable_weights)
    scale = np.abs(out.numpy()).max()
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(ours(x), y)
    for got, want in zip([dx] + dws, grads):
        want = np.asarray(want)
        np.testing.assert_allclose(got, want, rtol=5e-5, atol=5e-5 * np.abs(want).max())
    assert len(dws) == len(theirs.trainable_weights)
    assert ours.supports_masking is theirs.supports_masking is True
    assert ours.compute_output_shape((None, 5, 6)) == (None, 5, 6)
    config = ours.get_config()
    for key, value in theirs.get_config().items():
        if key == "alpha_initializer":
            assert config[key]["class_name"] == value["class_name"]
        elif key not in ("name", "dtype", "trainable", "alpha_regularizer", "alpha_constraint"):
            assert config[key] == value, key


@pytest.mark.parametrize("name,kw", LAYERS, ids=LIDS)
def test_layer_finite_differences_float64(name, kw, rng):
    shape = (3, 4, 5)
    x = _away_from_kinks(rng.standard_normal(shape) * 3)
    dy = rng.standard_normal(shape)
    layer = getattr(unrolled.layers, name)(dtype="float64", **kw)
    layer.build(shape)
    if layer.weights:
        layer.set_weights([rng.standard_normal(layer.weights[0].shape) * 0.5])
    _, cache = layer.forward(x)
    (dx,), dws = layer.backward(cache, dy)
    assert dx.dtype == np.float64

    def f():
        return float(np.sum(layer.forward(x)[0] * dy))
    assert rel_error(dx, numeric_grad(f, x)) < 1e-6
    for var, dw in zip(layer.weights, dws):
        assert rel_error(dw, numeric_grad(f, var.value)) < 1e-6


MASKS = [(4, 5, 6), (5, 6), (1, 6), (5, 1), (6,), (4, 1, 1)]


@pytest.mark.parametrize("mask_shape", MASKS, ids=[str(m) for m in MASKS])
@pytest.mark.parametrize("axis", [-1, 1, [1, 2]], ids=["axis-1", "axis1", "axis12"])
def test_softmax_mask_equals_keras(mask_shape, axis, rng):
    shape = (4, 5, 6)
    x = (rng.standard_normal(shape) * 3).astype("float32")
    dy = rng.standard_normal(shape).astype("float32")
    mask = rng.uniform(size=mask_shape) > 0.3
    mask.reshape(-1)[0] = False                         # at least one off, one on
    mask.reshape(-1)[-1] = True
    ours = unrolled.layers.Softmax(axis=axis)
    y, cache = ours.forward(x, mask=mask)
    (dx,), _ = ours.backward(cache, dy)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = keras.layers.Softmax(axis=axis)(xt, mask=mask)
        loss = tf.reduce_sum(out * dy)
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-6, atol=1e-7)
    want = tape.gradient(loss, xt).numpy()
    np.testing.assert_allclose(dx, want, rtol=5e-5, atol=5e-5 * np.abs(want).max())
    # a float mask counts where > 0.5, as Keras
    y2 = ours(x, mask=np.where(mask, 0.9, 0.2).astype("float32"))
    np.testing.assert_allclose(y2, y)


def test_softmax_mask_finite_differences_and_errors(rng):
    x = rng.standard_normal((3, 4, 5))
    dy = rng.standard_normal(x.shape)
    mask = rng.uniform(size=(4, 5)) > 0.4
    mask[0] = False                                    # a fully masked row: all zeros
    layer = unrolled.layers.Softmax(dtype="float64")
    _, cache = layer.forward(x, mask=mask)
    (dx,), _ = layer.backward(cache, dy)

    def f():
        return float(np.sum(layer.forward(x, mask=mask)[0] * dy))
    assert rel_error(dx, numeric_grad(f, x)) < 1e-6
    assert np.all(layer(x, mask=mask)[:, 0] == 0)
    for bad in ((3, 4), (2, 4, 5), (1, 3, 4, 5)):
        with pytest.raises(ValueError, match="broadcastable") as ours_err:
            layer(x, mask=np.ones(bad, bool))
        with pytest.raises(ValueError, match="broadcastable"):
            keras.layers.Softmax()(x, mask=np.ones(bad, bool))
        assert str(bad) in str(ours_err.value)


def test_argument_validation_as_keras():
    for name, kw in [("ReLU", dict(max_value=-1.0)), ("ReLU", dict(negative_slope=-0.1)),
                     ("ReLU", dict(threshold=None)), ("LeakyReLU", dict(negative_slope=-1)),
                     ("LeakyReLU", dict(negative_slope=None))]:
        with pytest.raises(ValueError):
            getattr(keras.layers, name)(**kw)
        with pytest.raises(ValueError, match=next(iter(kw))):
            getattr(unrolled.layers, name)(**kw)
    with pytest.warns(UserWarning, match="alpha"):
        layer = unrolled.layers.LeakyReLU(alpha=0.15)
    assert layer.negative_slope == 0.15
    with pytest.raises(ValueError, match="shared_axes"):
        unrolled.layers.PReLU(shared_axes=[-1])
    with pytest.raises(ValueError, match="out of range"):
        unrolled.layers.PReLU(shared_axes=[3]).build((2, 3, 4))
    p = unrolled.layers.PReLU()
    p(np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="alpha has shape"):
        p(np.ones((2, 3, 5), "float32"))
    with pytest.raises(TypeError, match="unexpected|Unrecognized"):
        unrolled.layers.ELU(beta=1.0)
    assert unrolled.layers.PReLU(shared_axes=1).shared_axes == [1]
    # names as Keras's automatic names
    assert [type(getattr(unrolled.layers, n)()).__name__ for n in ("ReLU", "PReLU")] == \
        ["ReLU", "PReLU"]
    assert unrolled.layers.PReLU().name.startswith("p_re_lu")
    assert unrolled.layers.LeakyReLU().name.startswith("leaky_re_lu")


# --- in models with recurrent layers: fit against Keras --------------------------------------
def _embedding_lstm_leaky(m):
    x = m.Input((7,), dtype="int32")
    h = m.layers.Embedding(10, 4, mask_zero=True)(x)
    h = m.layers.LSTM(5, return_sequences=True)(h)
    h = m.layers.LeakyReLU(negative_slope=0.2)(h)
    h = m.layers.TimeDistributed(m.layers.Dense(3))(h)
    h = m.layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.05)(h)
    return m.Model(x, h)


def _gru_prelu_softmax(m):
    x = m.Input((6, 3))
    h = m.layers.GRU(5, return_sequences=True)(x)
    h = m.layers.PReLU(shared_axes=[1], alpha_initializer="random_normal",
                       alpha_regularizer=m.regularizers.L2(0.05), alpha_constraint="non_neg")(h)
    h = m.layers.Flatten()(h)
    return m.Model(x, m.layers.Dense(4, activation="softmax")(h))


def _rnn_gelu_elu_softmax(m):
    x = m.Input((6, 3))
    h = m.layers.SimpleRNN(6, return_sequences=True)(x)
    h = m.layers.ELU(alpha=0.7)(h)
    h = m.layers.Dense(8)(h)
    h = m.layers.Activation("gelu")(h)
    h = m.layers.Dense(4, activation="mish")(h)
    h = m.layers.Softmax(axis=1)(h)
    return m.Model(x, h)


COMBOS = {"embedding-lstm-leakyrelu-td-relu": _embedding_lstm_leaky,
          "gru-prelu-dense-softmax": _gru_prelu_softmax,
          "simplernn-elu-gelu-mish-softmax": _rnn_gelu_elu_softmax}


def _combo_data(kind, rng):
    if kind.startswith("embedding"):
        x = rng.integers(1, 10, (16, 7)).astype("int32")
        x[:, 5:] = 0                                   # padded, masked tail
        x[::3, 3:] = 0
        return x, rng.standard_normal((16, 7, 3)).astype("float32")
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    if kind.startswith("gru"):
        return x, np.eye(4, dtype="float32")[rng.integers(0, 4, 16)]
    y = rng.uniform(size=(16, 6, 4)).astype("float32")
    return x, y / y.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", list(COMBOS))
def test_fit_in_recurrent_models_equals_keras(kind, rng):
    theirs, ours = COMBOS[kind](keras), COMBOS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    x, y = _combo_data(kind, rng)
    loss = "categorical_crossentropy" if kind.startswith("gru") else "mse"
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.02), loss=loss)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


# --- files --------------------------------------------------------------------------------------
def _all_layers(m, elu_alpha=0.5, softmax_axis=(1, 2)):
    x = m.Input((5, 4))
    h = m.layers.LSTM(6, return_sequences=True)(x)
    h = m.layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.2)(h)
    h = m.layers.LeakyReLU(negative_slope=0.15)(h)
    h = m.layers.PReLU(shared_axes=[1], alpha_initializer="random_uniform")(h)
    h = m.layers.ELU(alpha=elu_alpha)(h)
    h = m.layers.Dense(5, activation="hard_swish")(h)
    h = m.layers.Activation("gelu")(h)
    h = m.layers.Softmax(axis=list(softmax_axis) if len(softmax_axis) > 1 else softmax_axis[0])(h)
    return m.Model(x, h)


def _vary(model, rng):
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.7
                       for w in model.get_weights()])


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_files_both_ways(ext, rng, tmp_path):
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    # Keras 3's legacy .h5 loader turns Softmax's list axis into -1 (its own file reloads
    # with another softmax), so the .h5 round trips use one axis; a list below.
    axis = (1, 2) if ext == "keras" else (1,)
    # Keras -> unrolled. Keras 3's ELU writes no alpha: its file reloads with alpha 1.0, in
    # Keras and here alike.
    theirs = _all_layers(keras, softmax_axis=axis)
    _vary(theirs, rng)
    theirs.save(tmp_path / f"k.{ext}")
    back_k = keras.saving.load_model(tmp_path / f"k.{ext}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = load_model(tmp_path / f"k.{ext}")
    np.testing.assert_allclose(got.predict(x, verbose=0), back_k.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert [type(layer).__name__ for layer in got.layers] == \
        [type(layer).__name__ for layer in back_k.layers]
    # unrolled -> Keras: unrolled writes ELU's alpha, which Keras reads
    ours = _all_layers(unrolled, softmax_axis=axis)
    _vary(ours, rng)
    ours.save(tmp_path / f"u.{ext}")
    loaded = keras.saving.load_model(tmp_path / f"u.{ext}")
    assert loaded.layers[5].alpha == 0.5
    np.testing.assert_allclose(loaded.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    again = load_model(tmp_path / f"u.{ext}")
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    assert again.layers[4].shared_axes == [1] and again.layers[3].negative_slope == 0.15
    assert again.layers[5].alpha == 0.5
    assert again.layers[-1].axis == (list(axis) if len(axis) > 1 else axis[0])


def test_keras_h5_softmax_list_axis_is_read_as_written(rng, tmp_path):
    """The file holds axis [1, 2]: unrolled computes what the model that wrote it computed
    (Keras 3.15's legacy .h5 loader reloads it with axis -1)."""
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    theirs = _all_layers(keras, elu_alpha=1.0)
    _vary(theirs, rng)
    theirs.save(tmp_path / "k.h5")
    got = load_model(tmp_path / "k.h5")
    assert got.layers[-1].axis == [1, 2]
    np.testing.assert_allclose(got.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_tf_keras2_h5_loads(rng, tmp_path):
    """Keras 2 writes LeakyReLU's slope as ``alpha`` and ELU's alpha; both are read."""
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    m = tf_keras
    inp = m.Input((5, 4))
    h = m.layers.GRU(6, return_sequences=True)(inp)
    h = m.layers.LeakyReLU(alpha=0.12)(h)
    h = m.layers.PReLU(shared_axes=[1], alpha_initializer="random_uniform")(h)
    h = m.layers.ELU(alpha=0.6)(h)
    h = m.layers.ReLU(max_value=1.5, negative_slope=0.05, threshold=0.1)(h)
    h = m.layers.Dense(4, activation="gelu")(h)
    h = m.layers.Softmax(axis=1)(h)
    theirs = m.Model(inp, h)
    theirs.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.7
                        for w in theirs.get_weights()])
    theirs.save(tmp_path / "k2.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # LeakyReLU's `alpha` is deprecated
        ours = load_model(tmp_path / "k2.h5")
    assert np.isclose(ours.layers[2].negative_slope, 0.12) and np.isclose(ours.layers[4].alpha, 0.6)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_exports_refuse_by_name(tmp_path):
    # The layers export (test_explain_layers.py, test_interop_onnx_layers.py,
    # test_interop_torch_layers.py); generated NumPy code has no erf for the exact gelu.
    gelu = unrolled.Sequential([unrolled.Input((4, 3)), unrolled.layers.LSTM(4),
                                unrolled.layers.Dense(2, activation="gelu", name="d_gelu")])
    with pytest.raises(Exception, match="gelu"):
        unrolled.explain.to_numpy_code(gelu)
