"""``activity_regularizer=`` on any layer (issue 20.13), against Keras 3.

Keras 3 adds ``R(y) / batch_size`` to the loss for every output ``y`` of a call of a layer
with an activity regularizer (all of a recurrent layer's outputs with ``return_state``),
in ``fit``, ``train_on_batch`` and ``evaluate``; Bidirectional calls its two layers, so their
regularizers count too; TimeDistributed runs its layer's ``call``, which adds nothing (refused
here). Layers alone: outputs, ``losses`` and gradients of ``sum(y * dy) + sum(losses)`` equal
Keras's (tf.GradientTape); float64 finite differences; models: 3-epoch fits with Adam,
``shuffle=False``, history at rel 1e-5, final weights, ``evaluate``, ``model.losses``; files
both ways (.keras, .h5, and a tf.keras 2 .h5 whose penalties train as tf.keras 2 trains them).
"""
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from gradcheck import numeric_grad, rel_error
from keras_ref import files_both_ways, keras

import unrolled
from unrolled.models import load_model


# --- layers alone ----------------------------------------------------------------------------
def _rule(m, which):
    return {"l1": m.regularizers.L1(0.03), "l2": m.regularizers.L2(0.05),
            "l1l2": m.regularizers.L1L2(0.02, 0.04), "name-l2": "l2"}[which]


# kind: (layer maker, input maker); each layer's outputs are regularized
LAYERS = {
    "dense-2d": (lambda m, r: m.layers.Dense(4, activation="tanh", activity_regularizer=r),
                 lambda rng: rng.standard_normal((5, 3))),
    "dense-3d": (lambda m, r: m.layers.Dense(4, activity_regularizer=r),
                 lambda rng: rng.standard_normal((5, 6, 3))),
    "lstm": (lambda m, r: m.layers.LSTM(4, activity_regularizer=r),
             lambda rng: rng.standard_normal((5, 6, 3))),
    "lstm-sequences": (lambda m, r: m.layers.LSTM(4, return_sequences=True,
                                                  activity_regularizer=r),
                       lambda rng: rng.standard_normal((5, 6, 3))),
    "gru-state": (lambda m, r: m.layers.GRU(4, return_state=True, activity_regularizer=r),
                  lambda rng: rng.standard_normal((5, 6, 3))),
    "gru-sequences-state": (lambda m, r: m.layers.GRU(4, return_sequences=True,
                                                      return_state=True,
                                                      activity_regularizer=r),
                            lambda rng: rng.standard_normal((5, 6, 3))),
    "lstm-state": (lambda m, r: m.layers.LSTM(3, return_state=True, activity_regularizer=r),
                   lambda rng: rng.standard_normal((5, 6, 3))),
    "conv1d": (lambda m, r: m.layers.Conv1D(4, 3, padding="causal", activation="relu",
                                            activity_regularizer=r),
               lambda rng: rng.standard_normal((5, 7, 3))),
    "bidirectional": (lambda m, r: m.layers.Bidirectional(
        m.layers.LSTM(3, return_sequences=True, activity_regularizer=r),
        activity_regularizer=m.regularizers.L2(0.07)),
        lambda rng: rng.standard_normal((5, 6, 3))),
}


def _varied_weights(layer, rng):
    return [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in layer.get_weights()]


@pytest.mark.parametrize("which", ["l1", "l2", "l1l2", "name-l2"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_penalties_and_gradients_equal_keras(kind, which, rng):
    make, data = LAYERS[kind]
    x = data(rng).astype("float32")
    theirs, ours = make(keras, _rule(keras, which)), make(unrolled, _rule(unrolled, which))
    theirs(x)
    ours(x)
    weights = _varied_weights(theirs, rng)
    theirs.set_weights(weights)
    ours.set_weights(weights)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = theirs(xt)
        outs = out if isinstance(out, (list, tuple)) else [out]
        dys = [rng.standard_normal(o.shape).astype("float32") for o in outs]
        loss = tf.add_n([tf.reduce_sum(o * d) for o, d in zip(outs, dys)] + theirs.losses)
    want = tape.gradient(loss, [xt] + theirs.trainable_weights)
    got_out = ours(x)
    got_outs = got_out if isinstance(got_out, (list, tuple)) else [got_out]
    for a, b in zip(got_outs, outs):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-6, atol=1e-6)
    assert len(ours.losses) == len(theirs.losses) >= len(outs)
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-6,
                               atol=1e-7)
    (dx, *_), dweights = ours.gradients(x, dys if len(dys) > 1 else dys[0])
    for a, b in zip([dx] + list(dweights), want):
        b = np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=5e-5, atol=5e-5 * np.abs(b).max())
    ours(x[:2])                                             # a new call: its penalties only
    assert len(ours.losses) == len(theirs.losses)


def test_embedding_penalty_and_gradient_equal_keras(rng):
    x = rng.integers(0, 12, (5, 7)).astype("int32")
    theirs = keras.layers.Embedding(12, 4, activity_regularizer=keras.regularizers.L1L2(0.1, 0.2))
    ours = unrolled.layers.Embedding(12, 4,
                                     activity_regularizer=unrolled.regularizers.L1L2(0.1, 0.2))
    theirs(x)
    ours(x)
    weights = _varied_weights(theirs, rng)
    theirs.set_weights(weights)
    ours.set_weights(weights)
    dy = rng.standard_normal((5, 7, 4)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(theirs(x) * dy) + tf.add_n(theirs.losses)
    want = tape.gradient(loss, theirs.embeddings)
    ours(x)
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-6)
    _, (dw,) = ours.gradients(x, dy)
    np.testing.assert_allclose(dw, tf.convert_to_tensor(want).numpy(), rtol=5e-5, atol=5e-6)


@pytest.mark.parametrize("kind", ["dense-3d", "lstm-sequences", "gru-sequences-state",
                                  "conv1d", "bidirectional"])
def test_finite_differences_float64(kind, rng):
    make, data = LAYERS[kind]
    rule = unrolled.regularizers.L1L2(0.03, 0.05)
    layer = make(unrolled, rule)
    if kind == "bidirectional":
        layer = unrolled.layers.Bidirectional(
            unrolled.layers.LSTM(3, return_sequences=True, activity_regularizer=rule,
                                 dtype="float64"), activity_regularizer="l2", dtype="float64")
    else:
        config = layer.get_config()
        layer = type(layer).from_config({**config, "dtype": "float64",
                                         "name": config["name"] + "_64"})
    x = data(rng)
    layer(x)
    layer.set_weights([w.astype("float64") for w in _varied_weights(layer, rng)])
    outs = layer(x)
    outs = outs if isinstance(outs, list) else [outs]
    dys = [rng.standard_normal(o.shape) for o in outs]
    assert len(layer.losses) >= len(outs) and min(layer.losses) > 0

    def f():
        ys = layer(x)
        ys = ys if isinstance(ys, list) else [ys]
        return sum(float(np.sum(y * d)) for y, d in zip(ys, dys)) + sum(layer.losses)

    (dx, *_), dweights = layer.gradients(x, dys if len(dys) > 1 else dys[0])
    assert rel_error(dx, numeric_grad(f, x)) < 1e-6
    for var, g in zip(layer.weights, dweights):
        assert rel_error(g, numeric_grad(f, var.value)) < 1e-6, var.name


def test_the_penalty_enters_the_gradient(rng):
    """Without the penalty's gradient, the gradient would be dy's alone: the two differ."""
    x = rng.standard_normal((4, 5, 3)).astype("float32")
    plain = unrolled.layers.LSTM(3, return_sequences=True)
    reg = unrolled.layers.LSTM(3, return_sequences=True, activity_regularizer="l2")
    plain(x)
    reg(x)
    reg.set_weights(plain.get_weights())
    dy = rng.standard_normal((4, 5, 3)).astype("float32")
    (dx0, *_), dw0 = plain.gradients(x, dy)
    (dx1, *_), dw1 = reg.gradients(x, dy)
    # the penalty 0.01 * sum(y^2) / B adds dy' = 0.02 * y / B: the same as a plain layer with it
    y = plain(x)
    (dx2, *_), dw2 = plain.gradients(x, dy + np.float32(0.02 / 4) * y)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-5, atol=1e-7)
    assert not np.allclose(dx0, dx1, rtol=1e-4, atol=1e-6)
    for a, b in zip(dw1, dw2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


# --- models: fit, evaluate, losses ---------------------------------------------------------------
def _stacked_lstm(m):
    return m.Sequential([
        m.Input((6, 3)),
        m.layers.LSTM(5, return_sequences=True,
                      activity_regularizer=m.regularizers.L1L2(0.01, 0.02)),
        m.layers.LSTM(4, activity_regularizer=m.regularizers.L2(0.03)),
        m.layers.Dense(2, activity_regularizer="l1")])


def _gru_state(m):
    inp = m.Input((6, 3))
    seq, h = m.layers.GRU(4, return_sequences=True, return_state=True,
                          activity_regularizer=m.regularizers.L1(0.02))(inp)
    last, h2 = m.layers.GRU(3, return_state=True, activity_regularizer="l2")(seq)
    out = m.layers.Dense(2)(m.layers.Concatenate()([last, h, h2]))
    return m.Model(inp, out)


def _embedding_conv_bidirectional(m):
    return m.Sequential([
        m.Input((7,), dtype="int32"),
        m.layers.Embedding(20, 4, activity_regularizer=m.regularizers.L2(0.02)),
        m.layers.Conv1D(5, 3, padding="same", activation="relu",
                        activity_regularizer=m.regularizers.L1(0.01)),
        m.layers.Bidirectional(m.layers.LSTM(3, return_sequences=True,
                                             activity_regularizer=m.regularizers.L1L2(0.01, 0.01)),
                               merge_mode="sum", activity_regularizer="l2"),
        m.layers.LSTM(3, activity_regularizer="l1"),
        m.layers.ActivityRegularization(l1=0.01, l2=0.03),
        m.layers.Dense(2)])


def _masked(m):
    """Masked steps: the recurrent outputs there are Keras's (the previous step's), and the
    penalties are of those outputs, as Keras computes them."""
    return m.Sequential([
        m.Input((7,), dtype="int32"),
        m.layers.Embedding(20, 4, mask_zero=True),
        m.layers.LSTM(5, return_sequences=True, activity_regularizer=m.regularizers.L2(0.05)),
        m.layers.Bidirectional(m.layers.GRU(3, activity_regularizer="l1")),
        m.layers.Dense(2, activity_regularizer=m.regularizers.L1L2(0.01, 0.02))])


MODELS = {"stacked-lstm": _stacked_lstm, "gru-return-state": _gru_state,
          "embedding-conv-bidirectional": _embedding_conv_bidirectional, "masked": _masked}


def _data(kind, rng, n=20):
    if kind == "masked":
        x = rng.integers(1, 20, (n, 7)).astype("int32")
        x[np.arange(7)[None, :] >= rng.integers(2, 8, (n, 1))] = 0     # padded at the end
    elif kind == "embedding-conv-bidirectional":
        x = rng.integers(0, 20, (n, 7)).astype("int32")
    else:
        x = rng.standard_normal((n, 6, 3)).astype("float32")
    return x, rng.standard_normal((n, 2)).astype("float32")


def _fit_both(theirs, ours, x, y, kw):
    for mod, model in ((keras, theirs), (unrolled, ours)):
        model.compile(optimizer=mod.optimizers.Adam(0.02), loss="mse")
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fit_equals_keras(kind, rng):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights(theirs.get_weights())
    x, y = _data(kind, rng)
    _fit_both(theirs, ours, x, y, dict(epochs=3, batch_size=8, shuffle=False, verbose=0))
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0, batch_size=8),
                               theirs.evaluate(x, y, verbose=0, batch_size=8), rtol=1e-5)
    np.testing.assert_allclose(ours.train_on_batch(x[:5], y[:5]),
                               float(theirs.train_on_batch(x[:5], y[:5])), rtol=1e-5)
    theirs(x[:5])                                  # Keras's losses: those of the last call
    ours.evaluate(x[:5], y[:5], verbose=0)         # (ours: of the last step, all calls)
    assert len(ours.losses) == len(theirs.losses) >= 3
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-5,
                               atol=1e-8)
    # the penalties are in the loss: without them evaluate is lower by their sum
    with_them, penalties = ours.evaluate(x[:5], y[:5], verbose=0), sum(ours.losses)
    for layer in _all_layers(ours):
        layer.activity_regularizer = None
    assert ours.losses == [] and penalties > 1e-3
    np.testing.assert_allclose(with_them - ours.evaluate(x[:5], y[:5], verbose=0), penalties,
                               rtol=1e-5)


def _all_layers(model):
    found, stack = [], list(model.layers)
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(layer._sublayers())
    return found


def test_model_losses_list_keras_order(rng):
    """Keras lists a model's penalties layer by layer, each layer's sublayers after it, last
    first (Bidirectional: its own, the backward layer's, the forward layer's)."""
    theirs, ours = _embedding_conv_bidirectional(keras), _embedding_conv_bidirectional(unrolled)
    # fixed weights (Keras's initializers are not seeded here), so that the penalties differ
    theirs.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5
                        for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    x, _ = _data("embedding-conv-bidirectional", rng)
    theirs(x[:6])
    ours(x[:6])
    assert len(theirs.losses) == 7
    np.testing.assert_allclose(ours.losses, [float(v) for v in theirs.losses], rtol=1e-5)
    ordered = np.sort(ours.losses)                       # all differ, so the order shows
    assert np.all(ordered[1:] > ordered[:-1] * (1 + 1e-3)), ordered


# --- what is not implemented, refused by name ---------------------------------------------------
def test_refusals():
    with pytest.raises(NotImplementedError, match="OrthogonalRegularizer"):
        unrolled.layers.LSTM(3, activity_regularizer="OrthogonalRegularizer")
    with pytest.raises(NotImplementedError, match="cell"):
        unrolled.layers.SimpleRNNCell(3, activity_regularizer="l2")
    with pytest.raises(TypeError, match="activity_regularizer"):
        unrolled.layers.SpatialDropout1D(0.2, activity_regularizer="l2")
    with pytest.raises(TypeError):                         # Keras's: not both
        keras.layers.SpatialDropout1D(0.2, activity_regularizer="l2")
    with pytest.raises(TypeError, match="activity_regularizer"):
        unrolled.layers.ActivityRegularization(0.1, activity_regularizer="l2")
    with pytest.raises(TypeError, match="activity_regularizer"):
        keras.layers.ActivityRegularization(0.1, activity_regularizer="l2")
    with pytest.raises(ValueError, match="regularizer"):
        unrolled.layers.Dense(2, activity_regularizer="l3")
    inp = unrolled.Input((3,))
    with pytest.raises(NotImplementedError, match="model"):
        unrolled.Model(inp, unrolled.layers.Dense(2)(inp), activity_regularizer="l2")


def test_inside_time_distributed_is_refused(rng):
    model = unrolled.Sequential([unrolled.Input((4, 3)), unrolled.layers.TimeDistributed(
        unrolled.layers.Dense(3, activity_regularizer="l2")), unrolled.layers.LSTM(2)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="TimeDistributed"):
        model.fit(rng.standard_normal((4, 4, 3)), rng.standard_normal((4, 2)), verbose=0)
    with pytest.raises(NotImplementedError, match="TimeDistributed"):
        model.evaluate(rng.standard_normal((4, 4, 3)), rng.standard_normal((4, 2)), verbose=0)
    model.predict(rng.standard_normal((4, 4, 3)), verbose=0)   # inference is unaffected
    assert model.losses == []                                  # as Keras's: nothing from it
    # on the wrapper itself it is Keras's: the wrapper's output is regularized
    theirs = keras.Sequential([keras.Input((4, 3)), keras.layers.TimeDistributed(
        keras.layers.Dense(3), activity_regularizer="l2"), keras.layers.LSTM(2)])
    ours = unrolled.Sequential([unrolled.Input((4, 3)), unrolled.layers.TimeDistributed(
        unrolled.layers.Dense(3), activity_regularizer="l2"), unrolled.layers.LSTM(2)])
    ours.set_weights(theirs.get_weights())
    x = rng.standard_normal((8, 4, 3)).astype("float32")
    y = rng.standard_normal((8, 2)).astype("float32")
    _fit_both(theirs, ours, x, y, dict(epochs=2, batch_size=4, shuffle=False, verbose=0))


def test_set_after_construction_and_removed(rng):
    x = rng.standard_normal((4, 3)).astype("float32")
    layer = unrolled.layers.Dense(2)
    y = layer(x)
    assert layer.losses == []
    layer.activity_regularizer = "l2"
    np.testing.assert_allclose(layer(x), y)
    np.testing.assert_allclose(layer.losses, [0.01 * np.sum(y.astype(float) ** 2) / 4],
                               rtol=1e-6)
    layer.activity_regularizer = None
    _, cache = layer.forward(x)
    assert "forward" not in vars(layer) and not hasattr(cache, "outputs")


def test_an_empty_batch_adds_nothing_as_keras_divide_no_nan():
    x = np.zeros((0, 3), "float32")
    theirs, ours = (m.layers.Dense(2, activity_regularizer="l2") for m in (keras, unrolled))
    theirs(x)
    ours(x)
    assert ours.losses == [float(v) for v in theirs.losses] == [0.0]
    (dx,), (dw, db) = ours.gradients(x, np.zeros((0, 2), "float32"))
    assert dx.shape == (0, 3) and np.all(dw == 0) and np.all(db == 0)


def test_exports_and_trace_ignore_it_as_inference_does(rng, tmp_path):
    """An activity regularizer changes training only: the exported programs and the trace
    equal the model's predictions."""
    import torch

    from unrolled.explain import to_numpy_code, trace
    from unrolled.interop import to_torch
    x, _ = _data("stacked-lstm", rng, n=4)
    for model in (_stacked_lstm(unrolled), _gru_state(unrolled)):
        want = model.predict(x, verbose=0)
        ns = {}
        exec(to_numpy_code(model), ns)
        np.testing.assert_allclose(ns["predict"](x), want, rtol=1e-5, atol=1e-6)
        tr = trace(model, x)                              # (it reads the layers' caches)
        np.testing.assert_allclose(tr.outputs, want, rtol=1e-6, atol=1e-7)
        assert all(layer.name in tr.layers for layer in model.layers if layer.weights)
    model = _stacked_lstm(unrolled)                       # (to_torch: chains of layers)
    np.testing.assert_allclose(to_torch(model)(torch.from_numpy(x)).detach().numpy(),
                               model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


# --- files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("kind", ["stacked-lstm", "embedding-conv-bidirectional"])
def test_files_both_ways(kind, ext, rng, tmp_path):
    theirs, ours = MODELS[kind](keras), MODELS[kind](unrolled)
    ours.set_weights([w * 1.5 for w in theirs.get_weights()])   # ours differ from theirs
    x, y = _data(kind, rng, n=12)
    back_theirs, back_ours = files_both_ways(theirs, ours, x, tmp_path, ext)

    def rules(model):
        walk = [sub for layer in model.layers for sub in
                [layer] + [getattr(layer, k) for k in ("forward_layer", "backward_layer")
                           if hasattr(layer, k)]]
        return [None if layer.activity_regularizer is None or
                type(layer).__name__ == "ActivityRegularization"
                else (type(layer.activity_regularizer).__name__,
                      {k: round(float(v), 7)
                       for k, v in layer.activity_regularizer.get_config().items()})
                for layer in walk]
    assert rules(back_theirs) == rules(theirs) and rules(back_ours) == rules(ours)
    assert sum(r is not None for r in rules(ours)) >= 3
    # the file's regularizers train: a fit of the loaded model equals Keras's
    back_theirs.set_weights(theirs.get_weights())
    _fit_both(theirs, back_theirs, x, y, dict(epochs=2, batch_size=5, shuffle=False, verbose=0))


def test_tf_keras_h5_trains_as_tf_keras(rng, tmp_path):
    """tf.keras 2 wrote ``activity_regularizer`` as a ``{"class_name", "config"}`` dict and
    divided each output's penalty by its batch size, as Keras 3 does: a Keras 2 file means the
    same loss. Its fit (Adam) equals tf.keras 2's own."""
    k2 = tf_keras
    theirs = k2.Sequential([
        k2.layers.LSTM(4, return_sequences=True, input_shape=(6, 3),
                       activity_regularizer=k2.regularizers.L1L2(0.01, 0.02)),
        k2.layers.GRU(3, activity_regularizer=k2.regularizers.L2(0.03)),
        k2.layers.Dense(2, activity_regularizer=k2.regularizers.L1(0.02))])
    x, y = _data("stacked-lstm", rng, n=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.save(tmp_path / "k2.h5")
    ours = load_model(tmp_path / "k2.h5")
    assert [type(layer.activity_regularizer).__name__ for layer in ours.layers] == [
        "L1L2", "L2", "L1"]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    theirs.compile(optimizer=k2.optimizers.Adam(0.02), loss="mse")
    ours.compile(optimizer=unrolled.optimizers.Adam(0.02), loss="mse")
    kw = dict(epochs=3, batch_size=5, shuffle=False, verbose=0)
    want = theirs.fit(x, y, **kw).history["loss"]
    got = ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def test_tf_keras_h5_time_distributed_inner_regularizer_is_refused_in_training(rng, tmp_path):
    """tf.keras 2's TimeDistributed called its layer, whose penalty was divided by
    batch * timesteps (6.0 here, not Keras 3's nothing): such a file predicts, and its
    training is refused by name rather than given either meaning silently."""
    k2 = tf_keras
    theirs = k2.Sequential([k2.layers.TimeDistributed(
        k2.layers.Dense(2, kernel_initializer="ones", use_bias=False,
                        activity_regularizer=k2.regularizers.L1(1.0)), input_shape=(4, 3)),
        k2.layers.LSTM(2)])
    x = np.ones((5, 4, 3), "float32")
    theirs(x)
    assert [float(v) for v in theirs.losses] == [6.0]          # sum |y| = 120, / (5 * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.save(tmp_path / "td.h5")
    ours = load_model(tmp_path / "td.h5")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    ours.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="TimeDistributed"):
        ours.fit(x, np.zeros((5, 2), "float32"), verbose=0)
