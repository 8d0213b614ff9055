"""Helpers to build the same layer in real Keras and copy our weights into it."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (a test dependency; CI installs it, so no skip)
import numpy as np  # noqa: E402


def keras_call(layer, x, **kwargs):
    """Call a Keras layer on NumPy input and return NumPy output(s)."""
    out = layer(x, **kwargs)
    if isinstance(out, (list, tuple)):
        return [np.asarray(o) for o in out]
    return np.asarray(out)


def copy_weights(ours, theirs, x_shape):
    """Build the Keras layer for ``x_shape`` and give it our weights."""
    if not theirs.built:
        theirs.build(x_shape)
    theirs.set_weights(ours.get_weights())
