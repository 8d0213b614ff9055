"""RNN(cell) with cells written the Keras way (state_size, build, call(inputs, states)),
in Keras and in unrolled: forward (masks, return_state, go_backwards, initial_state,
stacked lists), the step backward by finite differences, and fit against Keras's."""
import numpy as np
import pytest

import unrolled
from gradcheck import check_layer_gradients
from keras_way import define

import keras  # noqa: E402  (a test dependency: CI installs it, so no skip)

K = define(keras.layers, keras.ops)
U = define(unrolled.layers, unrolled.ops)
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], bool)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _flat(out):
    """Outputs and states, flat (Keras nests a stack's states per cell)."""
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in _flat(o)]
    return [_np(out)]


def _rnn_pair(make_cell, x, **options):
    k = keras.layers.RNN(make_cell(K), name="rnn", **options)
    u = unrolled.layers.RNN(make_cell(U), name="rnn", **options)
    k(x)
    u(x)
    u.set_weights([_np(w) for w in k.get_weights()])
    return k, u


@pytest.mark.parametrize("options", [
    {}, {"return_sequences": True, "return_state": True},
    {"return_sequences": True, "go_backwards": True},
    {"return_state": True, "go_backwards": True}])
def test_minimal_cell_forward_equals_keras(rng, options):
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    k, u = _rnn_pair(lambda C: C.MinimalRNNCell(5, name="minimal"), x, **options)
    for kwargs in ({}, {"mask": MASK}):
        for got, expected in zip(_flat(u(x, **kwargs)), _flat(k(x, **kwargs))):
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert [w.path for w in u.weights] == ["rnn/minimal/kernel", "rnn/minimal/recurrent_kernel"]
    assert u.cell.units == 5


def test_two_state_cell_forward_equals_keras(rng):
    """A list state_size, output_size, get_initial_state, training, initial_state."""
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    k, u = _rnn_pair(lambda C: C.TwoStateCell(3, name="two"), x, return_sequences=True,
                     return_state=True)
    init = [rng.standard_normal((3, 3)).astype("float32") for _ in range(2)]
    for kwargs in ({}, {"mask": MASK}, {"training": True, "mask": MASK},
                   {"initial_state": init}):
        for got, expected in zip(_flat(u(x, **kwargs)), _flat(k(x, **kwargs))):
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_list_of_user_cells_equals_keras(rng):
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    k, u = _rnn_pair(lambda C: [C.MinimalRNNCell(5, name="c1"), C.TwoStateCell(2, name="c2")],
                     x, return_sequences=True, return_state=True)
    assert len(_flat(u(x))) == 1 + 1 + 2
    for kwargs in ({}, {"mask": MASK}):
        for got, expected in zip(_flat(u(x, **kwargs)), _flat(k(x, **kwargs))):
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert [tuple(w.shape) for w in u.weights] == [tuple(w.shape) for w in k.weights]


def test_step_backward_equals_finite_differences(rng):
    x = rng.standard_normal((2, 5, 3))
    for cell, options in ((U.MinimalRNNCell(3, dtype="float64"), {}),
                          (U.TwoStateCell(2, dtype="float64"), {"return_state": True}),
                          ([U.MinimalRNNCell(3, dtype="float64"),
                            U.TwoStateCell(2, dtype="float64")], {"go_backwards": True})):
        layer = unrolled.layers.RNN(cell, return_sequences=True, dtype="float64", **options)
        layer(x)
        check_layer_gradients(layer, [x], rng, tol=1e-6, mask=MASK[:2, :5], training=True)
        states = [rng.standard_normal((2, s)) for s in layer.cell.state_size]
        check_layer_gradients(layer, [x] + states, rng, tol=1e-6)


def _model(lib, C, stacked):
    cell = ([C.MinimalRNNCell(4, name="a"), C.MinimalRNNCell(3, name="b")] if stacked
            else C.MinimalRNNCell(4, name="a"))
    inp = lib.Input((6, 3))
    h = lib.layers.Masking(0.0)(inp)
    h = lib.layers.RNN(cell, name="rnn")(h)
    return lib.Model(inp, lib.layers.Dense(2, name="out")(h))


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((24, 6, 3)).astype("float32")
    x[::3, 4:] = 0.0                                              # masked steps
    y = rng.standard_normal((24, 2)).astype("float32")
    out = {}
    for stacked in (False, True):
        km, um = _model(keras, K, stacked), _model(unrolled, U, stacked)
        um.set_weights([_np(w) for w in km.get_weights()])
        for m in (km, um):
            m.compile(optimizer="adam", loss="mse")
        kh = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
        uh = um.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
        out[stacked] = (km, um, kh, uh)
    return out, x


@pytest.mark.parametrize("stacked", [False, True])
def test_fit_through_user_cells_equals_keras(fits, stacked):
    results, x = fits
    km, um, kh, uh = results[stacked]
    np.testing.assert_allclose(uh["loss"], kh["loss"], rtol=1e-5)
    for got, expected in zip(um.get_weights(), km.get_weights()):
        np.testing.assert_allclose(got, _np(expected), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(um.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_cell_without_backward_is_refused_before_training(rng):
    class Forward(unrolled.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.state_size = 2

        def call(self, inputs, states):
            h = unrolled.ops.tanh(inputs[:, :2] + states[0])
            return h, [h]

    inp = unrolled.Input((4, 3))
    model = unrolled.Model(inp, unrolled.layers.RNN([Forward(name="f1"), Forward(name="f2")])(inp))
    model.compile("sgd", "mse")
    x = rng.standard_normal((4, 4, 3)).astype("float32")
    with pytest.raises(NotImplementedError, match="Cell 'f1' \\(Forward\\).*dstates_prev"):
        model.fit(x, np.zeros((4, 2)), verbose=0)
    with pytest.raises(NotImplementedError, match="Cell 'f1'"):
        model.train_on_batch(x, np.zeros((4, 2)))
    assert model.predict(x, verbose=0).shape == (4, 2)


def test_bad_cells_say_so():
    class NoSize(unrolled.layers.Layer):
        def call(self, inputs, states):
            return inputs, states

    with pytest.raises(ValueError, match="state_size must be an integer"):
        unrolled.layers.RNN(NoSize())
    with pytest.raises(TypeError, match="mixes cells"):
        unrolled.layers.RNN([U.MinimalRNNCell(2), unrolled.layers.SimpleRNNCell(2)])


def test_bidirectional_user_cell_equals_keras(rng):
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    with keras.saving.custom_object_scope({"MinimalRNNCell": K.MinimalRNNCell}):
        k = keras.layers.Bidirectional(keras.layers.RNN(K.MinimalRNNCell(3, name="mc"),
                                                        return_sequences=True))
    u = unrolled.layers.Bidirectional(unrolled.layers.RNN(U.MinimalRNNCell(3, name="mc"),
                                                          return_sequences=True))
    expected = _np(k(x, mask=MASK))
    u(x)
    u.set_weights([_np(w) for w in k.get_weights()])
    np.testing.assert_allclose(u(x, mask=MASK), expected, rtol=1e-6, atol=1e-6)
