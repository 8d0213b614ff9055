"""Bidirectional and TimeDistributed against real Keras: outputs, masks, gradients.

Every weight is drawn at random, so a swapped forward/backward half, a missing flip or a
wrong merge cannot hide behind constant weights. Gradients are checked twice: against
``tf.GradientTape`` on the same Keras layer, and by finite differences in float64.
"""
import itertools

import numpy as np
import pytest
import tensorflow as tf
from gradcheck import check_layer_gradients
from keras_ref import keras

from unrolled.layers import (GRU, LSTM, Bidirectional, Dense, Embedding, Input, Masking,
                             SimpleRNN, TimeDistributed)
from unrolled.models import Model
from unrolled.utils import to_list

OURS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
THEIRS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
N_STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1}
MERGE_MODES = ["concat", "sum", "mul", "ave", None]


def _randomize(layer, rng, dtype="float32"):
    layer.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(dtype) for w in layer.weights])


def _mask(rng, b, t):
    m = rng.random((b, t)) > 0.3
    m[0, :2] = False          # first steps masked
    m[-1, -1] = False         # last step masked
    return m


def _bidir_pair(rng, kind, units, x_shape, merge_mode, **cfg):
    ours = Bidirectional(OURS[kind](units, **cfg), merge_mode=merge_mode)
    ours.build(x_shape)
    _randomize(ours, rng)
    theirs = keras.layers.Bidirectional(THEIRS[kind](units, **cfg), merge_mode=merge_mode)
    theirs.build(x_shape)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _close(got, want, atol=1e-6, rtol=1e-5):
    got, want = to_list(got), [np.asarray(w) for w in to_list(want)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol)


BIDIRECTIONAL_CASES = list(itertools.product(
    ["simple_rnn", "lstm", "gru"], MERGE_MODES, [False, True], [False, True]))


def _bidir_case(shared, rng, kind, merge_mode, return_sequences, return_state):
    """One configuration's layers (ours with random weights, Keras's with a copy), input,
    initial states and mask, and Keras's side of the forward and the gradient tests: its
    outputs called without and with the mask and the states (the last call under a
    ``tf.GradientTape``), the random ``dys`` of the loss ``sum(out * dy)`` and the gradients
    of that loss for the input, the states and the weights. Run once for both tests."""
    key = ("bidirectional", kind, merge_mode, return_sequences, return_state)
    if key in shared:
        return shared[key]
    ours, theirs = _bidir_pair(rng, kind, 3, (4, 6, 5), merge_mode,
                               return_sequences=return_sequences, return_state=return_state)
    x = rng.standard_normal((4, 6, 5)).astype("float32")
    states = [rng.standard_normal((4, 3)).astype("float32") for _ in range(2 * N_STATES[kind])]
    mask = _mask(rng, 4, 6)
    outs = [[np.asarray(o) for o in to_list(theirs(x, **kwargs))]
            for kwargs in ({}, {"mask": mask}, {"initial_state": states})]
    xv, sv = tf.constant(x), [tf.constant(s) for s in states]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xv] + sv)
        last = to_list(theirs(xv, initial_state=sv, mask=tf.constant(mask)))
        dys = [rng.standard_normal(o.shape).astype("float32") for o in last]
        loss = sum(tf.reduce_sum(o * d) for o, d in zip(last, dys))
    outs.append([np.asarray(o) for o in last])
    k_dinputs = [np.asarray(g) for g in tape.gradient(loss, [xv] + sv)]
    k_dweights = [np.asarray(g) for g in tape.gradient(loss, theirs.trainable_weights)]
    shared[key] = ours, x, states, mask, outs, dys, k_dinputs + k_dweights
    return shared[key]


@pytest.mark.parametrize("kind,merge_mode,return_sequences,return_state", BIDIRECTIONAL_CASES)
def test_bidirectional_forward_matches_keras(rng, shared, kind, merge_mode, return_sequences,
                                             return_state):
    ours, x, states, mask, outs, _, _ = _bidir_case(shared, rng, kind, merge_mode,
                                                    return_sequences, return_state)
    for kwargs, want in zip(({}, {"mask": mask}, {"initial_state": states},
                             {"mask": mask, "initial_state": states}), outs):
        _close(ours(x, **kwargs), want)


def _keras_grads(theirs, x, dys, states=(), mask=None):
    xv, sv = tf.constant(x), [tf.constant(s) for s in states]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([xv] + sv)
        kwargs = {"initial_state": sv} if sv else {}
        if mask is not None:
            kwargs["mask"] = tf.constant(mask)
        outs = to_list(theirs(xv, **kwargs))
        loss = sum(tf.reduce_sum(o * d) for o, d in zip(outs, dys))
    dinputs = [np.asarray(g) for g in tape.gradient(loss, [xv] + sv)]
    return dinputs, [np.asarray(g) for g in tape.gradient(loss, theirs.trainable_weights)]


@pytest.mark.parametrize("kind,merge_mode,return_sequences,return_state", BIDIRECTIONAL_CASES)
def test_bidirectional_gradients_match_keras(rng, shared, kind, merge_mode, return_sequences,
                                             return_state):
    ours, x, states, mask, _, dys, k_grads = _bidir_case(shared, rng, kind, merge_mode,
                                                         return_sequences, return_state)
    out, cache = ours.forward(x, mask=mask, initial_state=states)
    assert [o.shape for o in to_list(out)] == [d.shape for d in dys]
    dinputs, dweights = ours.backward(cache, dys if isinstance(out, list) else dys[0])
    assert len(dinputs) == 1 + len(states) and len(dweights) == len(ours.weights)
    assert len(k_grads) == len(dinputs) + len(dweights)
    for g, k in zip(dinputs + dweights, k_grads):
        np.testing.assert_allclose(g, k, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind,merge_mode,return_sequences", list(itertools.product(
    ["simple_rnn", "lstm", "gru"], MERGE_MODES, [False, True])))
def test_bidirectional_finite_differences(rng, kind, merge_mode, return_sequences):
    layer = Bidirectional(OURS[kind](2, return_sequences=return_sequences, return_state=True,
                                     dtype="float64"), merge_mode=merge_mode)
    x = rng.standard_normal((2, 4, 3))
    layer.build(x.shape)
    _randomize(layer, rng, "float64")
    states = [rng.standard_normal((2, 2)) for _ in range(2 * N_STATES[kind])]
    mask = np.array([[0, 1, 1, 0], [1, 1, 0, 1]], bool)
    check_layer_gradients(layer, [x] + states, rng, mask=mask)
    check_layer_gradients(layer, [x], rng)


def test_bidirectional_structure_and_custom_backward_layer(rng):
    inner = SimpleRNN(3, return_sequences=True, name="enc")
    layer = Bidirectional(inner)
    layer.build((2, 5, 4))
    assert (layer.forward_layer.name, layer.backward_layer.name) == ("forward_enc", "backward_enc")
    assert layer.forward_layer is not inner and not inner.built       # re-created, not reused
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    assert layer.forward_layer.zero_output_for_mask and layer.backward_layer.zero_output_for_mask
    assert layer.weights == layer.forward_layer.weights + layer.backward_layer.weights
    assert layer.count_params() == 2 * (4 * 3 + 3 * 3 + 3)
    assert [w.path for w in layer.weights][0].startswith(layer.name + "/forward_enc/")
    # A different backward layer (relu, 2 units), as in Keras's docstring example.
    fwd = LSTM(3, return_sequences=True)
    bwd = LSTM(2, activation="relu", return_sequences=True, go_backwards=True)
    ours = Bidirectional(fwd, backward_layer=bwd)
    ours.build((3, 5, 4))
    _randomize(ours, rng)
    assert ours.backward_layer is bwd
    theirs = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True),
        backward_layer=keras.layers.LSTM(2, activation="relu", return_sequences=True,
                                         go_backwards=True))
    theirs.build((3, 5, 4))
    theirs.set_weights(ours.get_weights())
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    mask = _mask(rng, 3, 5)
    _close(ours(x, mask=mask), theirs(x, mask=mask))
    assert ours.compute_output_shape((None, 5, 4)) == (None, 5, 5)


def test_bidirectional_sub_layers_keep_the_initializers(rng):
    # Re-created from the config, both directions start from the wrapped layer's initializers
    # (constant here so that Keras, with no weights copied, must give the same numbers).
    from unrolled import initializers as ui
    ours = Bidirectional(LSTM(3, kernel_initializer=ui.Constant(0.05), return_sequences=True,
                              recurrent_initializer=ui.Constant(-0.02),
                              bias_initializer=ui.Constant(0.03)))
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(
        3, kernel_initializer=keras.initializers.Constant(0.05), return_sequences=True,
        recurrent_initializer=keras.initializers.Constant(-0.02),
        bias_initializer=keras.initializers.Constant(0.03)))
    x = rng.standard_normal((2, 4, 5)).astype("float32")
    _close(ours(x), theirs(x))


def test_bidirectional_weights_argument_is_applied(rng):
    weights = [(rng.standard_normal(s) * 0.5).astype("float32")
               for s in [(4, 3), (3, 3), (3,)] * 2]
    layer = Bidirectional(SimpleRNN(3), weights=weights)
    layer(np.zeros((1, 2, 4), "float32"))
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, want)


def test_bidirectional_bad_arguments():
    with pytest.raises(ValueError, match=r"merge_mode='max'.*'concat', 'sum', 'mul', 'ave' or No"):
        Bidirectional(SimpleRNN(3), merge_mode="max")
    with pytest.raises(ValueError, match=r"go_backwards.*False.*False"):
        Bidirectional(SimpleRNN(3), backward_layer=SimpleRNN(3))
    with pytest.raises(ValueError, match=r"go_backwards=True.*go_backwards=True"):
        Bidirectional(SimpleRNN(3, go_backwards=True))            # Keras raises here too
    with pytest.raises(ValueError, match=r"return_sequences.*True.*False"):
        Bidirectional(SimpleRNN(3, return_sequences=True),
                      backward_layer=SimpleRNN(3, go_backwards=True))
    with pytest.raises(ValueError, match="recurrent layer"):
        Bidirectional(Dense(3))
    layer = Bidirectional(LSTM(3))
    x = np.zeros((2, 5, 4), "float32")
    with pytest.raises(ValueError, match=r"expects 4 initial states.*layer's 2.*Received 2:"):
        layer(x, initial_state=[np.zeros((2, 3))] * 2)
    with pytest.raises(ValueError, match=r"shape \(batch_size, 3\)"):
        layer(x, initial_state=[np.zeros((2, 3))] * 3 + [np.zeros((2, 5))])
    with pytest.raises(ValueError, match="expected ndim=3"):
        layer(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="axis -1 of input shape to have value 4"):
        layer(np.zeros((2, 5, 6)))


# --- TimeDistributed ----------------------------------------------------------------------------
@pytest.mark.parametrize("activation,shape", list(itertools.product(
    ["linear", "tanh", "softmax"], [(3, 5, 4), (2, 3, 4, 6)])))
def test_time_distributed_dense_matches_keras(rng, activation, shape):
    ours = TimeDistributed(Dense(5, activation=activation))
    ours.build(shape)
    _randomize(ours, rng)
    theirs = keras.layers.TimeDistributed(keras.layers.Dense(5, activation=activation))
    theirs.build(shape)
    theirs.set_weights(ours.get_weights())
    x = rng.standard_normal(shape).astype("float32")
    _close(ours(x), theirs(x))
    assert ours.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:-1] + (5,)
    out, cache = ours.forward(x)
    dy = rng.standard_normal(out.shape).astype("float32")
    dinputs, dweights = ours.backward(cache, dy)
    k_dinputs, k_dweights = _keras_grads(theirs, x, [dy])
    for g, k in zip(dinputs + dweights, k_dinputs + k_dweights):
        np.testing.assert_allclose(g, k, atol=1e-5, rtol=1e-5)


def test_time_distributed_finite_differences_and_errors(rng):
    layer = TimeDistributed(Dense(3, activation="tanh", dtype="float64"))
    x = rng.standard_normal((2, 4, 5))
    layer.build(x.shape)
    _randomize(layer, rng, "float64")
    check_layer_gradients(layer, [x], rng)
    check_layer_gradients(layer, [rng.standard_normal((2, 3, 2, 5))], rng)
    with pytest.raises(ValueError, match="min_ndim=3"):
        layer(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="axis -1 of input shape to have value 5"):
        layer(np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match=r"\(batch, timesteps\) = \(2, 4\)"):
        layer(np.zeros((2, 4, 5)), mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="layer instance"):
        TimeDistributed("dense")


# --- masks flowing through functional models ------------------------------------------------------
def _copy_model_weights(ours, theirs, rng):
    _randomize(ours, rng)
    theirs.set_weights(ours.get_weights())


def test_masking_model_matches_keras(rng):
    x = rng.standard_normal((4, 7, 3)).astype("float32")
    x[0, 5:] = 0.0                                            # padded tails
    x[2, :2] = 0.0                                            # padded heads
    x[3, 3] = 0.0                                             # a hole in the middle
    inp = Input(shape=(7, 3))
    h = TimeDistributed(Dense(3))(Masking()(inp))           # the mask passes through
    y, y_rev = Bidirectional(LSTM(2, return_sequences=True), merge_mode=None)(h)
    last = SimpleRNN(3)(y)
    ours = Model(inp, [y_rev, last])
    k_inp = keras.Input(shape=(7, 3))
    k = keras.layers.Masking()(k_inp)
    ky, ky_rev = keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True),
                                            merge_mode=None)(
        keras.layers.TimeDistributed(keras.layers.Dense(3))(k))
    theirs = keras.Model(k_inp, [ky_rev, keras.layers.SimpleRNN(3)(ky)])
    _copy_model_weights(ours, theirs, rng)
    _close(ours.predict_on_batch(x), theirs.predict_on_batch(x))


def test_bidirectional_mask_model_matches_keras(rng):
    x = rng.standard_normal((4, 7, 3)).astype("float32")
    x[0, 5:] = 0.0
    x[2, :2] = 0.0
    inp = Input(shape=(7, 3))
    h = Bidirectional(SimpleRNN(4, return_sequences=True), merge_mode="sum")(Masking()(inp))
    out = Bidirectional(GRU(3))(TimeDistributed(Dense(3))(h))
    ours = Model(inp, out)
    k_inp = keras.Input(shape=(7, 3))
    k = keras.layers.Bidirectional(keras.layers.SimpleRNN(4, return_sequences=True),
                                   merge_mode="sum")(keras.layers.Masking()(k_inp))
    k_out = keras.layers.Bidirectional(keras.layers.GRU(3))(
        keras.layers.TimeDistributed(keras.layers.Dense(3))(k))
    theirs = keras.Model(k_inp, k_out)
    _copy_model_weights(ours, theirs, rng)
    _close(ours.predict_on_batch(x), theirs.predict_on_batch(x))


def test_embedding_mask_model_matches_keras_with_gradients(rng):
    ids = rng.integers(1, 12, size=(4, 7))
    ids[0, 4:] = 0                                            # padding id 0
    ids[1, :3] = 0
    inp = Input(shape=(7,), dtype="int32")
    h = Embedding(12, 5, mask_zero=True)(inp)
    h = Bidirectional(LSTM(3, return_sequences=True))(h)
    h = TimeDistributed(Dense(4, activation="tanh"))(h)
    out = Bidirectional(SimpleRNN(2), merge_mode="mul")(h)
    ours = Model(inp, out)
    k_inp = keras.Input(shape=(7,), dtype="int32")
    k = keras.layers.Embedding(12, 5, mask_zero=True)(k_inp)
    k = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(k)
    k_out = keras.layers.Bidirectional(keras.layers.SimpleRNN(2), merge_mode="mul")(
        keras.layers.TimeDistributed(keras.layers.Dense(4, activation="tanh"))(k))
    theirs = keras.Model(k_inp, k_out)
    _copy_model_weights(ours, theirs, rng)
    y, tape = ours.forward(ids.astype("int32"))
    _close(y, theirs.predict_on_batch(ids))
    dy = rng.standard_normal(y.shape).astype("float32")
    (d_ids,), dweights = ours.backward(tape, dy)
    assert d_ids is None
    with tf.GradientTape() as t:
        loss = tf.reduce_sum(theirs(tf.constant(ids, tf.int32)) * dy)
    k_dweights = t.gradient(loss, theirs.trainable_weights)
    k_dweights[0] = tf.convert_to_tensor(k_dweights[0])       # embeddings: IndexedSlices -> dense
    for g, k in zip(dweights, k_dweights):
        np.testing.assert_allclose(g, np.asarray(k), atol=1e-5, rtol=1e-5)


def test_initial_state_inputs_in_a_model_with_gradients(rng):
    inp, states = Input(shape=(5, 4)), [Input(shape=(3,)) for _ in range(4)]
    h = Bidirectional(LSTM(3, return_sequences=True))(inp, initial_state=states)
    out = TimeDistributed(Dense(2))(h)
    ours = Model([inp] + states, out)
    k_inp, k_states = keras.Input(shape=(5, 4)), [keras.Input(shape=(3,)) for _ in range(4)]
    k = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(
        k_inp, initial_state=k_states)
    k_out = keras.layers.TimeDistributed(keras.layers.Dense(2))(k)
    theirs = keras.Model([k_inp] + k_states, k_out)
    _copy_model_weights(ours, theirs, rng)
    xs = [rng.standard_normal((2, 5, 4)).astype("float32")] + \
        [rng.standard_normal((2, 3)).astype("float32") for _ in range(4)]
    y, tape = ours.forward(xs)
    _close(y, theirs.predict_on_batch(xs))
    dy = rng.standard_normal(y.shape).astype("float32")
    dinputs, dweights = ours.backward(tape, dy)
    tensors = [tf.constant(x) for x in xs]
    with tf.GradientTape(persistent=True) as t:
        t.watch(tensors)
        loss = tf.reduce_sum(theirs(tensors) * dy)
    want = t.gradient(loss, tensors) + t.gradient(loss, theirs.trainable_weights)
    for g, k in zip(dinputs + dweights, want):
        np.testing.assert_allclose(g, np.asarray(k), atol=1e-5, rtol=1e-5)
