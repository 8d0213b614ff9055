"""Every activation against Keras, and its derivative by finite differences in float64."""
import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from keras_ref import keras

from unrolled import activations

NAMES = sorted(activations._ALL)
# Names Keras 3 does not have: the formula of the Keras that did (float32 arithmetic).
NOT_IN_KERAS3 = {"hard_sigmoid_keras2":                     # Keras 2 / tf.keras 2 hard_sigmoid
                 lambda x: np.clip(x * np.float32(0.2) + np.float32(0.5), 0, 1)}


@pytest.mark.parametrize("name", NAMES)
def test_matches_keras(name, rng):
    x = (rng.standard_normal((6, 7)) * 4).astype("float32")
    ref = NOT_IN_KERAS3.get(name) or keras.activations.get(name)
    want = np.asarray(ref(x))
    np.testing.assert_allclose(activations.get(name)(x), want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_by_finite_differences(name, rng):
    act = activations.get(name)
    x = rng.standard_normal((4, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.5                  # keep away from the kinks of relu & co.
    x[np.abs(x - 6) < 1e-3] = 5.0
    x[np.abs(np.abs(x) - 2.5) < 1e-3] = 2.0    # and of hard_sigmoid_keras2
    dy = rng.standard_normal(x.shape)
    got = act.backward(x, act(x), dy)
    assert rel_error(got, numeric_grad(lambda: float(np.sum(act(x) * dy)), x)) < 1e-6
