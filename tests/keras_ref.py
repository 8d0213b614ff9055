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


def files_both_ways(theirs, ours, x, folder, ext, want=None):
    """Save the Keras model and ours as ``.{ext}``; load Keras's file in unrolled and ours in
    Keras; each loaded model must predict what its original predicts (ours holds other
    weights than theirs, so a file read the wrong way cannot pass by luck). ``want``: Keras's
    prediction of ``x``, when the caller has it already (one Keras run for several
    formats). Returns ``(theirs loaded by unrolled, ours loaded by Keras)``."""
    import warnings

    from unrolled.models import load_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.save(folder / f"theirs.{ext}")
        ours.save(folder / f"ours.{ext}")
        back_ours = keras.models.load_model(folder / f"ours.{ext}")
    back_theirs = load_model(folder / f"theirs.{ext}")
    if want is None:
        want = theirs.predict(x, verbose=0)
    np.testing.assert_allclose(back_theirs.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back_ours.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    return back_theirs, back_ours
