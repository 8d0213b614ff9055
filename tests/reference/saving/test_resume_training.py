"""A compiled, trained model saved as ``.keras`` and loaded again goes on training where it
stopped (issue 24.13): ``compile_config`` and the optimizer's state are written as Keras 3
writes them and read back, both ways with Keras."""
import warnings

import numpy as np
import pytest
from keras_ref import keras

import unrolled
from unrolled.models import load_model


def _model(m, optimizer):
    model = m.Sequential([m.Input((6, 3)), m.layers.LSTM(4), m.layers.Dense(2)])
    model.compile(optimizer=optimizer(m), loss="mse",
                  metrics=["mae", m.metrics.RootMeanSquaredError()])
    return model


OPTIMIZERS = {
    "adam-schedule": lambda m: m.optimizers.Adam(
        m.optimizers.schedules.ExponentialDecay(0.02, 3, 0.5)),
    "nadam": lambda m: m.optimizers.Nadam(0.01),
    "rmsprop-momentum": lambda m: m.optimizers.RMSprop(0.01, momentum=0.5),
}


def _data(rng):
    return (rng.standard_normal((16, 6, 3)).astype("float32"),
            rng.standard_normal((16, 2)).astype("float32"))


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_a_keras_checkpoint_goes_on_training_in_unrolled_as_in_keras(opt, rng, tmp_path):
    x, y = _data(rng)
    theirs = _model(keras, OPTIMIZERS[opt])
    theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    theirs.save(tmp_path / "k.keras")
    ours = load_model(tmp_path / "k.keras")
    assert ours.compiled and ours.optimizer.iterations == 4
    assert type(ours.optimizer).__name__ == type(theirs.optimizer).__name__
    want = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    got = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=2e-5, err_msg=key)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_an_unrolled_checkpoint_goes_on_training_in_keras_and_in_unrolled(opt, rng, tmp_path):
    x, y = _data(rng)
    ours = _model(unrolled, OPTIMIZERS[opt])
    ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    ours.save(tmp_path / "u.keras")
    theirs = keras.saving.load_model(tmp_path / "u.keras")
    again = load_model(tmp_path / "u.keras")
    assert int(theirs.optimizer.iterations.numpy()) == again.optimizer.iterations == 4
    want = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    for model in (ours, again):
        got = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=2e-5, err_msg=key)


def test_compile_false_and_what_is_refused(rng, tmp_path):
    x, y = _data(rng)
    ours = _model(unrolled, OPTIMIZERS["nadam"])
    ours.fit(x, y, epochs=1, verbose=0)
    ours.save(tmp_path / "u.keras")
    assert not load_model(tmp_path / "u.keras", compile=False).compiled
    with pytest.raises(NotImplementedError, match="custom_objects"):
        load_model(tmp_path / "u.keras", custom_objects={"Mine": object})
    with pytest.raises(NotImplementedError, match="safe_mode"):
        load_model(tmp_path / "u.keras", safe_mode=False)
    theirs = _model(keras, OPTIMIZERS["nadam"])
    theirs.save(tmp_path / "k.h5")                       # legacy .h5 with a training_config
    with warnings.catch_warnings():                      # (read: test_training_state_files)
        warnings.simplefilter("error")
        model = load_model(tmp_path / "k.h5")
    assert model.compiled and type(model.optimizer).__name__ == "Nadam"
    assert not load_model(tmp_path / "k.h5", compile=False).compiled


def test_a_function_metric_saves_the_model_without_its_compile_state(rng, tmp_path):
    ours = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.LSTM(4),
                                unrolled.layers.Dense(2)])
    ours.compile("adam", "mse", metrics=[lambda t, p: np.abs(t - p).mean(axis=-1)])
    with pytest.warns(UserWarning, match="without its compile state"):
        ours.save(tmp_path / "f.keras")
    assert not load_model(tmp_path / "f.keras").compiled
