"""Permute and Dot (with ``layers.dot``) (issue 25): outputs and gradients against Keras
(tf.GradientTape on ``sum(out * dy)``), float64 finite differences, Keras's argument checks
and shapes, masks, models with recurrent layers trained against Keras, and files both
ways (``.keras``, ``.h5``, a tf.keras 2 ``.h5``)."""
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras  # the Keras 2 reference
from gradcheck import numeric_grad
from keras_ref import files_both_ways, keras

import unrolled
from unrolled.models import load_model


def _tape(layer, inputs, dy):
    """Keras's outputs and d sum(out * dy) / d inputs."""
    ts = [tf.constant(x) for x in inputs]
    with tf.GradientTape() as tape:
        tape.watch(ts)
        out = layer(ts if len(ts) > 1 else ts[0])
        loss = tf.reduce_sum(out * dy)
    return out.numpy(), [g.numpy() for g in tape.gradient(loss, ts)]


# --- Permute ------------------------------------------------------------------------------------
PERMS = [((5, 3), (2, 1)), ((5, 3), (1, 2)), ((2, 3, 4), (3, 1, 2)), ((2, 3, 4), (2, 3, 1)),
         ((2, 3, 4, 2), (4, 2, 1, 3))]


@pytest.mark.parametrize("shape,dims", PERMS)
def test_permute_equals_keras(shape, dims, rng):
    x = rng.standard_normal((3,) + shape).astype("float32")
    ours = unrolled.layers.Permute(list(dims))            # a file's list works too
    y, cache = ours.forward(x)
    dy = rng.standard_normal(y.shape).astype("float32")
    want, (dx_want,) = _tape(keras.layers.Permute(dims), [x], dy)
    np.testing.assert_allclose(y, want, rtol=1e-6)
    (dx,), dw = ours.backward(cache, dy)
    np.testing.assert_allclose(dx, dx_want, rtol=1e-6)
    assert dw == [] and ours.dims == dims
    assert ours.compute_output_shape((None,) + shape) == \
        keras.layers.Permute(dims).compute_output_shape((None,) + shape)


def test_permute_finite_differences_float64(rng):
    layer = unrolled.layers.Permute((3, 1, 2), dtype="float64")
    x = rng.standard_normal((2, 3, 4, 2))
    dy = rng.standard_normal((2, 2, 3, 4))
    _, cache = layer.forward(x)
    (dx,), _ = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, numeric_grad(lambda: float(np.sum(layer.forward(x)[0] * dy)),
                                                x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dims", [(1, 3), (0, 1), (2, 2)])
def test_permute_checks_dims_as_keras(dims):
    with pytest.raises(ValueError, match="consecutive"):
        keras.layers.Permute(dims)
    with pytest.raises(ValueError, match="consecutive"):
        unrolled.layers.Permute(dims)


def test_permute_rank_and_masks():
    with pytest.raises(ValueError, match="expected ndim=3"):
        unrolled.layers.Permute((2, 1))(np.zeros((2, 3, 4, 5), "float32"))
    assert unrolled.layers.Permute((2, 1)).supports_masking is \
        keras.layers.Permute((2, 1)).supports_masking is False
    x = unrolled.Input((4, 3))
    h = unrolled.layers.Masking()(x)
    with pytest.warns(UserWarning, match="does not support masking"):
        model = unrolled.Model(x, unrolled.layers.Permute((2, 1))(h))
        model.predict(np.ones((1, 4, 3), "float32"), verbose=0)


# --- Dot ----------------------------------------------------------------------------------------
DOTS = [((5,), (5,), 1, False), ((5,), (5,), -1, True), ((3, 5), (5,), (2, 1), False),
        ((3, 5), (6, 5), (2, 2), True), ((3, 5), (3, 6), 1, True), ((5,), (5, 6), (1, 1), False),
        ((3, 5), (5,), (-1, -1), True), ((3, 5, 2), (5, 2), (2, 1), True),
        ((4, 3), (6, 4), (1, 2), False)]


@pytest.mark.parametrize("sa,sb,axes,normalize", DOTS)
def test_dot_equals_keras(sa, sb, axes, normalize, rng):
    a = rng.standard_normal((4,) + sa).astype("float32")
    b = rng.standard_normal((4,) + sb).astype("float32")
    ours = unrolled.layers.Dot(axes=axes, normalize=normalize)
    theirs = keras.layers.Dot(axes=axes, normalize=normalize)
    y, cache = ours.forward([a, b])
    dy = rng.standard_normal(y.shape).astype("float32")
    want, (da_want, db_want) = _tape(theirs, [a, b], dy)
    scale = np.abs(want).max()
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6 * scale)
    (da, db), dw = ours.backward(cache, dy)
    assert dw == []
    for got, ref in ((da, da_want), (db, db_want)):
        np.testing.assert_allclose(got, ref, rtol=5e-5, atol=5e-5 * np.abs(ref).max())
    shapes = [(None,) + sa, (None,) + sb]
    assert ours.compute_output_shape(shapes) == theirs.compute_output_shape(shapes) == \
        (None,) + y.shape[1:]


@pytest.mark.parametrize("sa,sb,axes,normalize", DOTS)
def test_dot_finite_differences_float64(sa, sb, axes, normalize, rng):
    a = rng.standard_normal((3,) + sa)
    b = rng.standard_normal((3,) + sb)
    layer = unrolled.layers.Dot(axes=axes, normalize=normalize, dtype="float64")
    y, cache = layer.forward([a, b])
    dy = rng.standard_normal(y.shape)
    (da, db), _ = layer.backward(cache, dy)

    def f():
        return float(np.sum(layer.forward([a, b])[0] * dy))

    np.testing.assert_allclose(da, numeric_grad(f, a), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(db, numeric_grad(f, b), rtol=1e-6, atol=1e-9)


def test_dot_normalize_clips_tiny_norms_as_keras(rng):
    a = np.zeros((2, 4), "float32")
    a[1] = 1e-9                                          # a norm below Keras's epsilon, 1e-7
    b = rng.standard_normal((2, 4)).astype("float32")
    dy = rng.standard_normal((2, 1)).astype("float32")
    ours = unrolled.layers.Dot(axes=1, normalize=True)
    y, cache = ours.forward([a, b])
    want, (da_want, db_want) = _tape(keras.layers.Dot(axes=1, normalize=True), [a, b], dy)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7)
    (da, db), _ = ours.backward(cache, dy)
    np.testing.assert_allclose(da, da_want, rtol=5e-5)
    np.testing.assert_allclose(db, db_want, rtol=5e-5, atol=1e-7)


@pytest.mark.parametrize("axes,error", [("x", TypeError), ((1, 2, 3), ValueError),
                                        ((1.0, 2), ValueError)])
def test_dot_checks_axes_as_keras(axes, error):
    with pytest.raises(error):
        keras.layers.Dot(axes=axes)
    with pytest.raises(error):
        unrolled.layers.Dot(axes=axes)


def test_dot_checks_shapes():
    a, b = unrolled.Input((3, 5)), unrolled.Input((4, 6))
    with pytest.raises(ValueError, match="Incompatible input shapes"):
        unrolled.layers.Dot(axes=2)([a, b])
    with pytest.raises(ValueError, match="axis 0"):
        unrolled.layers.Dot(axes=(0, 1))([a, b])
    with pytest.raises(ValueError, match="list of 2 inputs"):
        unrolled.layers.Dot(axes=1)([a, b, a])
    out = unrolled.layers.dot([a, unrolled.Input((6, 5))], axes=(2, 2), normalize=True)
    assert tuple(out.shape) == (None, 3, 6)


def test_dot_masks_as_keras():
    ours, theirs = unrolled.layers.Dot(axes=1), keras.layers.Dot(axes=1)
    assert ours.supports_masking and theirs.supports_masking
    masks = [np.array([[True, False]]), np.array([[True, True]])]
    assert ours.compute_mask([None, None], masks) is None
    x = unrolled.Input((4, 3))
    h = unrolled.layers.Masking()(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # accepted: no warning, no mask out
        model = unrolled.Model(x, unrolled.layers.Dot(axes=2)([h, h]))
        model.predict(np.ones((1, 4, 3), "float32"), verbose=0)


# --- models -------------------------------------------------------------------------------------
def _lstm_permute(m):
    return m.Sequential([m.Input((6, 3)), m.layers.LSTM(4, return_sequences=True),
                         m.layers.Permute((2, 1)), m.layers.Dense(2), m.layers.Flatten(),
                         m.layers.Dense(2)])


def _cosine(m):
    a, b = m.Input((6, 3)), m.Input((5, 2))
    ha = m.layers.LSTM(4)(a)
    hb = m.layers.GRU(4)(b)
    sim = m.layers.Dot(axes=1, normalize=True)([ha, hb])
    return m.Model([a, b], sim)


def _attention_like(m):
    a, b = m.Input((6, 3)), m.Input((5, 3))
    ha = m.layers.LSTM(4, return_sequences=True)(a)
    hb = m.layers.LSTM(4, return_sequences=True)(b)
    scores = m.layers.dot([ha, hb], axes=(2, 2))                          # (B, 6, 5)
    mixed = m.layers.Dot(axes=(2, 1))([scores, hb])                       # (B, 6, 4)
    return m.Model([a, b], m.layers.Dense(2)(m.layers.Flatten()(mixed)))


MODELS = {"lstm-permute-dense": _lstm_permute, "cosine-similarity": _cosine,
          "dot-attention": _attention_like}


def _data(kind, rng, n=20):
    if kind == "lstm-permute-dense":
        return rng.standard_normal((n, 6, 3)).astype("float32"), \
            rng.standard_normal((n, 2)).astype("float32")
    shape_b = (n, 5, 2) if kind == "cosine-similarity" else (n, 5, 3)
    xs = [rng.standard_normal((n, 6, 3)).astype("float32"),
          rng.standard_normal(shape_b).astype("float32")]
    y = (rng.uniform(-1, 1, (n, 1)) if kind == "cosine-similarity"
         else rng.standard_normal((n, 2))).astype("float32")
    return xs, y


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fit_equals_keras(kind, rng):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    x, y = _data(kind, rng)
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.03), loss="mse")
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_files_both_ways(kind, ext, rng, tmp_path, shared):
    if ("files", kind) not in shared:           # one Keras model and run for both formats
        theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
        ours.set_weights([w * 1.5 for w in theirs.get_weights()])
        x, _ = _data(kind, rng)
        shared["files", kind] = theirs, ours, x, theirs.predict(x, verbose=0)
    theirs, ours, x, want = shared["files", kind]
    back_theirs, back_ours = files_both_ways(theirs, ours, x, tmp_path, ext, want=want)


def test_tf_keras_h5_loads(rng, tmp_path):
    k2 = tf_keras
    a, b = k2.Input((6, 3)), k2.Input((5, 3))
    ha = k2.layers.LSTM(4, return_sequences=True)(a)
    hb = k2.layers.Permute((2, 1))(k2.layers.LSTM(4, return_sequences=True)(b))   # (B, 4, 5)
    s = k2.layers.Dot(axes=(2, 1), normalize=True)([ha, hb])                       # (B, 6, 5)
    model = k2.Model([a, b], k2.layers.Dense(2)(k2.layers.Flatten()(s)))
    xs = [rng.standard_normal((5, 6, 3)).astype("float32"),
          rng.standard_normal((5, 5, 3)).astype("float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / "k2.h5")
    back = load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(back.predict(xs, verbose=0), model.predict(xs, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["Permute", "Dot"])
def test_exports_refuse_by_name(kind, tmp_path):
    from unrolled.explain import to_numpy_code
    from unrolled.interop import to_torch
    model = (_lstm_permute(unrolled) if kind == "Permute" else _cosine(unrolled))
    if kind == "Dot":          # Permute's code: test_explain_layers.py; ONNX: both export
        with pytest.raises((ValueError, NotImplementedError), match=kind):
            to_numpy_code(model)
    # to_torch takes chains only: a model with a Dot (two inputs) is refused for that
    with pytest.raises(ValueError, match=kind if kind == "Permute" else "single chain"):
        to_torch(model)
