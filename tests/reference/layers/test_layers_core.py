"""Dense, Activation, Flatten and SimpleRNN: Keras parity and float64 gradient checks."""
import itertools

import numpy as np
import pytest
from gradcheck import check_layer_gradients
from keras_ref import keras

from unrolled.layers import Activation, Dense, Flatten, SimpleRNN


@pytest.mark.parametrize("activation,ndim", list(itertools.product(
    ["linear", "tanh", "sigmoid", "relu", "softmax", "hard_sigmoid"], [2, 3])))
def test_dense_matches_keras(rng, activation, ndim):
    shape = (4, 3, 6) if ndim == 3 else (4, 6)
    x = rng.standard_normal(shape).astype("float32") * 3
    ours = Dense(5, activation=activation)
    ours(x)
    ours.set_weights([rng.standard_normal(w.shape).astype("float32") for w in ours.weights])
    theirs = keras.layers.Dense(5, activation=activation)
    theirs.build(shape)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("activation", ["linear", "tanh", "sigmoid", "relu", "softmax", "hard_sigmoid"])
def test_dense_and_activation_gradients(rng, activation):
    x = rng.standard_normal((3, 4, 5))
    layer = Dense(3, activation=activation, dtype="float64")
    layer(x)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
    check_layer_gradients(layer, [x], rng)
    check_layer_gradients(Activation(activation, dtype="float64"), [rng.standard_normal((3, 5))], rng)
    check_layer_gradients(Flatten(dtype="float64"), [rng.standard_normal((2, 3, 4))], rng)


OPTIONS = list(itertools.product([False, True], repeat=4))


@pytest.mark.parametrize("return_sequences,go_backwards,use_bias,masked", OPTIONS)
def test_simple_rnn_finite_differences(rng, return_sequences, go_backwards, use_bias, masked):
    layer = SimpleRNN(3, return_sequences=return_sequences, go_backwards=go_backwards,
                      use_bias=use_bias, return_state=True, dtype="float64")
    x = rng.standard_normal((2, 5, 4))
    h0 = rng.standard_normal((2, 3))
    layer(x)
    layer.set_weights([rng.standard_normal(w.shape) * 0.7 for w in layer.weights])
    mask = None
    if masked:
        mask = np.array([[0, 1, 1, 0, 1], [1, 1, 0, 1, 0]], bool)
    for zero_output in (False, True):
        layer.zero_output_for_mask = zero_output
        check_layer_gradients(layer, [x, h0], rng, mask=mask)


def test_stateful_gradient_treats_the_carried_state_as_a_constant(rng):
    # Truncated BPTT: a stateful layer's backward is that of the same layer started from
    # the carried state as a fixed initial_state.
    layer = SimpleRNN(3, stateful=True, return_sequences=True, dtype="float64")
    x = rng.standard_normal((2, 4, 3))
    layer(x)                       # leaves a non-zero state behind
    s0 = layer.states[0].copy()
    plain = SimpleRNN(3, return_sequences=True, dtype="float64")
    plain(x)
    plain.set_weights(layer.get_weights())
    out, cache = layer.forward(x)
    out2, cache2 = plain.forward(x, initial_state=[s0])
    np.testing.assert_allclose(out, out2)
    dy = rng.standard_normal(out.shape)
    (dx, *rest), dws = layer.backward(cache, dy)
    (dx2, _), dws2 = plain.backward(cache2, dy)
    assert rest == []
    np.testing.assert_allclose(dx, dx2)
    for a, b in zip(dws, dws2):
        np.testing.assert_allclose(a, b)


def test_dense_bad_input():
    with pytest.raises(ValueError, match="positive integer"):
        Dense(-1)
    with pytest.raises(ValueError, match="min_ndim=2"):
        Dense(2)(np.zeros(3))
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        Dense(2, unitz=3)
