"""Multiply, Average, Subtract, Maximum, Minimum and their functional forms (issue 20.10):
outputs and gradients against Keras (tf.GradientTape), ties of Maximum/Minimum going where
TensorFlow sends them, float64 finite differences, and a .keras file both ways."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from gradcheck import numeric_grad

import unrolled
from unrolled.models import load_model

NAMES = ["Multiply", "Average", "Subtract", "Maximum", "Minimum"]


def _inputs(name, rng, dtype="float32"):
    n = 2 if name == "Subtract" else 3
    xs = [rng.standard_normal((4, 5)).round(1).astype(dtype) for _ in range(n)]
    if name in ("Maximum", "Minimum"):
        xs[1][:, :2] = xs[0][:, :2]                  # ties, where the gradient must choose
    return xs


@pytest.mark.parametrize("name", NAMES)
def test_outputs_and_gradients_equal_keras(name, rng):
    xs = _inputs(name, rng)
    dy = rng.standard_normal((4, 5)).astype("float32")
    ours = getattr(unrolled.layers, name)()
    y, cache = ours.forward(xs)
    dxs, _ = ours.backward(cache, dy)
    tensors = [tf.Variable(x) for x in xs]
    with tf.GradientTape() as tape:
        out = getattr(keras.layers, name)()(tensors)
        loss = tf.reduce_sum(out * dy)
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-6)
    for got, want in zip(dxs, tape.gradient(loss, tensors)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_finite_differences_float64(name, rng):
    xs = [rng.standard_normal((3, 4)) for _ in range(2 if name == "Subtract" else 3)]
    layer = getattr(unrolled.layers, name)(dtype="float64")
    dy = rng.standard_normal((3, 4))
    _, cache = layer.forward(xs)
    dxs, _ = layer.backward(cache, dy)
    def f():
        return float(np.sum(layer.forward(xs)[0] * dy))
    for i, x in enumerate(xs):                   # numeric_grad perturbs x in place
        np.testing.assert_allclose(dxs[i], numeric_grad(f, x), rtol=1e-6, atol=1e-8)


def test_in_a_model_saved_both_ways(rng, tmp_path):
    def build(m):
        a, b = m.Input((5,)), m.Input((5,))
        d = m.layers.Dense(5)
        h = m.layers.multiply([d(a), b])
        h = m.layers.maximum([h, m.layers.subtract([a, b])])
        h = m.layers.average([h, m.layers.minimum([a, b]), b])
        return m.Model([a, b], h)
    theirs = build(keras)
    ours = build(unrolled)
    ours.set_weights(theirs.get_weights())
    x = [rng.standard_normal((3, 5)).astype("float32") for _ in range(2)]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(
        x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    theirs.save(tmp_path / "theirs.keras")
    np.testing.assert_allclose(load_model(tmp_path / "theirs.keras").predict(x, verbose=0),
                               theirs.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_subtract_takes_two_inputs():
    a = unrolled.Input((2,))
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        unrolled.layers.Subtract()([a, a, a])
