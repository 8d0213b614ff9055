"""Every activation against Keras, and its derivative by finite differences in float64."""
import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from keras_ref import keras

from unrolled import activations

NAMES = sorted(activations._ALL)


@pytest.mark.parametrize("name", NAMES)
def test_matches_keras(name, rng):
    x = (rng.standard_normal((6, 7)) * 4).astype("float32")
    want = np.asarray(keras.activations.get(name)(x))
    np.testing.assert_allclose(activations.get(name)(x), want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_by_finite_differences(name, rng):
    act = activations.get(name)
    x = rng.standard_normal((4, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.5                  # keep away from the kinks of relu & co.
    x[np.abs(x - 6) < 1e-3] = 5.0
    dy = rng.standard_normal(x.shape)
    got = act.backward(x, act(x), dy)
    assert rel_error(got, numeric_grad(lambda: float(np.sum(act(x) * dy)), x)) < 1e-6
