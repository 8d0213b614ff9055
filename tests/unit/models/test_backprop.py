"""Backpropagation through whole models, dropout in training mode, and float64 mode."""
import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from unrolled import config, utils
from unrolled.layers import Dense, Input, SimpleRNN
from unrolled.models import Model


@pytest.fixture
def float64():
    config.set_floatx("float64")
    yield
    config.set_floatx("float32")


def test_model_gradients_by_finite_differences_on_a_branching_graph(rng, float64):
    # One tensor feeds two layers, states come from a second input, outputs are merged by
    # a shared Dense: gradients must be summed where paths meet.
    i, j = Input((5, 3)), Input((4,))
    seq = SimpleRNN(4, return_sequences=True)(i, initial_state=[j])
    a = SimpleRNN(4)(seq)
    b = SimpleRNN(4, go_backwards=True)(seq)
    head = Dense(2, activation="tanh")
    out = Dense(2)(head(a))
    model = Model([i, j], out)
    extra = Model([i, j], head(b))  # the shared head is reused by another graph
    assert extra.count_params() > 0
    model.compile(loss="mse", optimizer="sgd")
    model.set_weights([rng.standard_normal(w.shape) * 0.6 for w in model.weights])
    x, h0 = rng.standard_normal((3, 5, 3)), rng.standard_normal((3, 4))
    y = rng.standard_normal((3, 2))
    loss, grads = model.gradients([x, h0], y)
    assert [g.dtype for g in grads] == [np.float64] * len(grads)

    def f():
        return model.loss(y, model.predict_on_batch([x, h0]))
    for w, g in zip(model.weights, grads):
        assert rel_error(g, numeric_grad(f, w.value)) < 1e-6, w.path


def test_layer_gradients_api(rng):
    layer = SimpleRNN(3, return_sequences=True, dtype="float64")
    x = rng.standard_normal((2, 4, 5))
    dy = rng.standard_normal((2, 4, 3))
    (dx,), (dk, dr, db) = layer.gradients(x, dy)
    assert dx.shape == x.shape and dk.shape == (5, 3) and dr.shape == (3, 3) and db.shape == (3,)
    f = lambda: float(np.sum(layer(x) * dy))  # noqa: E731
    assert rel_error(dx, numeric_grad(f, x)) < 1e-6
    assert rel_error(dk, numeric_grad(f, layer.weights[0].value)) < 1e-6


def _fixed_rng(monkeypatch, seed=7):
    """Every call draws the same dropout masks, so finite differences see one function."""
    monkeypatch.setattr(utils, "rng", lambda: np.random.default_rng(seed))


def test_dropout_masks_are_fixed_across_time_and_gradients_check(rng, monkeypatch):
    layer = SimpleRNN(6, dropout=0.4, recurrent_dropout=0.3, return_sequences=True,
                      return_state=True, dtype="float64")
    x = rng.standard_normal((3, 5, 4))
    layer(x)
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.weights])
    # Inference ignores dropout: the same as a layer without it.
    plain = SimpleRNN(6, return_sequences=True, return_state=True, dtype="float64")
    plain(x)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x, training=False)[0], plain(x)[0])
    _fixed_rng(monkeypatch)
    out, cache = layer.forward(x, training=True)
    xs, m, dp_mask, caches, _, _ = cache
    assert dp_mask.shape == (3, 4)                                   # one mask per sequence
    assert set(np.unique(dp_mask)) <= {0.0, 1 / 0.6}
    rec = [c[3] for c in caches]
    assert all(r is rec[0] for r in rec)                              # same mask every step
    assert set(np.unique(rec[0])) <= {0.0, 1 / 0.7}
    dys = [rng.standard_normal(o.shape) for o in out]
    (dx,), dws = layer.backward(cache, dys)

    def f():
        o, _ = layer.forward(x, training=True)
        return sum(float(np.sum(a * d)) for a, d in zip(o, dys))
    assert rel_error(dx, numeric_grad(f, x)) < 1e-6
    for w, g in zip(layer.weights, dws):
        assert rel_error(g, numeric_grad(f, w.value)) < 1e-6


def test_dropout_rate_statistics():
    utils.set_random_seed(0)
    layer = SimpleRNN(200, dropout=0.25)
    x = np.ones((50, 2, 40), "float32")
    _, cache = layer.forward(layer._prepare_eager(x), training=True)
    dp_mask = cache[2]
    assert abs((dp_mask == 0).mean() - 0.25) < 0.02


def test_float64_mode_end_to_end(rng, float64):
    i = Input((4, 2))
    model = Model(i, Dense(1)(SimpleRNN(3)(i)))
    assert all(w.dtype == np.float64 for w in model.weights)
    y = model.predict(rng.standard_normal((2, 4, 2)).astype("float32"), verbose=0)
    assert y.dtype == np.float64
    with pytest.raises(ValueError, match="floatx"):
        config.set_floatx("int8")


def test_set_random_seed_makes_construction_repeatable():
    def build():
        i = Input((4, 2))
        return Model(i, Dense(1)(SimpleRNN(3)(i))).get_weights()
    utils.set_random_seed(42)
    a = build()
    utils.set_random_seed(42)
    b = build()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="non-negative integer"):
        utils.set_random_seed(-1)
