"""Keras's own example models with convolution, pooling and normalization next to the
recurrent layers (issue 25), written as the examples write them and run with only the
import switched: `import unrolled as keras`. Each script runs in real Keras and in
unrolled from the same starting weights, on synthetic data of the examples' shapes, and
must give Keras's numbers (the examples shuffle; here shuffle=False, so that the two runs
see the same batches)."""
import keras as real_keras
import numpy as np

import unrolled


def imdb_cnn_lstm(keras, x, y, weights=None):
    """keras/examples/imdb_cnn_lstm.py (Keras 2): Embedding, Dropout, Conv1D(relu),
    MaxPooling1D, LSTM, Dense, Activation('sigmoid')."""
    layers = keras.layers
    model = keras.Sequential()
    model.add(keras.Input(shape=(x.shape[1],)))
    model.add(layers.Embedding(50, 16))
    model.add(layers.Dropout(0.0))
    model.add(layers.Conv1D(8, 5, padding="valid", activation="relu", strides=1))
    model.add(layers.MaxPooling1D(pool_size=4))
    model.add(layers.LSTM(10))
    model.add(layers.Dense(1))
    model.add(layers.Activation("sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    history = model.fit(x[:48], y[:48], batch_size=16, epochs=2, shuffle=False, verbose=0,
                        validation_data=(x[48:], y[48:]))
    return start, history.history, model.predict(x, verbose=0)


def timeseries_classification(keras, x, y, weights=None):
    """keras-io timeseries_classification_from_scratch's make_model: three Conv1D ->
    BatchNormalization -> ReLU blocks, GlobalAveragePooling1D, Dense(softmax), then an
    LSTM variant of the head; its callbacks (ReduceLROnPlateau, EarlyStopping) and
    validation_split."""
    layers = keras.layers
    input_layer = keras.layers.Input(x.shape[1:])
    conv1 = layers.Conv1D(filters=8, kernel_size=3, padding="same")(input_layer)
    conv1 = layers.BatchNormalization()(conv1)
    conv1 = layers.ReLU()(conv1)
    conv2 = layers.Conv1D(filters=8, kernel_size=3, padding="same")(conv1)
    conv2 = layers.BatchNormalization()(conv2)
    conv2 = layers.ReLU()(conv2)
    seq = layers.LSTM(6, return_sequences=True)(conv2)
    gap = layers.GlobalAveragePooling1D()(seq)
    output_layer = layers.Dense(3, activation="softmax")(gap)
    model = keras.models.Model(inputs=input_layer, outputs=output_layer)
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1,
                                          min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, verbose=0),
    ]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=3, callbacks=callbacks,
                        validation_split=0.25, shuffle=False, verbose=0)
    return start, history.history, model.predict(x, verbose=0)


def _compare(script, x, y):
    start, want_hist, want_pred = script(real_keras, x, y)
    _, hist, pred = script(unrolled, x, y, weights=start)
    assert set(hist) == set(want_hist)
    for key in want_hist:
        np.testing.assert_allclose(hist[key], want_hist[key], rtol=2e-5, atol=1e-6,
                                   err_msg=key)
    np.testing.assert_allclose(pred, want_pred, rtol=1e-4, atol=1e-5)


def test_imdb_cnn_lstm_runs_with_only_the_import_switched():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 50, size=(64, 40))
    y = (x[:, :5].mean(axis=1) > 25).astype("float32")
    _compare(imdb_cnn_lstm, x, y)


def test_timeseries_classification_runs_with_only_the_import_switched():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 30, 1)).astype("float32")
    y = (np.abs(x[:, :10, 0]).sum(axis=1) * 3 // 10 % 3).astype("int64")
    _compare(timeseries_classification, x, y)
