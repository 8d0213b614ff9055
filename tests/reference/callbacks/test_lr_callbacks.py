"""ReduceLROnPlateau and LearningRateScheduler (issue 20.14, in part): the same learning
rates, losses and history keys (``learning_rate`` included) as Keras, over a few epochs."""
import warnings

import keras
import numpy as np
import pytest

import unrolled


def _fit(m, callbacks, start=None, epochs=5):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((24, 6, 3)).astype("float32")
    y = rng.standard_normal((24, 2)).astype("float32")
    model = m.Sequential([m.Input((6, 3)), m.layers.LSTM(4), m.layers.Dense(2)])
    model.compile(loss="mse", optimizer=m.optimizers.SGD(0.1))
    if start is not None:
        model.set_weights(start)
    weights = model.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                            validation_data=(x[:8], y[:8]), callbacks=callbacks(m)).history
    return weights, history, float(model.optimizer.learning_rate)


CALLBACKS = {
    # min_delta larger than any change: no epoch after the first improves, so the rate is
    # cut whenever patience and cooldown allow it, down to min_lr.
    "plateau, cooldown, min_lr": lambda m: [m.callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=1, min_delta=10.0, cooldown=1, min_lr=0.03)],
    "plateau on val_loss": lambda m: [m.callbacks.ReduceLROnPlateau(factor=0.2, patience=0,
                                                                     min_delta=0.02)],
    "schedule(epoch, lr)": lambda m: [m.callbacks.LearningRateScheduler(
        lambda epoch, lr: lr if epoch < 2 else lr * 0.5)],
    "schedule(epoch)": lambda m: [m.callbacks.LearningRateScheduler(
        lambda epoch: 0.1 / (1.0 + epoch))],
}


@pytest.mark.parametrize("name", list(CALLBACKS))
def test_learning_rate_callbacks_equal_keras(name):
    start, want, want_lr = _fit(keras, CALLBACKS[name])
    _, got, lr = _fit(unrolled, CALLBACKS[name], start)
    assert set(got) == set(want) and "learning_rate" in got
    np.testing.assert_allclose(got["learning_rate"], want["learning_rate"], rtol=1e-6)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(got[key], want[key], rtol=2e-5, err_msg=key)
    assert lr == pytest.approx(want_lr, rel=1e-6)


def test_reduce_lr_refuses_a_factor_of_one_and_warns_without_its_metric():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        unrolled.callbacks.ReduceLROnPlateau(factor=1.0)
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        model = unrolled.Sequential([unrolled.Input((2,)), unrolled.layers.Dense(1)])
        model.compile(loss="mse", optimizer="sgd")
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0,
                  callbacks=[unrolled.callbacks.ReduceLROnPlateau()])
