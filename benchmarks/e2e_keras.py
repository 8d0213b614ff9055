"""One end-to-end run in Keras 3: ``python -m benchmarks.e2e_keras EXAMPLE EPOCHS [quick]``.

The model of ``unrolled.examples.EXAMPLE`` in Keras (the same layers and arguments: the
examples are written in Keras's API), compiled with Adam at the example's learning rate
and trained by ``model.fit`` (batch size 32, validation data where the example has them,
EPOCHS epochs, ``verbose=0``), then ``model.predict`` on the test windows once. Keras's
defaults otherwise (TensorFlow backend, graph mode, no XLA on CPU). Data: ``e2e_data``.
Prints the same JSON line as ``e2e_unrolled.py``. Default threads.
"""
import time

START = time.perf_counter()
import os  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
from keras import layers  # noqa: E402

from . import e2e_data  # noqa: E402

IMPORTED = time.perf_counter()


def sine(epochs, quick, clock):
    x, y, xt = arrays = e2e_data.sine(quick=quick)
    clock("data")
    losses = {}
    for name, layer in (("SimpleRNN", layers.SimpleRNN), ("LSTM", layers.LSTM)):
        keras.utils.set_random_seed(0)
        i = keras.Input(shape=(20, 1))
        model = keras.Model(i, layers.Dense(1)(layer(32)(i)))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.005), loss="mse")
        clock("build")
        losses[name] = model.fit(x, y, epochs=epochs, batch_size=32,
                                 verbose=0).history["loss"][-1]
        clock("fit")
        model.predict(xt, verbose=0)
        clock("predict")
    return losses, arrays


def co2(epochs, quick, clock):
    x, y, xv, yv, xt = arrays = e2e_data.co2(quick=quick)
    clock("data")
    keras.utils.set_random_seed(0)
    i = keras.Input(shape=(24, 1))
    model = keras.Model(i, layers.Dense(1)(layers.LSTM(32)(i)))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.005), loss="mse")
    clock("build")
    loss = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
                     verbose=0).history["loss"][-1]
    clock("fit")
    model.predict(xt, verbose=0)
    clock("predict")
    return {"LSTM": loss}, arrays


def dante(epochs, quick, clock):
    *arrays, vocab = e2e_data.dante(quick=quick)
    x, y, xv, yv, xt = arrays
    clock("data")
    keras.utils.set_random_seed(0)
    i = keras.Input(batch_shape=(None, None), dtype="int32")
    h = layers.LSTM(128, return_sequences=True)(layers.Embedding(vocab, 32)(i))
    model = keras.Model(i, layers.Dense(vocab)(h))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.005, clipnorm=5.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clock("build")
    loss = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
                     verbose=0).history["loss"][-1]
    clock("fit")
    model.predict(xt, verbose=0)
    clock("predict")
    return {"LSTM": loss}, arrays


def threads():
    import tensorflow as tf
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return (f"TensorFlow intra-op {intra or 'default (all cores)'}, inter-op "
            f"{inter or 'default'}")


if __name__ == "__main__":
    e2e_data.main({"sine": sine, "co2": co2, "dante": dante}, threads, START, IMPORTED)
