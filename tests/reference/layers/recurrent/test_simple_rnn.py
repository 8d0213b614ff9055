"""SimpleRNN against real Keras: outputs, states and gradients over random configurations."""
import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras_ref import keras

from unrolled.layers import SimpleRNN

CONFIGS = list(itertools.product(
    ["tanh", "relu", "sigmoid", "linear"],   # activation
    [False, True],                           # return_sequences
    [False, True],                           # go_backwards
    [False, True],                           # use_bias
))


def _pair(rng, units, features, batch=None, **cfg):
    ours = SimpleRNN(units, **cfg)
    ours.build((batch, 3, features))
    ours.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5 for w in ours.weights])
    theirs = keras.layers.SimpleRNN(units, **cfg)
    theirs.build((batch, 3, features))
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _mask(rng, b, t):
    m = rng.random((b, t)) > 0.3
    m[0, :2] = False          # a row whose first steps are masked
    m[-1, -1] = False         # a row whose last step is masked
    return m


@pytest.mark.parametrize("activation,return_sequences,go_backwards,use_bias", CONFIGS)
def test_forward_matches_keras(rng, activation, return_sequences, go_backwards, use_bias):
    cfg = dict(activation=activation, return_sequences=return_sequences,
               go_backwards=go_backwards, use_bias=use_bias, return_state=True)
    ours, theirs = _pair(rng, 4, 3, **cfg)
    x = rng.standard_normal((5, 7, 3)).astype("float32")
    h0 = rng.standard_normal((5, 4)).astype("float32")
    mask = _mask(rng, 5, 7)
    for kwargs in ({}, {"initial_state": [h0]}, {"mask": mask}, {"mask": mask, "initial_state": [h0]}):
        got = ours(x, **kwargs)
        want = theirs(x, **kwargs)
        assert len(got) == len(want) == 2
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, np.asarray(w), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("zero_output", [False, True])
def test_masked_sequences_and_zero_output_for_mask(rng, zero_output):
    ours, theirs = _pair(rng, 3, 2, return_sequences=True, zero_output_for_mask=zero_output)
    x = rng.standard_normal((4, 6, 2)).astype("float32")
    mask = _mask(rng, 4, 6)
    np.testing.assert_allclose(ours(x, mask=mask), np.asarray(theirs(x, mask=mask)), atol=1e-6)


def test_stateful_matches_keras_and_resets(rng):
    ours, theirs = _pair(rng, 4, 3, batch=2, stateful=True, return_sequences=True)
    x1, x2 = (rng.standard_normal((2, 5, 3)).astype("float32") for _ in range(2))
    for x in (x1, x2):
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), atol=1e-6)
    ours.reset_state()
    theirs.reset_state()
    np.testing.assert_allclose(ours(x2), np.asarray(theirs(x2)), atol=1e-6)
    with pytest.raises(ValueError, match="batch size"):
        ours(rng.standard_normal((3, 5, 3)))


def test_keras_correctness_case_constant_weights():
    # Keras's own SimpleRNN correctness test: units=3, 4 steps of 5 features (x = arange/...
    # reproduced with the same deterministic input and constant initializers).
    x = np.arange(3 * 4 * 5, dtype="float32").reshape(3, 4, 5) / 60.0
    kw = dict(kernel_initializer=keras.initializers.Constant(0.01),
              recurrent_initializer=keras.initializers.Constant(-0.02),
              bias_initializer=keras.initializers.Constant(0.03))
    from unrolled import initializers as ui
    ours = SimpleRNN(3, kernel_initializer=ui.Constant(0.01),
                     recurrent_initializer=ui.Constant(-0.02), bias_initializer=ui.Constant(0.03))
    theirs = keras.layers.SimpleRNN(3, **kw)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), atol=1e-6)


def _grads_keras(theirs, x, dy, h0=None, mask=None):
    xv = tf.constant(x)
    h0v = None if h0 is None else tf.constant(h0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xv)
        if h0v is not None:
            tape.watch(h0v)
        kwargs = {}
        if h0v is not None:
            kwargs["initial_state"] = [h0v]
        if mask is not None:
            kwargs["mask"] = tf.constant(mask)
        out = theirs(xv, **kwargs)
        loss = tf.reduce_sum(out * dy)
    gw = tape.gradient(loss, theirs.trainable_weights)
    gx = tape.gradient(loss, xv)
    gh = None if h0v is None else tape.gradient(loss, h0v)
    return [np.asarray(g) for g in gw], np.asarray(gx), None if gh is None else np.asarray(gh)


@pytest.mark.parametrize("return_sequences,go_backwards,use_mask", list(itertools.product([False, True], repeat=3)))
def test_gradients_match_keras(rng, return_sequences, go_backwards, use_mask):
    ours, theirs = _pair(rng, 4, 3, return_sequences=return_sequences, go_backwards=go_backwards)
    x = rng.standard_normal((5, 6, 3)).astype("float32")
    h0 = rng.standard_normal((5, 4)).astype("float32")
    mask = _mask(rng, 5, 6) if use_mask else None
    out, cache = ours.forward(x, mask=mask, initial_state=[h0])
    dy = rng.standard_normal(out.shape).astype("float32")
    (dx, dh0), dws = ours.backward(cache, dy)
    kws, kx, kh = _grads_keras(theirs, x, dy, h0, mask)
    for g, k in zip(dws, kws):
        np.testing.assert_allclose(g, k, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(dx, kx, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(dh0, kh, atol=2e-5, rtol=1e-4)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="positive integer"):
        SimpleRNN(0)
    with pytest.raises(ValueError, match="Unknown activation"):
        SimpleRNN(3, activation="swishy")
    with pytest.raises(ValueError, match="Unknown initializer"):
        SimpleRNN(3, kernel_initializer="nope")
    layer = SimpleRNN(3)
    with pytest.raises(ValueError, match="expected ndim=3"):
        layer(np.zeros((2, 3)))
    layer(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="axis -1 of input shape to have value 5"):
        layer(np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match="(?i)initial state"):
        layer(np.zeros((2, 4, 5)), initial_state=[np.zeros((2, 4))])
    with pytest.raises(ValueError, match="mask"):
        layer(np.zeros((2, 4, 5)), mask=np.ones((2, 3), bool))
    with pytest.raises(TypeError, match="numeric"):
        layer(np.array([["a"]]))
    with pytest.raises(ValueError, match="expects 3 weights"):
        layer.set_weights([np.zeros((5, 3))])
    with pytest.raises(ValueError, match=r"shape \(5, 3\)"):
        layer.set_weights([np.zeros((3, 5)), np.zeros((3, 3)), np.zeros(3)])
