"""explain.gradient_flow: dLoss/dh_t and the step Jacobians against TensorFlow's GradientTape
on the same network unrolled by hand in TF, and against our own weight gradients."""
import numpy as np
import pytest
from conftest import varied
from keras_ref import keras

import tensorflow as tf
from unrolled.fast import kernels
from unrolled.explain import gradient_flow, step_jacobian, trace
from unrolled.layers import GRU, LSTM, Dense, Flatten, Input, SimpleRNN
from unrolled.models import Model

T, F, M, B = 6, 3, 4, 2

KERAS_CELLS = {
    "simple": lambda: (SimpleRNN, {}, keras.layers.SimpleRNNCell(M)),
    "lstm": lambda: (LSTM, {}, keras.layers.LSTMCell(M)),
    "gru": lambda: (GRU, {}, keras.layers.GRUCell(M)),
    "gru_before": lambda: (GRU, {"reset_after": False}, keras.layers.GRUCell(M, reset_after=False)),
}


def build(kind, rng, go_backwards=False, return_sequences=False):
    cls, kwargs, kcell = KERAS_CELLS[kind]()
    i = Input((T, F))
    h = cls(M, go_backwards=go_backwards, return_sequences=return_sequences, name="rnn", **kwargs)(i)
    if return_sequences:
        h = Flatten()(h)
    model = Model(i, Dense(2, name="out")(h))
    model.set_weights([varied(rng, *w.shape) for w in model.get_weights()])
    model.compile(loss="mse")
    kcell.build((None, F))
    kcell.set_weights(model.get_layer("rnn").get_weights())
    return model, kcell


def tf_dh(model, kcell, x, y, go_backwards):
    """dLoss/dh_t for every t, by GradientTape on the loop unrolled in TF (real time order)."""
    W, b = model.get_layer("out").get_weights()
    n_states = 2 if isinstance(kcell, keras.layers.LSTMCell) else 1
    with tf.GradientTape() as tape:
        states = [tf.zeros((B, M))] * n_states
        hs = {}
        for t in (range(T - 1, -1, -1) if go_backwards else range(T)):
            h, states = kcell(tf.constant(x[:, t]), states)
            hs[t] = h
        y_pred = h @ W + b
        loss = tf.reduce_mean(tf.square(y_pred - y))
    grads = tape.gradient(loss, [hs[t] for t in range(T)])
    return np.stack([g.numpy() for g in grads], axis=1), float(loss)


@pytest.mark.parametrize("kind", list(KERAS_CELLS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_dh_equals_tensorflow_gradient_tape(rng, kind, go_backwards):
    x = rng.standard_normal((B, T, F)).astype("float32")
    y = rng.standard_normal((B, 2)).astype("float32")
    model, kcell = build(kind, rng, go_backwards)
    flow = gradient_flow(model, x, y)
    expected, loss = tf_dh(model, kcell, x, y, go_backwards)
    lf = flow["rnn"]
    assert flow.loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(lf.dh, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(lf.norm, np.sqrt((expected.astype(float) ** 2).sum(axis=(0, 2))), rtol=1e-4)


@pytest.mark.parametrize("kind", list(KERAS_CELLS))
def test_step_jacobian_equals_tensorflow_batch_jacobian(rng, kind):
    x = rng.standard_normal((B, T, F)).astype("float32")
    model, kcell = build(kind, rng)
    lt = trace(model.get_layer("rnn"), x)[0]
    cell = model.get_layer("rnn").cell
    with kernels.unfused():              # the reference steps keep a cache per step
        _, cache = model.get_layer("rnn").forward(x)
    lstm = "c" in lt
    for t in (0, 3, T - 1):
        prev = [lt.h_prev[:, t]] + ([lt.c_prev[:, t]] if lstm else [])
        s_prev = tf.constant(np.concatenate(prev, axis=1))
        with tf.GradientTape() as tape:
            tape.watch(s_prev)
            states = [s_prev[:, :M], s_prev[:, M:]] if lstm else [s_prev]
            _, new = kcell(tf.constant(x[:, t]), states)
            s_new = tf.concat(new, axis=1)
        expected = tape.batch_jacobian(s_new, s_prev).numpy()
        np.testing.assert_allclose(step_jacobian(cell, cache[3][t]), expected, atol=2e-6)
    norms = gradient_flow(model, x, rng.standard_normal((B, 2))).layers["rnn"].jacobian_norm
    J = step_jacobian(cell, cache[3][2]).astype(float)
    np.testing.assert_allclose(norms[:, 2], [np.linalg.norm(J[b], 2) for b in range(B)], rtol=1e-6)


def test_per_step_gradients_agree_with_model_gradients(rng):
    """SimpleRNN's bias gradient is sum over t of dLoss/da_t = dLoss/dh_t * (1 - h_t^2)."""
    x = rng.standard_normal((B, T, F)).astype("float32")
    y = rng.standard_normal((B, 2)).astype("float32")
    model, _ = build("simple", rng, return_sequences=True)
    flow = gradient_flow(model, x, y)
    h = trace(model, x)["rnn"].h
    _, grads = model.gradients(x, y)
    dbias = grads[2]
    np.testing.assert_allclose((flow["rnn"].dh * (1 - h ** 2)).sum(axis=(0, 1)), dbias, rtol=1e-4, atol=1e-7)
    # and the chain rule between steps: dh_{t-1} = J_t^T dh_t + dLoss/d(output_{t-1})
    with kernels.unfused():              # the reference steps keep a cache per step
        _, cache = model.get_layer("rnn").forward(x)
    cell = model.get_layer("rnn").cell
    dh = flow["rnn"].dh
    direct = dh - np.concatenate([np.einsum("bji,bj->bi", step_jacobian(cell, cache[3][t]), dh[:, t])[:, None]
                                  for t in range(1, T)] + [np.zeros((B, 1, M))], axis=1)
    dy = model.loss.gradient(y, model.predict(x, verbose=0))
    dseq = (dy @ model.get_layer("out").kernel.value.T).reshape(B, T, M)   # dLoss/d(output_t)
    np.testing.assert_allclose(direct, dseq, rtol=1e-4, atol=1e-7)


def test_vanishing_gradients_are_visible(rng):
    x = rng.standard_normal((B, 30, F)).astype("float32")
    i = Input((30, F))
    model = Model(i, Dense(1)(SimpleRNN(4, name="rnn")(i)))
    model.set_weights([w * 0.3 for w in model.get_weights()])   # small weights: gradients fade
    flow = gradient_flow(model, x, np.ones((B, 1)), loss="mse")
    lf = flow["rnn"]
    assert lf.norm[0] < 1e-6 * lf.norm[-1] and lf.ratio() < 1e-6
    assert np.all(lf.jacobian_norm < 1)
    assert "vanishing" in flow.describe()


def test_bad_inputs(rng):
    i = Input((T, F))
    model = Model(i, Dense(1)(Flatten()(i)))
    with pytest.raises(ValueError, match="needs a loss"):
        gradient_flow(model, np.zeros((1, T, F)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="no recurrent layer"):
        gradient_flow(model, np.zeros((1, T, F)), np.zeros((1, 1)), loss="mse")
    rnn, _ = build("lstm", rng)
    with pytest.raises(ValueError, match="Targets y have shape"):
        gradient_flow(rnn, np.zeros((1, T, F)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="expected shape"):
        gradient_flow(rnn, np.zeros((1, T + 1, F)), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="Model or Sequential"):
        gradient_flow(rnn.get_layer("rnn"), np.zeros((1, T, F)), np.zeros((1, 2)))
