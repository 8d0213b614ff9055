"""``import unrolled as keras`` (issue 20.15): a script written the way Keras's examples
write it runs with only the import switched, and gives Keras's numbers; a Keras name
unrolled lacks is an AttributeError that says so."""
import keras as real_keras
import numpy as np
import pytest

import unrolled


def script(keras, x, y, weights=None):
    """A small Keras-style regression script: Sequential with an Input, a stacked LSTM,
    Adam, an EarlyStopping callback, validation data, fit, evaluate, predict."""
    model = keras.Sequential([
        keras.Input(shape=(x.shape[1], x.shape[2])),
        keras.layers.LSTM(8, return_sequences=True),
        keras.layers.GRU(6),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss=keras.losses.MeanSquaredError(), metrics=[keras.metrics.MeanAbsoluteError()])
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    history = model.fit(x[:48], y[:48], epochs=3, batch_size=16, shuffle=False, verbose=0,
                        validation_data=(x[48:], y[48:]), callbacks=[stop])
    result = model.evaluate(x[48:], y[48:], verbose=0)
    return start, history.history, result, model.predict(x, verbose=0)


def test_a_keras_script_runs_with_only_the_import_switched():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10, 3)).astype("float32")
    y = x[:, -3:, 0].sum(axis=1, keepdims=True).astype("float32")
    start, want_hist, want_eval, want_pred = script(real_keras, x, y)
    _, hist, result, pred = script(unrolled, x, y, weights=start)
    assert set(hist) == set(want_hist)
    for key in want_hist:
        np.testing.assert_allclose(hist[key], want_hist[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(result, want_eval, rtol=1e-5)
    np.testing.assert_allclose(pred, want_pred, rtol=1e-5, atol=1e-6)


def test_the_common_keras_names_are_there():
    for name in ("Input", "Model", "Sequential", "layers", "models", "optimizers", "losses",
                 "metrics", "callbacks", "initializers", "activations", "utils"):
        assert hasattr(unrolled, name), name
    assert unrolled.models.load_model is not None
    assert unrolled.interop.to_onnx is not None           # a subpackage, on first use


def test_a_keras_name_unrolled_lacks_says_so():
    assert hasattr(real_keras, "mixed_precision")
    with pytest.raises(AttributeError, match="has no attribute 'mixed_precision'.*Sequential"):
        unrolled.mixed_precision
