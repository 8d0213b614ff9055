"""LayerNormalization, BatchNormalization, GroupNormalization, UnitNormalization (issue 25):
outputs and gradients against Keras 3 (tf.GradientTape), float64 finite differences,
BatchNormalization's moving statistics in fit (masked too), models with recurrent layers
trained as Keras trains them, and files both ways (.keras, .h5, tf_keras .h5)."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import varied
from gradcheck import numeric_grad

import unrolled
from unrolled.io.safety import UnsupportedModelError
from unrolled.models import load_model

X_SHAPE = (4, 5, 6)

CASES = [
    ("LayerNormalization", {}, False),
    ("LayerNormalization", {"axis": [1, 2], "epsilon": 0.1}, False),
    ("LayerNormalization", {"axis": [-1, 1]}, False),          # Keras's sorted-as-given order
    ("LayerNormalization", {"axis": 1, "center": False}, False),
    ("LayerNormalization", {"scale": False}, False),
    ("LayerNormalization", {"rms_scaling": True}, False),
    ("GroupNormalization", {"groups": 3}, False),
    ("GroupNormalization", {"groups": -1, "scale": False}, False),
    ("GroupNormalization", {"groups": 5, "axis": 1, "epsilon": 0.01}, False),
    ("UnitNormalization", {}, False),
    ("UnitNormalization", {"axis": [1, 2]}, False),
    ("BatchNormalization", {}, False),
    ("BatchNormalization", {"axis": 1, "epsilon": 0.01, "center": False}, False),
    ("BatchNormalization", {}, True),
    ("BatchNormalization", {"axis": 1, "momentum": 0.9, "scale": False}, True),
    ("BatchNormalization", {"axis": -1}, "mask"),
]


def _layer_weights(layer, rng):
    """Non-trivial weights, differing per entry (variances positive)."""
    out = []
    for w in layer.weights:
        v = varied(rng, *w.shape)
        if "variance" in w.name:
            v = np.abs(v) + 0.5
        elif w.name == "gamma":
            v = v + 1.0
        out.append(v)
    return out


def _quiet(cls, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # rms_scaling's deprecation warning
        return cls(**kw)


def _pair(name, kw, rng, shape=X_SHAPE):
    theirs = _quiet(getattr(keras.layers, name), kw)
    ours = _quiet(getattr(unrolled.layers, name), kw)
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.trainable for w in ours.weights] == [w.trainable for w in theirs.weights]
    ws = _layer_weights(theirs, rng)
    theirs.set_weights(ws)
    ours.set_weights(ws)
    return theirs, ours


@pytest.mark.parametrize("name,kw,mode", CASES)
def test_outputs_and_gradients_equal_keras(name, kw, mode, rng):
    theirs, ours = _pair(name, kw, rng)
    ws = ours.get_weights()
    x = (rng.standard_normal(X_SHAPE) * 2 + 1).astype("float32")
    dy = rng.standard_normal(X_SHAPE).astype("float32")
    mask = rng.random(X_SHAPE[:2]) > 0.3 if mode == "mask" else None
    training = bool(mode)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = (theirs(xt, training=training, mask=mask) if mask is not None
               else theirs(xt, training=training))
        loss = tf.reduce_sum(out * dy)
    want = tape.gradient(loss, [xt] + theirs.trainable_weights)
    y, cache = ours.forward(x, training=training, mask=mask)
    dxs, dws = ours.backward(cache, dy)
    scale = np.abs(out.numpy()).max()
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(dxs[0], want[0].numpy(), rtol=5e-5,
                               atol=5e-5 * np.abs(want[0]).max())
    trainable = [g for g, w in zip(dws, ours.weights) if w.trainable]
    assert len(trainable) == len(want) - 1
    for got, w in zip(trainable, want[1:]):
        np.testing.assert_allclose(got, w.numpy(), rtol=5e-5, atol=5e-5 * np.abs(w).max())
    # the moving statistics, updated (training) or not, as Keras's
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if name == "BatchNormalization":                  # the moving statistics moved, or not
        moved = [not np.allclose(a, b) for a, b in zip(ours.get_weights()[-2:], ws[-2:])]
        assert moved == [training, training]


@pytest.mark.parametrize("name,kw,mode", CASES)
def test_finite_differences_float64(name, kw, mode, rng):
    layer = _quiet(getattr(unrolled.layers, name), {**kw, "dtype": "float64"})
    shape = (3, 5, 6)
    layer.build(shape)
    layer.set_weights([w.astype("float64") for w in _layer_weights(layer, rng)])
    x = rng.standard_normal(shape) * 2 + 1
    dy = rng.standard_normal(shape)
    mask = rng.random(shape[:2]) > 0.3 if mode == "mask" else None
    training = bool(mode)
    moving = [(w, w.numpy()) for w in layer.weights if not w.trainable]

    def f():
        y = layer.forward(x, training=training, mask=mask)[0]
        if training:                                 # keep the moving statistics put
            for w, value in moving:
                w.assign(value)
        return float(np.sum(y * dy))

    _, cache = layer.forward(x, training=training, mask=mask)
    dxs, dws = layer.backward(cache, dy)
    np.testing.assert_allclose(dxs[0], numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    assert len(dws) == len(layer.weights)
    for var, got in zip(layer.weights, dws):
        # numeric_grad perturbs the weight in place; in training the moving statistics
        # do not reach the output (gradient 0), at inference they do
        want = numeric_grad(f, var.value)
        if training and not var.trainable:
            np.testing.assert_allclose(want, 0, atol=1e-8)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=var.name)


@pytest.mark.parametrize("name,kw,mode", [CASES[1], CASES[6], CASES[10], CASES[12], CASES[15]])
def test_float64_layers_equal_keras(name, kw, mode, rng):
    """dtype="float64" layers compute in float64, as Keras's do."""
    theirs = getattr(keras.layers, name)(**kw, dtype="float64")
    ours = getattr(unrolled.layers, name)(**kw, dtype="float64")
    x = rng.standard_normal(X_SHAPE) * 2 + 1
    theirs.build(x.shape)
    ours.build(x.shape)
    ws = [w.astype("float64") for w in _layer_weights(theirs, rng)]
    theirs.set_weights(ws)
    ours.set_weights(ws)
    extra = {"mask": rng.random(X_SHAPE[:2]) > 0.3} if mode == "mask" else {}
    want = theirs(x, training=bool(mode), **extra).numpy()
    got = ours(x, training=bool(mode), **extra)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_trainable_false_batchnorm_uses_moving_statistics_in_training(rng):
    theirs, ours = _pair("BatchNormalization", {}, rng)
    theirs.trainable = False
    ours.trainable = False
    x = rng.standard_normal(X_SHAPE).astype("float32")
    before = ours.get_weights()
    y, _ = ours.forward(x, training=True)
    np.testing.assert_allclose(y, theirs(x, training=True).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y, ours.forward(x, training=False)[0], rtol=1e-6)
    for a, b in zip(ours.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_unit_normalization_zero_and_tiny_vectors(rng):
    """Where 1/norm would pass 1e12 the factor is 1e12, a constant: the gradient is
    dy * 1e12 there, as TensorFlow's."""
    x = rng.standard_normal((4, 3)).astype("float32")
    x[1] = 0
    x[2] = [1e-13, 0, 0]
    dy = rng.standard_normal((4, 3)).astype("float32")
    layer = unrolled.layers.UnitNormalization()
    y, cache = layer.forward(x)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = keras.layers.UnitNormalization()(xt)
        loss = tf.reduce_sum(out * dy)
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.backward(cache, dy)[0][0],
                               tape.gradient(loss, xt).numpy(), rtol=1e-6, atol=1e-6)
    assert np.all(y[1] == 0) and np.allclose(np.linalg.norm(y[[0, 3]], axis=1), 1, rtol=1e-6)


# --- models with recurrent layers: fit as Keras fits -------------------------------------------
def _ln_model(m):
    inp = m.Input((6, 3))
    h = m.layers.LSTM(5, return_sequences=True)(inp)
    h = m.layers.LayerNormalization(gamma_initializer="random_normal",
                                    beta_initializer="random_normal",
                                    gamma_regularizer=m.regularizers.L2(0.01),
                                    beta_constraint=m.constraints.MaxNorm(0.5))(h)
    h = m.layers.LSTM(4)(h)
    return m.Model(inp, m.layers.Dense(2)(h))


def _bn_model(m):                  # the "Working with RNNs" guide's LSTM -> BN -> Dense
    inp = m.Input((6, 3))
    h = m.layers.LSTM(5)(inp)
    h = m.layers.BatchNormalization(momentum=0.8, beta_regularizer=m.regularizers.L1(0.01),
                                    gamma_constraint=m.constraints.NonNeg())(h)
    return m.Model(inp, m.layers.Dense(2)(h))


def _masked_bn_model(m):           # BN on (batch, time, features) under an Embedding's mask
    inp = m.Input((7,), dtype="int32")
    h = m.layers.Embedding(9, 4, mask_zero=True)(inp)
    h = m.layers.BatchNormalization(momentum=0.7)(h)
    h = m.layers.LSTM(5, return_sequences=True)(h)
    h = m.layers.BatchNormalization(center=False, momentum=0.9)(h)
    # (not LayerNormalization -> BatchNormalization: BN would cancel beta's shift, leaving
    # beta a gradient of rounding noise that Adam amplifies)
    h = m.layers.LayerNormalization()(m.layers.LSTM(4, return_sequences=True)(h))
    h = m.layers.LSTM(3)(h)
    return m.Model(inp, m.layers.Dense(2)(h))


def _frozen_bn_model(m):           # trainable=False: inference mode in fit (Keras 3)
    inp = m.Input((6, 3))
    h = m.layers.LSTM(5, return_sequences=True)(inp)
    h = m.layers.BatchNormalization(trainable=False,
                                    moving_variance_initializer=m.initializers.RandomUniform(
                                        0.5, 1.5),
                                    moving_mean_initializer="random_normal")(h)
    h = m.layers.GroupNormalization(groups=5)(h)
    h = m.layers.UnitNormalization()(m.layers.LSTM(4)(h))
    return m.Model(inp, m.layers.Dense(2)(h))


def _guide_model(m):               # the guide's own: Sequential, default momentum, no length
    return m.Sequential([m.Input((None, 3)), m.layers.LSTM(8), m.layers.BatchNormalization(),
                         m.layers.Dense(4)])


MODELS = {"ln": _ln_model, "bn": _bn_model, "masked-bn": _masked_bn_model,
          "frozen-bn": _frozen_bn_model, "guide": _guide_model}


def _data(kind, rng, n=20):
    if kind == "masked-bn":
        x = rng.integers(1, 9, (n, 7)).astype("int32")
        for i in range(n):
            x[i, : i % 5] = 0                        # pre-padding of varying lengths
    else:
        x = rng.standard_normal((n, 6, 3)).astype("float32")
    if kind == "guide":
        return x, rng.integers(0, 4, n)
    return x, rng.standard_normal((n, 2)).astype("float32")


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fit_with_recurrent_layers_equals_keras(kind, rng):
    keras.utils.set_random_seed(3)
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    start = {w.path: w.numpy() for w in ours.weights}
    x, y = _data(kind, rng)
    for mod, model in ((keras, theirs), (unrolled, ours)):
        if kind == "guide":                          # as the guide compiles it
            model.compile(optimizer="sgd", metrics=["accuracy"],
                          loss=mod.losses.SparseCategoricalCrossentropy(from_logits=True))
        else:
            model.compile(optimizer=mod.optimizers.Adam(0.02), loss="mse")
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for w, a, b in zip(ours.weights, ours.get_weights(), theirs.get_weights()):
        if "moving" in w.name:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=w.path)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=w.path)
    assert len(ours.losses) == len(theirs.losses) == (1 if kind in ("ln", "bn") else 0)
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-5)
    bns = [layer for layer in ours.layers if type(layer).__name__ == "BatchNormalization"]
    for layer in bns:                                # the moving statistics moved, or not
        for w in (layer.moving_mean, layer.moving_variance):
            assert np.allclose(w.numpy(), start[w.path]) == (kind == "frozen-bn")
    pred = ours.predict(x, verbose=0)
    assert np.isfinite(pred).all() and np.isfinite(got).all()
    np.testing.assert_allclose(pred, theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_masked_moments_in_a_training_step(rng):
    """Embedding(mask_zero) -> BatchNormalization: one step's moving mean is the mean over
    the unmasked positions, in Keras and here (so the mask does reach the layer)."""
    def build(m):
        inp = m.Input((5,), dtype="int32")
        h = m.layers.BatchNormalization(momentum=0.0)(m.layers.Embedding(6, 3, mask_zero=True)(inp))
        return m.Model(inp, m.layers.Dense(1)(m.layers.LSTM(2)(h)))
    theirs, ours = build(keras), build(unrolled)
    ours.set_weights(theirs.get_weights())
    x = np.array([[0, 0, 1, 2, 3], [0, 4, 5, 1, 1], [2, 3, 4, 5, 1]], "int32")
    y = np.ones((3, 1), "float32")
    table = theirs.get_weights()[0]
    kept = table[x[x != 0]]
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.SGD(0.0), loss="mse")
        model.train_on_batch(x, y)
        bn = [la for la in model.layers if "batch" in la.name][0]
        np.testing.assert_allclose(bn.moving_mean.numpy(), kept.mean(0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(bn.moving_variance.numpy(), kept.var(0), rtol=1e-4)
    assert not np.allclose(kept.mean(0), table[x].reshape(-1, 3).mean(0), rtol=1e-3)


# --- files both ways ---------------------------------------------------------------------------
def _all_layers_model(m):
    inp = m.Input((6, 4))
    h = m.layers.LSTM(6, return_sequences=True)(inp)
    h = m.layers.LayerNormalization(axis=[1, 2], epsilon=0.01)(h)
    h = m.layers.BatchNormalization(momentum=0.5,
                                    moving_variance_initializer=m.initializers.RandomUniform(
                                        0.5, 1.5),
                                    moving_mean_initializer="random_normal",
                                    gamma_initializer="random_normal")(h)
    h = m.layers.GroupNormalization(groups=3, center=False,
                                    gamma_regularizer=m.regularizers.L2(0.1))(h)
    h = m.layers.UnitNormalization(axis=[1, 2])(h)
    h = m.layers.LSTM(3)(h)
    return m.Model(inp, m.layers.Dense(2)(h))


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_files_both_ways(ext, rng, tmp_path, shared):
    if "files" not in shared:                   # one Keras model and run for both formats
        theirs = _all_layers_model(keras)
        x = rng.standard_normal((5, 6, 4)).astype("float32")
        shared["files"] = theirs, x, theirs.predict(x, verbose=0)
    theirs, x, want = shared["files"]
    assert np.isfinite(want).all()
    theirs.save(tmp_path / f"k{ext}")
    ours = load_model(str(tmp_path / f"k{ext}"))
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    ours.save(str(tmp_path / f"u{ext}"))
    back = keras.models.load_model(tmp_path / f"u{ext}")
    np.testing.assert_allclose(back.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    assert [w.name for w in back.weights] == [w.name for w in theirs.weights]
    assert [w.trainable for w in back.weights] == [w.trainable for w in theirs.weights]
    np.testing.assert_allclose([float(v) for v in back.losses], ours.losses, rtol=1e-6)
    assert len(ours.losses) == 1


def test_tf_keras2_h5_loads(rng, tmp_path):
    import tf_keras
    inp = tf_keras.Input((6, 4))
    h = tf_keras.layers.LSTM(6, return_sequences=True)(inp)
    h = tf_keras.layers.BatchNormalization(momentum=0.5, gamma_initializer="random_normal",
                                           moving_mean_initializer="random_normal")(h)
    h = tf_keras.layers.LayerNormalization(axis=-1)(h)
    h = tf_keras.layers.LSTM(3)(h)
    model = tf_keras.Model(inp, tf_keras.layers.Dense(2)(h))
    x = rng.standard_normal((5, 6, 4)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, rng.standard_normal((5, 2)), epochs=1, verbose=0)   # moving stats move
    model.save(tmp_path / "k2.h5")
    ours = load_model(str(tmp_path / "k2.h5"))
    np.testing.assert_allclose(ours.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_refusals():
    with pytest.raises(NotImplementedError, match="renorm"):
        unrolled.layers.BatchNormalization(renorm=True)
    with pytest.raises(NotImplementedError, match="virtual_batch_size"):
        unrolled.layers.BatchNormalization(virtual_batch_size=4)
    with pytest.raises(NotImplementedError, match="adjustment"):
        unrolled.layers.BatchNormalization(adjustment="f")
    unrolled.layers.BatchNormalization(fused=True, virtual_batch_size=None)
    with pytest.raises(TypeError, match="axis"):
        unrolled.layers.LayerNormalization(axis="x")
    with pytest.raises(ValueError, match="groups"):
        unrolled.layers.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="multiple"):
        unrolled.layers.GroupNormalization(groups=4).build((2, 3, 6))
    with pytest.raises(ValueError, match="out of bounds"):
        unrolled.layers.LayerNormalization(axis=3).build((2, 3, 6))
    with pytest.raises(ValueError, match="one dimension less"):
        layer = unrolled.layers.BatchNormalization()
        layer.build((2, 3, 4))
        layer.forward(np.zeros((2, 3, 4), "float32"), training=True, mask=np.ones((2,), bool))


def test_generated_code_refuses_group_normalization_by_name():
    # BatchNormalization, LayerNormalization, UnitNormalization export (test_explain_layers.py,
    # test_interop_{onnx,torch}_layers.py); generated NumPy code leaves GroupNormalization out.
    model = unrolled.Sequential([unrolled.Input((6, 4)), unrolled.layers.LSTM(4, return_sequences=True),
                                 unrolled.layers.GroupNormalization(2), unrolled.layers.LSTM(2)])
    with pytest.raises(ValueError, match="GroupNormalization"):
        unrolled.explain.to_numpy_code(model)


def test_native_npz_round_trip(rng, tmp_path):
    model = _all_layers_model(unrolled)
    x = rng.standard_normal((5, 6, 4)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, rng.standard_normal((5, 2)).astype("float32"), epochs=1, verbose=0)
    model.save(str(tmp_path / "m.unrolled.npz"))
    back = load_model(str(tmp_path / "m.unrolled.npz"))
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_configs_keras2_and_keras3_options():
    from unrolled.saving.config_reader import layer_from_config
    base = {"name": "bn", "axis": [2], "momentum": 0.9, "epsilon": 0.01, "center": True,
            "scale": True}
    layer = layer_from_config({"class_name": "BatchNormalization", "config": base})
    assert (layer.axis, layer.momentum, layer.epsilon) == (2, 0.9, 0.01)
    with pytest.raises(UnsupportedModelError, match="virtual_batch_size"):
        layer_from_config({"class_name": "BatchNormalization",
                           "config": {**base, "virtual_batch_size": 4}})
    with pytest.raises(NotImplementedError, match="renorm"):
        layer_from_config({"class_name": "BatchNormalization",
                           "config": {**base, "renorm": True, "renorm_clipping": None,
                                      "renorm_momentum": 0.99}})
    keras_config = keras.layers.BatchNormalization(synchronized=False).get_config()
    layer = layer_from_config({"class_name": "BatchNormalization", "config": keras_config})
    assert layer.renorm is False and layer.synchronized is False


@pytest.mark.parametrize("name,kw", [("LayerNormalization", {}), ("BatchNormalization", {}),
                                     ("GroupNormalization", {"groups": 2})])
def test_built_layer_refuses_another_feature_size(name, kw):
    layer = getattr(unrolled.layers, name)(**kw)
    layer(np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="incompatible"):
        layer(np.ones((2, 3, 6), "float32"))
    with pytest.raises(ValueError, match="incompatible"):
        layer(np.ones((2, 4), "float32"))
