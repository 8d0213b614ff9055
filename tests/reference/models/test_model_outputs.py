"""Keras's rules for a model's outputs and batch size (issue 21.7, 21.8): ``Model(x, [y])``
has one output, predicts an array and trains (Keras unpacks a one-element list); a batch
size fixed in ``Input(batch_shape=...)`` restricts nothing unless a layer is stateful, and
then each batch is checked."""
import keras
import numpy as np
import pytest

import unrolled


def _build(m, outputs_as_list, rng_weights=None):
    a = m.Input((7, 3))
    o = m.layers.Dense(2)(m.layers.GRU(4)(a))
    model = m.Model(a, [o] if outputs_as_list else o)
    model.compile(loss="mse", optimizer=m.optimizers.SGD(1.0))
    if rng_weights is not None:
        model.set_weights(rng_weights)
    return model


def test_a_one_element_output_list_is_one_output_as_in_keras(rng):
    x = rng.standard_normal((6, 7, 3)).astype("float32")
    y = rng.standard_normal((6, 2)).astype("float32")
    theirs = _build(keras, True)
    ours = _build(unrolled, True, theirs.get_weights())
    want, got = theirs.predict(x, verbose=0), ours.predict(x, verbose=0)
    assert isinstance(got, np.ndarray) and got.shape == want.shape == (6, 2)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
    assert isinstance(ours(x), np.ndarray) and isinstance(ours.predict_on_batch(x), np.ndarray)
    np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


def test_a_fixed_batch_size_restricts_only_stateful_layers(rng):
    x = rng.standard_normal((10, 7, 3)).astype("float32")
    for m in (keras, unrolled):
        a = m.Input(batch_shape=(5, 7, 3))
        model = m.Model(a, m.layers.LSTM(2)(a))
        assert model.predict(x[:2], verbose=0).shape == (2, 2)
        assert np.shape(model(x[:3])) == (3, 2)
    a = unrolled.Input(batch_shape=(5, 7, 3))
    stateful = unrolled.Model(a, unrolled.layers.LSTM(2, stateful=True)(a))
    assert stateful.predict(x, batch_size=5, verbose=0).shape == (10, 2)
    with pytest.raises(ValueError, match="Expected batch size: 5"):
        stateful.predict(x[:2], verbose=0)
