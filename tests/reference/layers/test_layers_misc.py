"""Embedding, Masking, Dropout, RepeatVector, Reshape, Concatenate, Add and StackedRNNCells:
Keras parity with random weights, masks, float64 finite differences and error messages."""
import itertools

import numpy as np
import pytest
import tensorflow as tf
from gradcheck import check_layer_gradients, numeric_grad, rel_error
from keras_ref import keras

from unrolled import utils
from unrolled.layers import (RNN, Add, Bidirectional, Concatenate, Dropout, Embedding, GRUCell,
                             Input, LSTMCell, Masking, RepeatVector, Reshape, SimpleRNN,
                             SimpleRNNCell, StackedRNNCells)
from unrolled.models import Model
from unrolled.utils import to_list


def _randomize(layer, rng, dtype="float32"):
    layer.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(dtype) for w in layer.weights])


def _close(got, want, atol=1e-6, rtol=1e-5):
    got, want = to_list(got), [np.asarray(w) for w in to_list(want)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol)


def _check_list_gradients(layer, xs, rng, tol=1e-6):
    """Finite differences for a layer called on a list of float64 inputs (Concatenate, Add)."""
    out, cache = layer.forward(xs)
    dy = rng.standard_normal(out.shape)
    dxs, _ = layer.backward(cache, dy)
    loss = lambda: float(np.sum(layer.forward(xs)[0] * dy))   # noqa: E731
    worst = max(rel_error(g, numeric_grad(loss, x)) for g, x in zip(dxs, xs))
    assert worst < tol, worst


# --- Embedding and Masking ------------------------------------------------------------------------
@pytest.mark.parametrize("shape,mask_zero",
                         list(itertools.product([(6,), (3, 7), (2, 3, 4)], [False, True])))
def test_embedding_matches_keras(rng, shape, mask_zero):
    ids = rng.integers(0, 10, size=shape)
    ours = Embedding(10, 4, mask_zero=mask_zero, input_length=7)
    ours.build(shape)
    _randomize(ours, rng)
    theirs = keras.layers.Embedding(10, 4, mask_zero=mask_zero)
    theirs.build(shape)
    theirs.set_weights(ours.get_weights())
    _close(ours(ids), theirs(ids))
    _close(ours(ids.astype("float32")), theirs(ids.astype("float32")))   # float ids are cast
    want_mask = theirs.compute_mask(ids)
    got_mask = ours.compute_mask(ids, None)
    assert (got_mask is None) == (want_mask is None)
    if got_mask is not None:
        np.testing.assert_array_equal(got_mask, np.asarray(want_mask))
    assert ours.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:] + (4,)


def test_embedding_gradients_and_initializer(rng):
    layer = Embedding(6, 3, dtype="float64")
    ids = rng.integers(0, 6, size=(4, 5))
    init = layer(ids)
    assert np.all(np.abs(layer.embeddings.value) <= 0.05) and np.ptp(init) > 0.01
    _randomize(layer, rng, "float64")
    y, cache = layer.forward(ids)
    dy = rng.standard_normal(y.shape)
    (d_ids,), (dE,) = layer.backward(cache, dy)
    assert d_ids is None
    loss = lambda: float(np.sum(layer.forward(ids)[0] * dy))  # noqa: E731
    assert rel_error(dE, numeric_grad(loss, layer.embeddings.value)) < 1e-8
    theirs = keras.layers.Embedding(6, 3, dtype="float64")
    theirs.build(ids.shape)
    theirs.set_weights(layer.get_weights())
    with tf.GradientTape() as tape:
        loss_k = tf.reduce_sum(theirs(ids) * dy)
    np.testing.assert_allclose(dE, tf.convert_to_tensor(tape.gradient(loss_k, theirs.embeddings)))


def test_embedding_bad_input():
    layer = Embedding(5, 2)
    for bad in ([[0, 5]], [[-6, 2]]):
        with pytest.raises(ValueError, match=r"expected range \[0, 4\] \(input_dim=5"):
            layer(np.array(bad))
        with pytest.raises(tf.errors.InvalidArgumentError):      # Keras on CPU errors too
            keras.layers.Embedding(5, 2)(np.array(bad))
    theirs = keras.layers.Embedding(5, 2)                        # -5..-1 count from the end
    theirs.build((1, 3))
    layer.set_weights(theirs.get_weights())
    _close(layer(np.array([[-5, -1, 3]])), theirs(np.array([[-5, -1, 3]])))
    with pytest.raises(ValueError, match="input_dim"):
        Embedding(0, 2)
    with pytest.raises(ValueError, match="output_dim"):
        Embedding(3, 2.5)


@pytest.mark.parametrize("mask_value", [0.0, -1.0])
def test_masking_matches_keras(rng, mask_value):
    x = rng.standard_normal((4, 6, 3)).astype("float32")
    x[0, 4:] = mask_value
    x[2, 1] = mask_value
    x[3, 2, 0] = mask_value                                   # one feature alone does not mask
    ours, theirs = Masking(mask_value), keras.layers.Masking(mask_value)
    _close(ours(x), theirs(x))
    np.testing.assert_array_equal(ours.compute_mask(x, None), np.asarray(theirs.compute_mask(x)))
    # Gradient: dy where the step is kept, 0 where masked (as tf.GradientTape has it). Finite
    # differences cannot see this at the masked entries, where x == mask_value is a kink,
    # so they run on x without masked steps.
    y, cache = ours.forward(x)
    dy = rng.standard_normal(y.shape).astype("float32")
    xv = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        loss = tf.reduce_sum(theirs(xv) * dy)
    (dx,), _ = ours.backward(cache, dy)
    np.testing.assert_array_equal(dx, np.asarray(tape.gradient(loss, xv)))
    x64 = rng.standard_normal((2, 3, 4))
    check_layer_gradients(Masking(mask_value, dtype="float64"), [x64], rng)


# --- Dropout ------------------------------------------------------------------------------------
class _Reseeded:
    """A Dropout whose every forward draws the same mask, so finite differences make sense."""

    def __init__(self, layer):
        self.layer, self.weights = layer, layer.weights

    def forward(self, x, **kwargs):
        utils.set_random_seed(7)
        return self.layer.forward(x, **kwargs)

    def backward(self, cache, dy):
        return self.layer.backward(cache, dy)


def test_dropout_statistics_scaling_and_gradient(rng):
    x = rng.standard_normal((200, 500)).astype("float32") + 3.0   # no zeros in x
    layer = Dropout(0.3)
    np.testing.assert_array_equal(layer(x), x)                    # not training: identity
    np.testing.assert_array_equal(layer(x), keras.layers.Dropout(0.3)(x, training=False))
    y, cache = layer.forward(x, training=True)
    kept = y != 0
    n = x.size
    assert abs(kept.mean() - 0.7) < 4 * np.sqrt(0.7 * 0.3 / n)     # keep probability 1 - rate
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)  # survivors scaled 1/(1-rate)
    dy = rng.standard_normal(x.shape).astype("float32")
    (dx,), dw = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, np.where(kept, dy / 0.7, 0), rtol=1e-6)   # the same mask
    assert dw == []
    # noise_shape: one decision per (sample, feature), shared by every time step.
    x3 = rng.standard_normal((50, 4, 30)).astype("float32") + 3.0
    y3 = Dropout(0.5, noise_shape=(None, 1, 30))(x3, training=True)
    assert np.all((y3 != 0) == (y3[:, :1] != 0))
    assert np.all(Dropout(1.0)(x, training=True) == 0)
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))
    x64 = rng.standard_normal((3, 4, 5))
    check_layer_gradients(_Reseeded(Dropout(0.4, dtype="float64")), [x64], rng, training=True)
    check_layer_gradients(Dropout(0.4, dtype="float64"), [x64], rng)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(1.5)


# --- RepeatVector and Reshape ---------------------------------------------------------------------
def test_repeat_vector_matches_keras(rng):
    x = rng.standard_normal((3, 4)).astype("float32")
    _close(RepeatVector(5)(x), keras.layers.RepeatVector(5)(x))
    assert RepeatVector(5).compute_output_shape((None, 4)) == (None, 5, 4)
    check_layer_gradients(RepeatVector(3, dtype="float64"), [rng.standard_normal((2, 4))], rng)
    with pytest.raises(ValueError, match="positive integer"):
        RepeatVector(0)
    with pytest.raises(ValueError, match="expected ndim=2"):
        RepeatVector(2)(np.zeros((2, 3, 4)))


@pytest.mark.parametrize("target", [(12,), (4, 3), (-1, 2), (2, -1, 3)])
def test_reshape_matches_keras(rng, target):
    x = rng.standard_normal((5, 3, 4)).astype("float32")
    _close(Reshape(target)(x), keras.layers.Reshape(target)(x))
    assert Reshape(target).compute_output_shape((None, 3, 4)) == \
        tuple(keras.layers.Reshape(target).compute_output_shape((None, 3, 4)))
    check_layer_gradients(Reshape(target, dtype="float64"), [rng.standard_normal((2, 3, 4))], rng)


def test_reshape_bad_input():
    with pytest.raises(ValueError, match=r"must be unchanged.*input_shape=\(3, 4\).*12 values.*"
                                         r"target_shape=\(5,\)"):
        Reshape((5,))(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"cannot be divided.*target_shape=\(5, -1\)"):
        Reshape((5, -1))(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="at most one unknown dimension"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match="non-negative integer"):
        Reshape((-2, 6))


# --- Concatenate and Add --------------------------------------------------------------------------
def _same_mask_as_keras(ours, theirs, xs, masks):
    got = ours.compute_mask(xs, masks)
    want = theirs.compute_mask([tf.constant(x) for x in xs],
                               [None if m is None else tf.constant(m) for m in masks])
    assert (got is None) == (want is None)
    if got is not None:
        np.testing.assert_array_equal(got, np.asarray(want))


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate_matches_keras(rng, axis):
    shapes = [(3, 4, 2), (3, 4, 5)] if axis in (-1, 2) else [(3, 4, 2), (3, 6, 2)]
    xs = [rng.standard_normal(s).astype("float32") for s in shapes]
    ours, theirs = Concatenate(axis=axis), keras.layers.Concatenate(axis=axis)
    _close(ours(xs), theirs(xs))
    assert ours.compute_output_shape([(None,) + s[1:] for s in shapes]) == \
        tuple(theirs.compute_output_shape([(None,) + s[1:] for s in shapes]))
    m1, m2 = (rng.random(s[:2]) > 0.4 for s in shapes)
    for masks in ([m1, None], [None, m2], [m1, m2], [None, None]):
        _same_mask_as_keras(ours, theirs, xs, masks)
    _check_list_gradients(Concatenate(axis=axis, dtype="float64"),
                          [rng.standard_normal(s) for s in shapes], rng)


@pytest.mark.parametrize("shapes", [[(3, 4, 5)] * 3, [(3, 4, 5), (3, 1, 5)], [(3, 4, 5), (3, 5)]])
def test_add_matches_keras(rng, shapes):
    xs = [rng.standard_normal(s).astype("float32") for s in shapes]
    ours, theirs = Add(), keras.layers.Add()
    _close(ours(xs), theirs(xs))
    assert ours.compute_output_shape([(None,) + s[1:] for s in shapes]) == \
        tuple(theirs.compute_output_shape([(None,) + s[1:] for s in shapes]))
    _check_list_gradients(Add(dtype="float64"), [rng.standard_normal(s) for s in shapes], rng)
    m = [rng.random((3, 4)) > 0.4 for _ in shapes]
    for masks in (m, [None] + m[1:]):
        _same_mask_as_keras(ours, theirs, xs, masks)


def test_merge_bad_input_and_masked_model(rng):
    with pytest.raises(ValueError, match=r"matching shapes except for the concatenation axis"):
        Concatenate()([np.zeros((2, 3, 4)), np.zeros((2, 5, 4))])
    with pytest.raises(ValueError, match="called on a list of inputs"):
        Concatenate()(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="incompatible shapes"):
        Add()([np.zeros((2, 3)), np.zeros((2, 4))])
    # Two masked branches joined by Concatenate and Add, then a SimpleRNN, against Keras.
    a, b = (rng.standard_normal((4, 6, 3)).astype("float32") for _ in range(2))
    a[0, 4:], b[0, 5:], b[2, :2] = 0, 0, 0
    ia, ib = Input(shape=(6, 3)), Input(shape=(6, 3))
    ma, mb = Masking()(ia), Masking()(ib)
    out = [SimpleRNN(2)(Concatenate()([ma, mb])), SimpleRNN(2)(Add()([ma, mb]))]
    ours = Model([ia, ib], out)
    ka, kb = keras.Input(shape=(6, 3)), keras.Input(shape=(6, 3))
    kma, kmb = keras.layers.Masking()(ka), keras.layers.Masking()(kb)
    k_out = [keras.layers.SimpleRNN(2)(keras.layers.Concatenate()([kma, kmb])),
             keras.layers.SimpleRNN(2)(keras.layers.Add()([kma, kmb]))]
    theirs = keras.Model([ka, kb], k_out)
    _randomize(ours, rng)
    theirs.set_weights(ours.get_weights())
    _close(ours.predict_on_batch([a, b]), theirs.predict_on_batch([a, b]))


# --- StackedRNNCells ------------------------------------------------------------------------------
BOOL_PAIRS = list(itertools.product([False, True], repeat=2))


def _stacks(rng, dtype="float32", **cfg):
    ours = RNN(StackedRNNCells([SimpleRNNCell(3), LSTMCell(4), GRUCell(2)]), dtype=dtype, **cfg)
    ours.build((None, 5, 3))
    _randomize(ours, rng, dtype)
    theirs = keras.layers.RNN(keras.layers.StackedRNNCells(
        [keras.layers.SimpleRNNCell(3), keras.layers.LSTMCell(4), keras.layers.GRUCell(2)]),
        dtype=dtype, **cfg)
    theirs.build((None, 5, 3))
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _flat(x):
    return [np.asarray(t) for t in tf.nest.flatten(x)]


@pytest.mark.parametrize("return_sequences,go_backwards", BOOL_PAIRS)
def test_stacked_cells_match_keras(rng, return_sequences, go_backwards):
    ours, theirs = _stacks(rng, return_sequences=return_sequences, go_backwards=go_backwards,
                           return_state=True)
    assert ours.cell.state_size == [3, 4, 4, 2] and ours.count_params() == theirs.count_params()
    x = rng.standard_normal((4, 5, 3)).astype("float32")
    h0, h1, c1, h2 = (rng.standard_normal((4, n)).astype("float32") for n in (3, 4, 4, 2))
    mask = rng.random((4, 5)) > 0.3
    mask[0, :2] = False
    for kwargs, k_kwargs in (({}, {}), ({"mask": mask}, {"mask": mask}),
                             ({"initial_state": [h0, h1, c1, h2]},
                              {"initial_state": [[h0], [h1, c1], h2]})):
        _close(ours(x, **kwargs), _flat(theirs(x, **k_kwargs)))
    # Gradients against tf.GradientTape, with a mask and initial states.
    out, cache = ours.forward(x, mask=mask, initial_state=[h0, h1, c1, h2])
    dys = [rng.standard_normal(o.shape).astype("float32") for o in out]
    dinputs, dweights = ours.backward(cache, dys)
    tensors = [tf.constant(t) for t in (x, h0, h1, c1, h2)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(tensors)
        xv, *s = tensors
        nested = [[s[0]], s[1:3], s[3]]                      # Keras nests the states per cell
        outs = tf.nest.flatten(theirs(xv, mask=tf.constant(mask), initial_state=nested))
        loss = sum(tf.reduce_sum(o * d) for o, d in zip(outs, dys))
    want = tape.gradient(loss, tensors) + tape.gradient(loss, theirs.trainable_weights)
    for g, k in zip(dinputs + dweights, want):
        np.testing.assert_allclose(g, np.asarray(k), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("return_sequences,go_backwards", BOOL_PAIRS)
def test_stacked_cells_finite_differences(rng, return_sequences, go_backwards):
    layer, _ = _stacks(rng, dtype="float64", return_sequences=return_sequences,
                       go_backwards=go_backwards, return_state=True)
    x = rng.standard_normal((2, 4, 3))
    states = [rng.standard_normal((2, n)) for n in (3, 4, 4, 2)]
    mask = np.array([[0, 1, 1, 0], [1, 1, 0, 1]], bool)
    check_layer_gradients(layer, [x] + states, rng, mask=mask)


def test_bidirectional_of_stacked_cells_matches_keras(rng):
    inner = RNN(StackedRNNCells([SimpleRNNCell(3), GRUCell(2)]), return_sequences=True)
    ours = Bidirectional(inner, merge_mode="ave")
    ours.build((3, 5, 4))
    _randomize(ours, rng)
    theirs = keras.layers.Bidirectional(keras.layers.RNN(keras.layers.StackedRNNCells(
        [keras.layers.SimpleRNNCell(3), keras.layers.GRUCell(2)]), return_sequences=True),
        merge_mode="ave")
    theirs.build((3, 5, 4))
    theirs.set_weights(ours.get_weights())
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    mask = rng.random((3, 5)) > 0.3
    _close(ours(x, mask=mask), theirs(x, mask=mask))
    assert ours.forward_layer.cell.cells[0] is not inner.cell.cells[0]   # fresh cells


def test_stacked_cells_bad_input():
    with pytest.raises(ValueError, match="dropout=0.5.*not supported"):
        StackedRNNCells([SimpleRNNCell(3, dropout=0.5)])
    with pytest.raises(ValueError, match="at least one cell"):
        StackedRNNCells([])
    with pytest.raises(ValueError, match="cell contract"):
        StackedRNNCells([object()])


def test_stacked_cells_train_on_long_sequences_as_keras(rng):
    """Inputs longer than one input-projection chunk (about 4 MB of projected steps,
    ``projection_chunk``): training projected the chunks into one buffer with ``out=``,
    which the stack did not take (a TypeError, issue 22). Here 2048 sequences of 5 steps
    make three chunks of 2, 2 and 1 steps in training and in ``predict`` (one batch), and
    several weight-gradient chunks in BPTT, as (32, 200, 8) did, in fewer Python steps."""
    from unrolled.layers.recurrent.inputs import projection_chunk

    N, T, F = 2048, 5, 8

    def build(m):
        model = m.Sequential([m.Input((T, F)), m.layers.RNN(m.layers.StackedRNNCells(
            [m.layers.LSTMCell(64), m.layers.LSTMCell(64)])), m.layers.Dense(1)])
        model.compile(loss="mse", optimizer=m.optimizers.SGD(0.1))
        return model
    import unrolled
    ours, theirs = build(unrolled), build(keras)
    ours.set_weights([rng.uniform(-0.15, 0.15, w.shape).astype("float32")
                      for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    x = rng.standard_normal((N, T, F)).astype("float32")
    y = rng.standard_normal((N, 1)).astype("float32")
    assert projection_chunk(ours.layers[0].cell, x.transpose(1, 0, 2)) == 2      # 3 chunks
    assert ours.layers[0]._backward_chunk(T, N) < T
    for _ in range(2):
        np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                                   rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(ours.predict(x, batch_size=N, verbose=0),
                               theirs.predict(x, batch_size=N, verbose=0), atol=1e-5, rtol=1e-5)


def test_rnn_of_a_list_of_cells_is_stacked_as_in_keras(rng):
    """issue 20.12: keras.layers.RNN([cell, cell]) wraps the list in StackedRNNCells."""
    ours = RNN([LSTMCell(4), GRUCell(3)], return_sequences=True)
    theirs = keras.layers.RNN([keras.layers.LSTMCell(4), keras.layers.GRUCell(3)],
                              return_sequences=True)
    assert isinstance(ours.cell, StackedRNNCells)
    ours.build((None, 5, 2))
    theirs.build((None, 5, 2))
    _randomize(ours, rng)
    theirs.set_weights(ours.get_weights())
    x = rng.standard_normal((3, 5, 2)).astype("float32")
    _close(ours(x), theirs(x))


@pytest.mark.parametrize("name,args", [
    ("SimpleRNN", (4, "relu", False, "ones", "zeros", "ones", "l2")),
    ("LSTM", (4, "relu", "tanh", True, "ones", "zeros", "ones", False, None, "l1")),
    ("GRU", (4, "relu", "tanh", True, "ones", "zeros", "ones", "l2", None, None, None, None,
             None, None, 0.1, 0.2, 7, True)),
])
def test_recurrent_layers_take_positional_arguments_in_keras_order(name, args):
    """``LSTM`` is declared from its cell (``cell_class``, ``arguments``): positional
    arguments land where Keras's signature puts them (regularizers included)."""
    import unrolled
    ours, theirs = getattr(unrolled.layers, name)(*args), getattr(keras.layers, name)(*args)
    mine = ours.get_config()
    for key, value in theirs.get_config().items():
        if key in mine and key not in ("name", "dtype"):
            assert mine[key] == value, key
    cell = ours.cell
    for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
        assert type(getattr(cell, key)).__name__ == type(getattr(theirs.cell, key)).__name__
    for key in ("kernel_regularizer", "recurrent_regularizer"):
        want = getattr(theirs.cell, key)
        assert (getattr(cell, key) is None) == (want is None), key
    with pytest.raises(TypeError, match="multiple values for argument 'activation'"):
        getattr(unrolled.layers, name)(4, "relu", activation="tanh")
    with pytest.raises(TypeError, match="'units'"):
        getattr(unrolled.layers, name)(activation="tanh")
    with pytest.raises(TypeError, match="'cell'"):
        unrolled.layers.RNN(return_sequences=True)
